"""Exact versions of the distributions the model and preprocess code need, from the kernel's environment.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import csv
import importlib.metadata
import inspect
import re
import sys


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _distributions(modules, package):
    """Exact versions of the distributions providing `modules`, with their installed requirements."""
    providers = _module_providers(modules)
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    wanted = set()
    for module in modules:
        if module in stdlib or module in (package, "__main__", "builtins"):
            continue
        wanted.update(providers.get(module, []))
    versions = {}
    queue = sorted(wanted)
    while queue:
        name = queue.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        key = _normal(dist.metadata["Name"])
        if key in versions:
            continue
        versions[key] = dist.version
        for requirement in dist.requires or []:
            if "extra ==" in requirement or "extra==" in requirement:
                continue
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match:
                queue.append(match.group(1))
    return dict(sorted(versions.items()))


def _module_providers(modules):
    """Top-level module -> distributions providing it, for `modules` only.

    What `packages_distributions` finds (a distribution's top_level.txt, else the top-level names
    of the files its RECORD lists), read as plain text: parsing the metadata and file list of every
    installed distribution, as it does, cost more than the rest of the capture step. Works the same
    on every Python the kernel may have (`packages_distributions` is Python >= 3.10).
    """
    wanted = set(modules)
    providers = {}
    for dist in importlib.metadata.distributions():
        names = set((dist.read_text("top_level.txt") or "").split()) or _recorded_top_level(dist)
        found = names & wanted
        if found:
            name = _metadata_name(dist)
            for module in found:
                providers.setdefault(module, []).append(name)
    return providers


def _recorded_top_level(dist):
    """Importable top-level names of the files `dist` installed (its RECORD, else its file list)."""
    record = dist.read_text("RECORD")
    paths = [row[0] for row in csv.reader(record.splitlines()) if row] if record else [str(f) for f in dist.files or []]
    names = set()
    for path in paths:
        top, _, rest = path.replace("\\", "/").partition("/")
        name = top if rest else (inspect.getmodulename(top) or top)
        if "." not in name:
            names.add(name)
    return names


def _metadata_name(dist):
    """The distribution's `Name`, read from the top of its metadata without parsing all of it."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line[:5].lower() == "name:":
            return line[5:].strip()
    return dist.metadata["Name"]
