"""The folder tree is the architecture: each room imports only from rooms below it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "nb2prod"
# Lower rooms first. A module may import from its own room and from rooms before it.
LAYERS = [
    {"_version", "errors", "options", "manifest"},
    {"notebook"},
    {"analysis"},
    {"run"},
    {"generate"},
    {"diff"},
    {"pipeline"},
    {"verify", "batch"},
    {"cli", "jupyter", "__main__", "__init__"},
]


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(room: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room in rooms)


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name == "nb2prod" or name.startswith("nb2prod.")]


def _modules() -> list[tuple[str, Path]]:
    result = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        result.append((".".join(relative.parts), path))
    return result


def test_every_room_is_known_and_documented() -> None:
    for folder in sorted(p for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").is_file()):
        init = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
        assert ast.get_docstring(init), f"{folder.relative_to(ROOT)} needs a one-line docstring saying what it owns"
    for module, _ in _modules():
        _layer(_room(module))  # raises StopIteration for a room missing from LAYERS


def test_nothing_imports_upward() -> None:
    upward = []
    for module, path in _modules():
        own = _layer(_room(module))
        for imported in _imports(path):
            if imported != "nb2prod" and _layer(_room(imported)) > own:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_kernel_code_imports_only_itself_from_nb2prod() -> None:
    for module, path in _modules():
        if module.startswith("nb2prod.run.kernel"):
            foreign = [name for name in _imports(path) if not name.startswith("nb2prod.run.kernel")]
            assert foreign == [], f"{module} is shipped into the user's kernel and cannot import {foreign}"
