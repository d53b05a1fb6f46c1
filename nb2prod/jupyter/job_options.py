"""A job's options: the CLI's `convert` options as JSON, checked in the server, rebuilt in the runner.

The server turns a request's `options` into a plain request (absolute, confined paths; one
type per field) and validates it with `build_options`, so bad options get a 400 before any
process starts. The runner rebuilds the same `ConvertOptions` from that request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nb2prod.errors import OptionsError
from nb2prod.jupyter.paths import confine
from nb2prod.options import ConvertOptions, MetricRequirement, build_options

# option name -> (accepted JSON types, what to say when it is something else)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "output": ((str,), "a folder path relative to the server root"),
    "parameters": ((dict,), "an object of parameter names to values"),
    "name": ((str,), "a service name"),
    "model": ((str,), "a variable name"),
    "features": ((str,), "a variable name"),
    "raw": ((str,), "a variable name"),
    "require": ((list, str), "a list of requirements like 'accuracy>=0.9'"),
    "seed": ((int,), "an integer"),
    "kernel": ((str,), "a kernel name"),
    "compile": ((bool,), "true or false"),
    "timeout": ((int,), "a number of seconds"),
    "version": ((str,), "a base version like 0.2.0"),
    "force": ((bool,), "true or false"),
}
OPTION_NAMES = tuple(_FIELDS)


def job_request(root: Path, notebook: Path, options: Any) -> dict[str, Any]:
    """The runner's request for converting `notebook` (already confined) with the client's `options`."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OptionsError("options must be a JSON object.", hint=f"Known options: {', '.join(OPTION_NAMES)}.")
    request: dict[str, Any] = {"notebook": str(notebook)}
    for key, value in options.items():
        request[key] = _checked(key, value)
    if request.get("output") is not None:
        output = confine(root, request["output"], what="output")
        if output == root.resolve():
            raise OptionsError(
                "output may not be the server root itself.", hint="Name a new folder, e.g. `my-model-service`."
            )
        request["output"] = str(output)
    if isinstance(request.get("require"), str):
        request["require"] = [request["require"]]
    to_convert_options(request)  # validate now: a bad option is the client's 400, not a failed job
    return request


def _checked(key: str, value: Any) -> Any:
    if key not in _FIELDS:
        raise OptionsError(f"unknown option {key!r}.", hint=f"Known options: {', '.join(OPTION_NAMES)}.")
    types, expected = _FIELDS[key]
    wrong_bool = isinstance(value, bool) and bool not in types
    if value is not None and (wrong_bool or not isinstance(value, types)):
        raise OptionsError(f"option {key!r} must be {expected}, not {value!r}.", hint="Fix the request's options.")
    if key == "require" and isinstance(value, list) and not all(isinstance(item, str) for item in value):
        raise OptionsError(f"option 'require' must be {expected}.", hint="Fix the request's options.")
    return value


def to_convert_options(request: dict[str, Any]) -> ConvertOptions:
    """The same `ConvertOptions` the CLI builds, from a job request."""
    values = {key: value for key, value in request.items() if value is not None and key != "require"}
    values["notebook"] = Path(values["notebook"])
    if "output" in values:
        values["output"] = Path(values["output"])
    values["requirements"] = tuple(MetricRequirement.parse(text) for text in request.get("require") or ())
    if "compile" in values:  # `"compile": false` is the CLI's --no-compile
        values["compile_model"] = values.pop("compile")
    return build_options(**values)
