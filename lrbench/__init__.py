"""lrbench: the 13 synthetic long-range tasks of the DLR paper as reproducible research infrastructure.

    import lrbench
    task = lrbench.get_task("shift", length=512)
    sample = task.sample(7, split="test", seed=0)      # {"inputs": ..., "targets": ...}
    ds = lrbench.open_dataset("data/shift-L512")
    ds["test"][7]                                       # the same arrays, read from HDF5
"""

from lrbench.registry import Task, get_task, list_tasks

__version__ = "0.1.0"
__all__ = ["Task", "get_task", "list_tasks", "open_dataset", "__version__"]


def open_dataset(path):
    """Open an on-disk dataset directory written by ``lrbench generate``."""
    from lrbench.dataset import open_dataset as _open

    return _open(path)
