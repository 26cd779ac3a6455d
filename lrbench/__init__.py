"""lrbench: the 13 synthetic long-range tasks of the DLR paper as reproducible research infrastructure.

    import lrbench
    task = lrbench.get_task("shift", length=512)
    sample = task.sample(7, split="test", seed=0)      # {"inputs": ..., "targets": ...}
    ds = lrbench.open_dataset("data/shift-L512")
    ds["test"][7]                                       # the same arrays, read from HDF5
"""

import os as _os

# In a plain checkout (nothing installed) generators/, baselines/ and data_cards/ sit beside this
# package rather than inside it; let them resolve as lrbench.generators etc., as an install maps them.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "generators")) and _os.path.isfile(_os.path.join(_root, "generators", "atomic.py")):
    __path__.append(_root)  # noqa: F821 - __path__ exists in a package's __init__

__version__ = "0.1.0"
__all__ = ["LrbenchError", "Task", "get_task", "list_tasks", "open_dataset", "__version__"]

# Nothing of the core loads with the package: the registry (and through it every generator) loads
# when one of these is first asked for, so `import lrbench.baselines` loads the torch models alone
# (SPEC §2).
_LAZY = {"LrbenchError": "lrbench.errors", "Task": "lrbench.registry", "get_task": "lrbench.registry",
         "list_tasks": "lrbench.registry"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lrbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def open_dataset(path):
    """Open an on-disk dataset directory written by ``lrbench generate``."""
    from lrbench.dataset import open_dataset as _open

    return _open(path)
