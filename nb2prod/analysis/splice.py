"""Edit cell source text at AST positions, keeping everything else byte for byte.

The replay and the recording rewrites change a few expressions of the user's code; splicing
text (instead of `ast.unparse`) keeps their comments, quotes and layout, and an edit that adds
no newline keeps every line number, so a traceback in the run still points at the user's line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace `source[start:end]` with `text` (`start == end` inserts)."""

    start: int
    end: int
    text: str


class Positions:
    """Turns AST (line, UTF-8 byte column) positions into offsets of a str."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, byte_col: int) -> int:
        text = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        return self.starts[line - 1] + len(text.encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def text(self, node: ast.AST) -> str:
        return self.source[self.start(node) : self.end(node)]

    def line_start(self, line: int) -> int:
        return self.starts[line - 1]


def wrap(positions: Positions, node: ast.AST, before: str, after: str) -> list[Edit]:
    """Two insertions around `node`: they compose with edits inside it."""
    return [
        Edit(positions.start(node), positions.start(node), before),
        Edit(positions.end(node), positions.end(node), after),
    ]


def replace(positions: Positions, node: ast.AST, text: str) -> Edit:
    return Edit(positions.start(node), positions.end(node), text)


def apply_edits(source: str, edits: list[Edit], start: int = 0, end: int | None = None) -> str:
    """`source[start:end]` with the edits that fall inside it applied (offsets are of `source`)."""
    end = len(source) if end is None else end
    inside = sorted((e for e in edits if start <= e.start and e.end <= end), key=lambda e: (e.start, e.end))
    parts: list[str] = []
    at = start
    for edit in inside:
        if edit.start < at:
            continue  # inside a range an earlier edit already replaced
        parts.append(source[at : edit.start])
        parts.append(edit.text)
        at = edit.end
    parts.append(source[at:end])
    return "".join(parts)


def statement_text(positions: Positions, node: ast.stmt, edits: list[Edit]) -> str:
    """The statement as written, edits applied, with the comment lines right above it and a
    trailing comment on its last line; continuation lines dedented by its own indentation."""
    start = positions.start(node)
    end = positions.end(node)
    rest = positions.source[end : positions.line_start(int(node.end_lineno or node.lineno) + 1)]
    if rest.strip().startswith("#"):
        end += len(rest.rstrip("\r\n"))
    body = _dedent(apply_edits(positions.source, edits, start, end), node.col_offset)
    return "\n".join([*_comments_above(positions, node.lineno), body])


def _comments_above(positions: Positions, line: int) -> list[str]:
    found: list[str] = []
    number = line - 1
    while number >= 1 and positions.lines[number - 1].strip().startswith("#"):
        found.insert(0, positions.lines[number - 1].strip())
        number -= 1
    return found


def _dedent(text: str, indent: int) -> str:
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        out.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
    return "\n".join(out)


def indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in text.split("\n"))
