"""Exact versions of the distributions the model and preprocess code need, from the kernel's environment.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import importlib.metadata
import re
import sys


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _distributions(modules, package):
    """Exact versions of the distributions providing `modules`, with their installed requirements."""
    providers = _module_providers()
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


def _module_providers():
    """Top-level module -> distributions providing it (`packages_distributions` is Python >= 3.10)."""
    newer = getattr(importlib.metadata, "packages_distributions", None)
    if newer is not None:
        return newer()
    providers = {}
    for dist in importlib.metadata.distributions():
        top_level = dist.read_text("top_level.txt") or ""
        names = top_level.split() or [
            str(f).split("/")[0].replace(".py", "")
            for f in (dist.files or [])
            if "/" in str(f) or str(f).endswith(".py")
        ]
        for module in set(names):
            providers.setdefault(module, []).append(dist.metadata["Name"])
    return providers
