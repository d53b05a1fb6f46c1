"""Every error nb2prod raises on purpose.

Each error carries a message that says what went wrong and where, and a hint that says what to
do. The CLI (and later the Jupyter handlers) are the only places that turn these into terminal
text, exit codes or HTTP statuses.
"""

from __future__ import annotations

from pathlib import Path


class Nb2ProdError(Exception):
    """Base class: a problem the user can fix, described for a person."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        notebook: Path | None = None,
        cell_index: int | None = None,
        line: int | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.notebook = notebook
        self.cell_index = cell_index  # 0-based, counting every cell of the notebook
        self.line = line  # 1-based, within that cell
        self.rule = rule  # the lint rule or problem kind, when there is one

    @property
    def kind(self) -> str:
        """The error's class name: what the CLI's exit code and the Jupyter API's error class say."""
        return type(self).__name__

    def location(self) -> dict[str, object]:
        """Where the problem is, as data (the JupyterLab side selects the cell from this)."""
        return {
            "notebook": str(self.notebook) if self.notebook is not None else None,
            "cell_index": self.cell_index,
            "line": self.line,
            "rule": self.rule,
        }

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only context when the error crosses a process boundary (jobs).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[Nb2ProdError], state: dict[str, object]) -> Nb2ProdError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class NotebookReadError(Nb2ProdError):
    """The notebook file is missing, unreadable or not a valid notebook."""


class RoleError(Nb2ProdError):
    """Cell roles are contradictory or unknown."""


class ModelChoiceError(Nb2ProdError):
    """The served model cannot be chosen without the user: several candidates, or none."""

    def __init__(
        self,
        message: str,
        *,
        candidates: tuple[str, ...],
        hint: str = "",
        notebook: Path | None = None,
        cell_index: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint, notebook=notebook, cell_index=cell_index)
        self.candidates = candidates


class OptionsError(Nb2ProdError):
    """A command-line flag, parameter or notebook metadata value is invalid."""

    exit_code = 2


class LintError(Nb2ProdError):
    """Static checks found problems that would make the service wrong; nothing was run."""

    def __init__(self, message: str, *, findings: list[object], hint: str = "", notebook: Path | None = None) -> None:
        first = findings[0] if findings else None
        super().__init__(
            message,
            hint=hint,
            notebook=notebook,
            cell_index=getattr(first, "cell_index", None),
            line=getattr(first, "line", None),
            rule=getattr(first, "code", None),
        )
        self.findings = findings


class KernelError(Nb2ProdError):
    """The kernel could not be started or died."""


class CellExecutionError(Nb2ProdError):
    """A notebook cell raised while the notebook ran."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        notebook: Path,
        cell_index: int,
        first_line: str,
        ename: str,
        evalue: str,
        executed_notebook: Path | None,
        traceback: str = "",
    ) -> None:
        super().__init__(message, hint=hint, notebook=notebook, cell_index=cell_index)
        self.first_line = first_line
        self.ename = ename
        self.evalue = evalue
        self.executed_notebook = executed_notebook
        self.traceback = traceback


class CaptureError(Nb2ProdError):
    """The notebook ran, but its model or features could not be captured."""

    exit_code = 4


class RequirementNotMet(Nb2ProdError):
    """A `--require` metric gate failed."""

    exit_code = 5


class OutputExistsError(Nb2ProdError):
    """The output folder exists and must not be overwritten."""


class TemplateError(Nb2ProdError):
    """The service templates are missing or broken (an installation problem)."""


class DiffError(Nb2ProdError):
    """Two versions cannot be compared: a folder that is not a conversion, rows that cannot be read."""


class IncompatibleVersion(Nb2ProdError):
    """`convert --compatible-with OLD`: the new version would break OLD's clients; nothing was written.
    `changes`: one line per breaking change, with the cell whose code made it when one is known."""

    exit_code = 7

    def __init__(self, message: str, *, changes: list[str] | None = None, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.changes = changes or []
