"""Per-sample random generators derived from names and indices, never from iteration order.

Every sample is a pure function of (task, config, seed, split, index): its generator is built from
``SeedSequence(seed, spawn_key=(task_id, split_id, index))``. The "fixed" structure of the fixed
variants (SelectFixed positions, SolveFixed matrix) uses the key ``(task_id, FIXED_KEY)``, which
no split can produce because split ids are 0..2. The order in which a finite train split is read in
epoch e (``lrbench evaluate``, ``lrbench.torch_data``) uses ``(task_id, EPOCH_KEY, e)``.
"""

from __future__ import annotations

import numpy as np

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
FIXED_KEY = 1000  # spawn-key slot of the per-task fixed structure; not a split id
EPOCH_KEY = 2000  # spawn-key slot of the per-epoch train order; neither a split id nor FIXED_KEY


def split_id(split: str) -> int:
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})") from None


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    return int(seed)


def sample_rng(task_id: int, seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one sample; independent of every other (task, seed, split, index)."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative integer (got {index!r})")
    ss = np.random.SeedSequence(check_seed(seed), spawn_key=(task_id, split_id(split), int(index)))
    return np.random.Generator(np.random.PCG64(ss))


def fixed_rng(task_id: int, seed: int) -> np.random.Generator:
    """The generator of a task's fixed structure: same for every split and index."""
    ss = np.random.SeedSequence(check_seed(seed), spawn_key=(task_id, FIXED_KEY))
    return np.random.Generator(np.random.PCG64(ss))


def epoch_order(task_id: int, seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of a finite split's n samples in epoch ``epoch``: a permutation of 0..n-1 that
    depends on (task, seed, epoch) only, so a resumed run reads the same order.

    >>> a = epoch_order(12, 0, 0, 5)
    >>> sorted(a.tolist()), a.tolist() == epoch_order(12, 0, 0, 5).tolist()
    ([0, 1, 2, 3, 4], True)
    """
    ss = np.random.SeedSequence(check_seed(seed), spawn_key=(task_id, EPOCH_KEY, int(epoch)))
    return np.random.Generator(np.random.PCG64(ss)).permutation(n)
