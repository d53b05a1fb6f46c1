"""Store roles as cell tags: the only place nb2prod ever writes a notebook (`nb2prod tag --write`).

Only `metadata.tags` of code cells change (and, when the user chose the served model, notebook
metadata `nb2prod.model`, so that `lint` and `convert` need no `--model` afterwards): nb2prod
role tags are replaced by the given roles, other tags (Kale's, the user's own) stay where they
are, and sources, outputs, execution counts and every other field are written back as nbformat
read them. Cells whose role is a
`#| nb2prod:` source line are left alone, since only their source could change it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat

from nb2prod.errors import NotebookReadError, OptionsError, OutputExistsError
from nb2prod.notebook.spec import ROLE_LINE, Role

ROLE_TAGS = frozenset(r.value for r in Role)


def write_roles(
    source: Path, roles: Mapping[int, Sequence[str]], *, destination: Path | None = None, model: str | None = None
) -> tuple[Path, int]:
    """Write `roles` (cell index -> role names) as tags into `source`, or into a new file
    `destination`, and `model` (if given) as notebook metadata `nb2prod.model`. Returns the path
    written and how many cells changed."""
    if destination is not None and (destination.exists() or destination.is_symlink()):
        raise OutputExistsError(
            f"{destination} exists; nb2prod tag -o writes a new file and never replaces one.",
            hint="Choose another path, or use --write to tag the notebook itself.",
            notebook=source,
        )
    node = _read_as_is(source)
    changed = 0
    for index, names in roles.items():
        unknown = set(names) - ROLE_TAGS
        if unknown:
            raise OptionsError(f"not nb2prod roles: {', '.join(sorted(unknown))}.", hint="Use the roles of nb2prod.")
        changed += _retag(node.cells[index], tuple(names))
    if model is not None:
        config = node.metadata.setdefault("nb2prod", nbformat.NotebookNode())
        config["model"] = model
    target = destination or source
    nbformat.write(node, str(target), version=nbformat.NO_CONVERT)
    return target, changed


def _read_as_is(path: Path) -> nbformat.NotebookNode:
    """The notebook in its own format version, so writing it back changes nothing else."""
    try:
        return nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except Exception as err:  # nbformat raises several unrelated types for bad documents
        raise NotebookReadError(
            f"{path.name} could not be read as a Jupyter notebook: {err}", hint="Check the path.", notebook=path
        ) from err


def _retag(cell: nbformat.NotebookNode, roles: tuple[str, ...]) -> int:
    """Replace the cell's role tags with `roles`; 1 if the tags changed, else 0."""
    if cell.get("cell_type") != "code":
        return 0
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    first = text.splitlines()[0] if text.strip() else ""
    if ROLE_LINE.match(first):
        return 0
    metadata = cell.setdefault("metadata", nbformat.NotebookNode())
    before = list(metadata.get("tags", []))
    if {t for t in before if t in ROLE_TAGS} == set(roles):
        return 0
    after = list(dict.fromkeys([t for t in before if t not in ROLE_TAGS] + list(roles)))
    if after:
        metadata["tags"] = after
    else:
        del metadata["tags"]
    return 1
