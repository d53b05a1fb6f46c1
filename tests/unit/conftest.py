"""Fixtures of the unit tests that talk to a generated service in this process."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from tests.stand_in import serve_in_process

Services = Callable[[str], ModuleType]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    """`services(branch)`: the branch's generated `app` module, rendered and imported once per test module."""
    cache: dict[str, ModuleType] = {}

    def get(branch: str) -> ModuleType:
        if branch not in cache:
            cache[branch] = serve_in_process(branch, tmp_path_factory.mktemp(branch))
        return cache[branch]

    return get
