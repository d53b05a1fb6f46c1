"""The `nb2prod` command line: the one place that prints to the terminal and picks exit codes."""

import sys

# nbformat imports jsonschema, whose format checkers import rfc3987_syntax when it is installed
# (jupyter_server brings it): that builds a parser at import, 1.7 s of CPU here, on every command.
# nb2prod never checks IRI formats, so the command line does without that checker. Only when
# jsonschema is not loaded yet: a process that imports this package later keeps what it has.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from nb2prod.cli.main import main  # noqa: E402

__all__ = ["main"]
