"""Which data files the run read: an audit hook on `open`, installed before the notebook's first cell.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
The setup cell (before the user's cells) calls `_nb2prod_watch_reads`; the hook notes the first
open of every path, for reading or for writing, and nothing else (it must stay cheap: it hears
every open, also Python's own imports). Audit hooks cannot be removed, so the capture step makes
it inert (`_data_reads` switches it off) and only then decides which paths were data files and
hashes them, after the run. Reads made by C code (pyarrow, sqlite) or in subprocesses raise no
audit event and are not seen.
"""

import hashlib
import os
import site
import sys
import sysconfig

# The namespace variable that holds the hook's state from the setup cell to the capture cell.
_READS_VARIABLE = "_nb2prod_reads"
# Code, not data: the import system opens these (and so do tracebacks and warnings).
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".pyi", ".pth", ".so", ".dylib", ".dll")
# Outside the notebook's folder, files under these belong to the system, not to the notebook.
_SYSTEM_DIRS = ("/dev", "/proc", "/sys", "/etc", "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/run", "/snap")
_ACCESS_MODE = 3  # O_ACCMODE on POSIX; O_RDONLY, O_WRONLY, O_RDWR are 0, 1, 2 on Windows too
_CHUNK = 1 << 20


def _nb2prod_watch_reads(namespace, config):
    """Install the hook; `config`: `root` (the notebook's folder) and `exclude` (folders nb2prod writes)."""
    state = {"on": True, "root": config["root"], "exclude": list(config["exclude"]), "first": {}}
    first = state["first"]

    def hook(event, args):
        if event != "open" or not state["on"]:
            return
        try:
            path = args[0]
            if isinstance(path, int) or path is None:
                return  # an already open file descriptor
            path = os.fspath(path)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if path.endswith(_CODE_SUFFIXES):
                return
            path = os.path.abspath(path)
            if path not in first:
                flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
                first[path] = "read" if flags & _ACCESS_MODE == os.O_RDONLY else "write"
        except Exception:  # noqa: BLE001 - the hook must never break the notebook's own open()
            pass

    sys.addaudithook(hook)
    namespace[_READS_VARIABLE] = state


def _data_reads(namespace):
    """Switch the hook off; the data files the run read, sorted by path, each with size and sha256.

    None when the setup cell's state is gone (the notebook reset its namespace)."""
    state = namespace.get(_READS_VARIABLE)
    if not isinstance(state, dict) or "first" not in state:
        return None
    state["on"] = False
    root = os.path.realpath(state["root"])
    python_dirs = _python_dirs()
    exclude = [os.path.realpath(folder) for folder in state["exclude"]]
    found = {}
    for path, how in sorted(state["first"].items()):
        if how != "read":
            continue  # first opened for writing: something the run made, not an input
        real = os.path.realpath(path)
        if not _is_data_file(real, root, python_dirs, exclude):
            continue
        shown = _shown_path(real, root)
        if shown not in found:
            found[shown] = _described(real, shown)
    return [found[shown] for shown in sorted(found) if found[shown] is not None]


def _is_data_file(path, root, python_dirs, exclude, home=None):
    """True for a file the notebook read as data; False for code, Python's own files, nb2prod's
    files, and (outside the notebook's folder) system files and the home folder's hidden folders."""
    if not os.path.isfile(path) or path.endswith(_CODE_SUFFIXES):
        return False
    parts = path.replace("\\", "/").split("/")
    if "__pycache__" in parts or "site-packages" in parts or "dist-packages" in parts:
        return False
    if any(_under(path, folder) for folder in exclude) or any(_under(path, folder) for folder in python_dirs):
        return False
    if _under(path, root):
        return True
    if any(_under(path, folder) for folder in _SYSTEM_DIRS):
        return False
    home = home if home is not None else os.path.realpath(os.path.expanduser("~"))
    if home and home != "/" and _under(path, home):
        return not os.path.relpath(path, home).startswith(".")  # ~/.cache, ~/.config, ~/.ipython, ...
    return True


def _python_dirs():
    """The folders of the interpreter and its installed packages."""
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            folders.add(sysconfig.get_path(name))
        except KeyError:
            pass
    try:
        folders.update(site.getsitepackages())
        folders.add(site.getusersitepackages())
    except AttributeError:  # an old virtualenv's site module
        pass
    return sorted({os.path.realpath(folder) for folder in folders if folder})


def _under(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _shown_path(path, root):
    """Relative to the notebook's folder (with /) when inside it, else absolute."""
    if _under(path, root):
        return os.path.relpath(path, root).replace(os.sep, "/")
    return path


def _described(path, shown):
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return {"path": shown, "size": size, "sha256": "sha256:" + digest.hexdigest()}
