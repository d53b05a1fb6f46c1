"""Extract stage: the preprocessing module and the exact pins of everything the service needs."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from nb2prod.analysis.preprocess import PreprocessModule


@dataclass(frozen=True)
class ExtractedCode:
    """What the extract stage hands to rendering: the module source and its pins."""

    preprocess: PreprocessModule
    pins: tuple[tuple[str, str], ...]  # (distribution, version), sorted by name: the manifest's record
    test_pins: tuple[tuple[str, str], ...]
    # what the service installs: `pins` less what only unpickling the model needs, on the compiled path
    serve_pins: tuple[tuple[str, str], ...] = ()


# The service's web stack: orjson writes its answers and log lines, prometheus-client its /metrics;
# httptools is the HTTP parser uvicorn picks when it is installed, several times faster than its
# default. The service runs on asyncio's own loop (`--loop asyncio`), not uvloop: under load, uvloop
# kept some connections waiting hundreds of milliseconds while it served others, and asyncio's
# loop answered every request within a few times the median (benchmarks/serve_vs_handwritten.py).
# grpcio and protobuf serve the Open Inference Protocol over gRPC (its messages are generated code
# that needs the protobuf runtime it was generated for, or newer).
SERVICE_DISTRIBUTIONS: tuple[str, ...] = ("fastapi", "uvicorn", "pydantic", "orjson", "httptools", "prometheus-client")
SERVICE_DISTRIBUTIONS += ("grpcio", "protobuf")
# Starlette's TestClient moved from httpx to httpx2; pin whichever this environment has (httpx2 first).
TEST_CLIENTS = ("httpx2", "httpx")


def extract_code(
    module: PreprocessModule,
    kernel_distributions: dict[str, str],
    shipped_source: str | None = None,
    serve_distributions: dict[str, str] | None = None,
) -> ExtractedCode:
    """The preprocessing module and exact pins: the kernel's for model and preprocess code,
    this environment's for the service's own web stack and test tools. `shipped_source` is the
    module as the capture step proved it (training values filled in), when it reported one.
    `serve_distributions`: the kernel's distributions the service imports at run time, when fewer
    than `kernel_distributions` (the compiled path never unpickles the model)."""
    if shipped_source is not None:
        module = dataclasses.replace(module, source=shipped_source)
    service = _closure(SERVICE_DISTRIBUTIONS)
    pins = {**service, **kernel_distributions}
    serve = pins if serve_distributions is None else {**service, **serve_distributions}
    client = next((name for name in TEST_CLIENTS if _closure((name,))), "httpx")
    tests = {k: v for k, v in _closure(("pytest", client)).items() if k not in pins}
    return ExtractedCode(
        preprocess=module,
        pins=tuple(sorted(pins.items())),
        test_pins=tuple(sorted(tests.items())),
        serve_pins=tuple(sorted(serve.items())),
    )


def prepare_pins() -> None:
    """Walk the web stack's and the test tools' requirements ahead of `extract_code` (the pipeline
    does it while the notebook runs; the walks are remembered)."""
    _closure(SERVICE_DISTRIBUTIONS)
    for roots in [(name,) for name in TEST_CLIENTS] + [("pytest", name) for name in TEST_CLIENTS]:
        _closure(roots)


def _normal(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


@functools.lru_cache(maxsize=16)
def _closure(roots: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `roots` and of everything they require here (no extras). Remembered
    for the process: callers copy it, never change it.

    run/kernel/capture.py's _distributions does the same walk inside the kernel, without `packaging`,
    because it may run in an environment that has neither nb2prod nor packaging.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    versions: dict[str, str] = {}
    queue = list(roots)
    while queue:
        name = queue.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = _normal(dist.metadata["Name"])
        if key in versions:
            continue
        versions[key] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    return versions
