"""Read stage: a notebook file becomes a `NotebookSpec` (cells with roles, parameters, config).

Roles come from cell tags (`metadata.tags`) or from a first source line `#| nb2prod: <role>`.
Nothing here runs code; the only import of nbformat for reading lives here.
"""

from __future__ import annotations

import ast
import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.reader import NotJSONError

from nb2prod.errors import NotebookReadError, RoleError


class Role(enum.StrEnum):
    """What a cell does in the conversion (README, "Tagging cells")."""

    PARAMETERS = "parameters"
    LOAD = "load"
    PREPROCESS = "preprocess"
    TRAIN = "train"
    EVALUATE = "evaluate"
    SKIP = "skip"


# A cell may carry several of these (e.g. a cell that fits and scores); the others stand alone:
# skip cells do not run, the parameters cell is where papermill injects, and preprocess code is
# shipped, so it must not carry training code.
RUN_ONLY_ROLES = frozenset({Role.LOAD, Role.TRAIN, Role.EVALUATE})
ROLE_ORDER = tuple(Role)


def sorted_roles(roles: set[Role] | frozenset[Role] | tuple[Role, ...]) -> tuple[Role, ...]:
    """Roles in pipeline order (parameters, load, preprocess, train, evaluate, skip)."""
    return tuple(r for r in ROLE_ORDER if r in roles)


ROLE_LINE = re.compile(r"^\s*#\|\s*nb2prod\s*:\s*(?P<role>[\w-]+)\s*$")
# Tags other tools put on cells. They do not change what nb2prod does; we say so once.
FOREIGN_TAG_PATTERNS = {
    "Kale": re.compile(
        r"^(imports|functions|pipeline-parameters|pipeline-metrics|(step|block|prev|limit|annotation|image):.*)$"
    ),
    "papermill": re.compile(r"^injected-parameters$"),
}


@dataclass(frozen=True)
class Cell:
    """One cell of the source notebook, with its roles. `index` counts all cells from 0."""

    index: int
    cell_type: str
    source: str
    roles: tuple[Role, ...] = ()  # in pipeline order; several only for load/train/evaluate
    tags: tuple[str, ...] = ()
    execution_count: int | None = None

    @property
    def role(self) -> Role | None:
        """The cell's first role in pipeline order (its only one unless run-only roles combine)."""
        return self.roles[0] if self.roles else None

    def has(self, *roles: Role | None) -> bool:
        """True if the cell carries any of `roles` (`None` matches an untagged cell)."""
        return any(r in self.roles if r is not None else not self.roles for r in roles)

    @property
    def number(self) -> int:
        """The 1-based position people see when they count cells from the top."""
        return self.index + 1

    @property
    def first_line(self) -> str:
        for line in self.source.splitlines():
            if line.strip() and not ROLE_LINE.match(line):
                return line.strip()
        return ""

    @property
    def label(self) -> str:
        """How messages name this cell: `cell 4 (`model = ...`)`."""
        first = self.first_line
        if len(first) > 60:
            first = first[:57] + "..."
        return f"cell {self.number} (`{first}`)" if first else f"cell {self.number}"


@dataclass(frozen=True)
class Parameter:
    """A name assigned in the parameters cell, with its literal value when it has one."""

    name: str
    value: object
    type_name: str


@dataclass(frozen=True)
class NotebookConfig:
    """`metadata.nb2prod` of the notebook: which variables to capture, and names.

    `labels` names the classes of a model whose classes are `0`/`1` or `False`/`True`, keyed by
    the class as text: `{"0": "stay", "1": "churn"}`.
    """

    model: str | None = None
    features: str | None = None
    raw: str | None = None  # the raw frame replayed preprocess cells start from
    metrics: str | None = None
    name: str | None = None
    version: str | None = None
    labels: dict[str, str] | None = None


@dataclass(frozen=True)
class NotebookSpec:
    """Everything later stages need to know about the notebook, read without running it."""

    path: Path
    cells: tuple[Cell, ...]
    kernel_name: str | None
    config: NotebookConfig
    parameters: tuple[Parameter, ...]
    content_hash: str
    notes: tuple[str, ...] = field(default=())

    def code_cells(self, *roles: Role | None) -> list[Cell]:
        """Code cells with any of `roles` (all code cells when none are given)."""
        cells = [c for c in self.cells if c.cell_type == "code"]
        return [c for c in cells if c.has(*roles)] if roles else cells

    @property
    def has_roles(self) -> bool:
        """False for a notebook nobody has tagged yet (`nb2prod tag` proposes roles)."""
        return any(c.roles for c in self.code_cells())

    @property
    def parameters_cell(self) -> Cell | None:
        found = self.code_cells(Role.PARAMETERS)
        return found[0] if found else None


def read_notebook(path: Path) -> NotebookSpec:
    """Read and validate `path`, assign roles, and collect parameters and config."""
    node = _load(path)
    foreign: list[tuple[str, str, int]] = []  # (owning tool or "", tag, cell number)
    cells = tuple(_read_cell(path, index, raw, foreign) for index, raw in enumerate(node.cells))
    params_cells = [c for c in cells if c.role is Role.PARAMETERS]
    if len(params_cells) > 1:
        where = ", ".join(c.label for c in params_cells)
        raise RoleError(
            f"{path.name}: more than one cell has the role `parameters`: {where}.",
            hint="Keep one parameters cell; papermill injects overrides after it.",
            notebook=path,
            cell_index=params_cells[1].index,
        )
    return NotebookSpec(
        path=path,
        cells=cells,
        kernel_name=(node.metadata.get("kernelspec") or {}).get("name"),
        config=_read_config(path, node.metadata.get("nb2prod") or {}),
        parameters=tuple(_read_parameters(params_cells[0])) if params_cells else (),
        content_hash=content_hash(cells, node.metadata.get("nb2prod") or {}),
        notes=_foreign_tag_notes(path, foreign),
    )


def _foreign_tag_notes(path: Path, foreign: list[tuple[str, str, int]]) -> tuple[str, ...]:
    """One line for all tags nb2prod ignores, however many cells carry them."""
    if not foreign:
        return ()
    cells_of: dict[tuple[str, str], list[int]] = {}
    for tool, tag, number in foreign:
        cells_of.setdefault((tool, tag), []).append(number)
    parts = []
    for (tool, tag), numbers in cells_of.items():
        where = f"cell {numbers[0]}" if len(numbers) == 1 else f"cells {', '.join(map(str, numbers))}"
        owner = f"{tool}'s " if tool else "unknown "
        parts.append(f"{owner}`{tag}` ({where})")
    return (f"{path.name}: nb2prod ignores tags that are not its roles: {'; '.join(parts)}.",)


def _load(path: Path) -> nbformat.NotebookNode:
    if not path.exists():
        raise NotebookReadError(f"{path}: no such notebook.", hint="Check the path.", notebook=path)
    if path.is_dir():
        raise NotebookReadError(f"{path} is a folder, not a notebook.", hint="Pass a .ipynb file.", notebook=path)
    _check_notebook_shape(path)
    try:
        node = nbformat.read(str(path), as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError, NotJSONError) as err:
        raise NotebookReadError(
            f"{path.name} is not a notebook: it is not valid JSON.",
            hint="Open it in JupyterLab and save it again, or pass the right file.",
            notebook=path,
        ) from err
    except Exception as err:  # nbformat raises several unrelated types for bad documents
        raise NotebookReadError(
            f"{path.name} could not be read as a Jupyter notebook: {err}",
            hint="Open it in JupyterLab and save it again.",
            notebook=path,
        ) from err
    try:
        nbformat.validate(node)
    except nbformat.ValidationError as err:
        raise NotebookReadError(
            f"{path.name} is not a valid notebook: {err.message}",
            hint="Open it in JupyterLab and save it again to repair its structure.",
            notebook=path,
        ) from err
    return node


def _check_notebook_shape(path: Path) -> None:
    """Valid JSON that is not a notebook gets a message naming what was found, not nbformat's internals."""
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return  # not JSON at all: nbformat's reader says so below
    if isinstance(document, dict) and isinstance(document.get("nbformat"), int):
        return  # a notebook of some version: nbformat upgrades or validates it below
    if isinstance(document, dict):
        keys = ", ".join(sorted(map(str, document))[:6]) or "no keys"
        found = f"a JSON object with {keys}"
    else:
        kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
        found = f"a JSON {kinds.get(type(document), 'null')}"
    raise NotebookReadError(
        f"{path.name} is not a Jupyter notebook (nbformat 4): it holds {found}.",
        hint="Pass a .ipynb file saved by Jupyter (File > Save), or open old notebooks in JupyterLab and save them.",
        notebook=path,
    )


def _read_cell(path: Path, index: int, raw: Mapping[str, object], foreign: list[tuple[str, str, int]]) -> Cell:
    source = str(raw.get("source", ""))
    metadata: Mapping[str, Any] = raw.get("metadata") or {}  # type: ignore[assignment]
    tags = tuple(str(t) for t in (metadata.get("tags") or []))
    cell = Cell(index=index, cell_type=str(raw.get("cell_type")), source=source, tags=tags)
    if cell.cell_type != "code":
        return cell
    found = {_role_from_tag(cell, tag, foreign) for tag in tags}
    found.add(_role_from_line(path, cell))
    roles = sorted_roles({r for r in found if r is not None})
    _check_combination(path, cell, roles)
    execution_count = raw.get("execution_count")
    return Cell(
        index=index,
        cell_type="code",
        source=source,
        roles=roles,
        tags=tags,
        execution_count=execution_count if isinstance(execution_count, int) else None,
    )


def _check_combination(path: Path, cell: Cell, roles: tuple[Role, ...]) -> None:
    """Run-only roles combine; `skip`, `parameters` and `preprocess` each stand alone."""
    alone = [r for r in roles if r not in RUN_ONLY_ROLES]
    if len(roles) < 2 or not alone:
        return
    names = " and ".join(f"`{r.value}`" for r in roles)
    why = {
        Role.PREPROCESS: "preprocess code is shipped in the service, so it must not carry other code",
        Role.PARAMETERS: "papermill injects parameter overrides right after the parameters cell",
        Role.SKIP: "a skip cell does not run at all",
    }[alone[0]]
    raise RoleError(
        f"{path.name}, {cell.label}: the cell has the roles {names}, but `{alone[0].value}` stands alone: {why}.",
        hint="Split the cell, or keep one role. Only `load`, `train` and `evaluate` combine.",
        notebook=path,
        cell_index=cell.index,
    )


def _role_from_tag(cell: Cell, tag: str, foreign: list[tuple[str, str, int]]) -> Role | None:
    try:
        return Role(tag)
    except ValueError:
        pass
    tool = next((tool for tool, pattern in FOREIGN_TAG_PATTERNS.items() if pattern.match(tag)), "")
    foreign.append((tool, tag, cell.number))
    return None


def _role_from_line(path: Path, cell: Cell) -> Role | None:
    lines = cell.source.splitlines()
    match = ROLE_LINE.match(lines[0]) if lines else None
    if match is None:
        return None
    try:
        return Role(match["role"])
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise RoleError(
            f"{path.name}, cell {cell.number}: `#| nb2prod: {match['role']}` is not a role.",
            hint=f"Use one of: {known}.",
            notebook=path,
            cell_index=cell.index,
        ) from None


def _read_config(path: Path, raw: Mapping[str, object]) -> NotebookConfig:
    text_fields = {"model", "features", "raw", "metrics", "name", "version"}
    known = text_fields | {"labels"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise NotebookReadError(
            f"{path.name}: notebook metadata `nb2prod` has unknown field(s): {', '.join(unknown)}.",
            hint=f"Known fields: {', '.join(sorted(known))}.",
            notebook=path,
        )
    values: dict[str, str | None] = {}
    for key in text_fields:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise NotebookReadError(
                f"{path.name}: notebook metadata `nb2prod.{key}` must be a string, not {type(value).__name__}.",
                hint='For example: "nb2prod": {"model": "clf"}.',
                notebook=path,
            )
        values[key] = value
    return NotebookConfig(**values, labels=_read_labels(path, raw.get("labels")))


def _read_labels(path: Path, raw: object) -> dict[str, str] | None:
    """`nb2prod.labels`: `{"<class as text>": "<label>", ...}`, e.g. `{"0": "stay", "1": "churn"}`."""
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or not raw
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items())
    ):
        raise NotebookReadError(
            f"{path.name}: notebook metadata `nb2prod.labels` must map each class, as text, to a label.",
            hint='For example: "nb2prod": {"labels": {"0": "stay", "1": "churn"}}.',
            notebook=path,
        )
    labels = [str(v) for v in raw.values()]
    if len(set(labels)) != len(labels):
        raise NotebookReadError(
            f"{path.name}: notebook metadata `nb2prod.labels` gives two classes the same label.",
            hint="Give each class its own label.",
            notebook=path,
        )
    return {str(k): str(v) for k, v in raw.items()}


def _read_parameters(cell: Cell) -> list[Parameter]:
    """Names assigned at the top of the parameters cell, with literal values where possible."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return []
    found: list[Parameter] = []
    for node in tree.body:
        target, value = _assignment(node)
        if target is None:
            continue
        try:
            literal = ast.literal_eval(value) if value is not None else None
        except ValueError:
            literal = ast.unparse(value) if value is not None else None
            found.append(Parameter(target, literal, "expression"))
            continue
        found.append(Parameter(target, literal, type(literal).__name__))
    return found


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def content_hash(cells: tuple[Cell, ...], config: Mapping[str, Any]) -> str:
    """`"sha256:<hex>"` of what the notebook says: each cell's type, source and tags, and the
    notebook's `metadata.nb2prod`; never outputs, execution counts or other metadata, so running
    and saving the notebook again does not change it."""
    canonical = {"cells": [[c.cell_type, c.source, sorted(c.tags)] for c in cells], "nb2prod": config}
    blob = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()
