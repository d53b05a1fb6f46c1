"""Make the model picklable for the service: rehome preprocess definitions, probe, dump.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import os
import pickle
import sys
import types

from nb2prod.run.kernel.common import _CaptureProblem


def _rebind_preprocess_definitions(namespace, package, names):
    """Make classes/functions from preprocess cells pickle as `<package>.preprocessing.<name>`.

    In the kernel they live in `__main__`, which the service cannot import. Pickle stores the
    module and name of a class or function, so we point them at the generated module and
    register that module so pickle can check the reference now.
    """
    module_name = f"{package}.preprocessing"
    parent = sys.modules.get(package) or types.ModuleType(package)
    module = sys.modules.get(module_name) or types.ModuleType(module_name)
    parent.preprocessing = module
    sys.modules.setdefault(package, parent)
    sys.modules.setdefault(module_name, module)
    for name in names:
        value = namespace.get(name)
        if value is None or getattr(value, "__module__", None) != "__main__":
            continue
        value.__module__ = module_name
        setattr(module, name, value)


class _ReferenceProbe(pickle.Pickler):
    """A pickler that notes every module the model refers to, and anything left in __main__."""

    def __init__(self, handle):
        super().__init__(handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules = set()
        self.main_names = []

    def persistent_id(self, obj):
        if isinstance(obj, (type, types.FunctionType)):
            module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "?")
        else:
            module, name = type(obj).__module__, type(obj).__qualname__
        if module == "__main__":
            if name not in self.main_names:
                self.main_names.append(name)
        elif module:
            self.modules.add(module.split(".")[0])
        return None


def _check_picklable(model, variable):
    # The probe's bytes are thrown away (joblib writes the real file), so a large model is not
    # held twice in memory.
    with open(os.devnull, "wb") as sink:
        probe = _ReferenceProbe(sink)
        return _probe(probe, model, variable)


def _probe(probe, model, variable):
    failure = None
    try:
        probe.dump(model)
    except Exception as err:  # noqa: BLE001 - pickling raises many unrelated types
        failure = f"{type(err).__name__}: {err}"
    if "<lambda>" in probe.main_names:
        raise _CaptureProblem("lambda", "the model holds a lambda", variable=variable)
    if failure is not None:
        raise _CaptureProblem("not_serializable", failure, variable=variable)
    if probe.main_names:
        raise _CaptureProblem(
            "main_reference", "the model refers to code outside preprocess cells", names=probe.main_names
        )
    return probe.modules


def _dump(model, path, variable):
    import joblib

    try:
        joblib.dump(model, path)
    except Exception as err:  # noqa: BLE001 - pickling raises many unrelated types
        raise _CaptureProblem("not_serializable", f"{type(err).__name__}: {err}", variable=variable) from None
