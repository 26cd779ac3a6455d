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

from lrbench.errors import LrbenchError  # noqa: E402
from lrbench.registry import Task, get_task, list_tasks  # noqa: E402

__version__ = "0.1.0"
__all__ = ["LrbenchError", "Task", "get_task", "list_tasks", "open_dataset", "__version__"]


def open_dataset(path):
    """Open an on-disk dataset directory written by ``lrbench generate``."""
    from lrbench.dataset import open_dataset as _open

    return _open(path)
