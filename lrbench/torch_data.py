"""PyTorch adapters: the one path from lrbench data to torch (import this module only where torch is
wanted).

    from lrbench.torch_data import SplitDataset, StreamDataset, loader
    stream = StreamDataset(lrbench.get_task("shift", length=512), batch_size=32, seed=0)
    for batch in loader(stream, workers=2):   # batch["step"] = s holds samples 32s ... 32s + 31
        batch["inputs"], batch["targets"], batch["index"]
    val = SplitDataset("data/shift-L512", "val")
    DataLoader(val, batch_size=16, num_workers=2, collate_fn=val.collate)

Batches are a pure function of (task, seed, step): step s of a stream with global batch B holds
samples s·B ... s·B + B - 1; rank r of W data-parallel processes gets its B/W slice of them. The
number of DataLoader workers, of ranks, and restarts (``start=s``) change nothing, so a user's loop
sees at step s exactly the batch ``lrbench evaluate`` trains on (it uses these very classes). A
finite train split (ListOps, Pathfinder) is read in a new order every epoch, the order keyed on
(task, seed, epoch) by ``lrbench.seeding.epoch_order``.

Fields keep their stored dtypes (uint8 images stay uint8; cast on the device, where it is cheap).
Ragged fields are padded per batch with their pad value (``Feature.stack``), with ``lengths``. HDF5
files are opened lazily inside each worker process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    import torch
    from torch.utils.data import DataLoader, Dataset
except ImportError:  # pragma: no cover - exercised only without torch
    raise ImportError("lrbench.torch_data needs PyTorch: pip install 'lrbench-synth[torch]'") from None

from lrbench.dataset import Split, open_dataset
from lrbench.registry import Feature, Task
from lrbench.seeding import epoch_order


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values win; otherwise the initialised process group's; otherwise a single process."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        else:
            rank, world_size = rank or 0, world_size or 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}) (got {rank})")
    return rank, world_size


def to_tensors(arrays: dict) -> dict:
    """numpy arrays as tensors of the same dtype (sharing memory); other values pass through."""
    return {name: torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
            for name, a in arrays.items()}


def collate(features: dict[str, Feature], samples: list[dict]) -> dict[str, np.ndarray]:
    """Samples stacked per field in their stored dtypes, ragged fields padded to the longest with
    their pad value (targets: -100, ignored by the loss and the metrics), plus ``lengths``."""
    out = {name: f.stack([np.asarray(s[name]) for s in samples]) for name, f in features.items()}
    ragged = [name for name, f in features.items() if f.ragged]
    if ragged:
        out["lengths"] = np.array([len(s[ragged[0]]) for s in samples], dtype=np.int64)
    return out


def pad_collate(features: dict[str, Feature]):
    """A DataLoader collate_fn over samples of tensors or arrays: ``collate``, as tensors."""

    def collate_fn(batch: list[dict]) -> dict[str, torch.Tensor]:
        plain = [{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in s.items()} for s in batch]
        out = collate(features, plain)
        if "index" in batch[0]:
            out["index"] = np.array([int(s["index"]) for s in batch], dtype=np.int64)
        return to_tensors(out)

    return collate_fn


class Source:
    """Sample i of one split: ``task.sample(i, split, seed)``, or read from an on-disk split ``view``
    (the same arrays). With ``epoch_size`` n, index i is sample order_e[i mod n] of epoch e = i // n,
    order_e = ``epoch_order(task, seed, e)``: a finite split read epoch after epoch, each in a new
    order. Crosses into worker processes (an on-disk view reopens its files there)."""

    def __init__(self, task: Task, split: str = "train", seed: int = 0, view: Split | None = None,
                 epoch_size: int | None = None):
        self.task, self.split, self.seed, self.view, self.epoch_size = task, split, seed, view, epoch_size
        self._order: tuple[int, np.ndarray] | None = None

    def item(self, i: int) -> int:
        """Which sample of the split index i reads."""
        if self.epoch_size is None:
            return i
        epoch, j = divmod(i, self.epoch_size)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.task.id, self.seed, epoch, self.epoch_size))
        return int(self._order[1][j])

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        i = self.item(i)
        return self.task.sample(i, self.split, self.seed) if self.view is None else self.view[i]


class StepBatches(Dataset):
    """Map-style dataset of batches addressed by key: item k is the batch of key = keys[k], samples
    key·stride + offset ... + size - 1 of ``source`` (clipped at ``limit``), as a dict of arrays with
    ``step`` (the key) and ``index`` (the source indices). A DataLoader with ``batch_size=None``
    yields them in key order whatever its number of workers (``loader``)."""

    def __init__(self, source: Source, keys: range, stride: int, offset: int, size: int, limit: int | None = None):
        self.source, self.keys = source, keys
        self.stride, self.offset, self.size, self.limit = stride, offset, size, limit
        self.features = source.task.features

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, k: int) -> dict:
        key = self.keys[k]
        lo = key * self.stride + self.offset
        hi = lo + self.size if self.limit is None else min(lo + self.size, self.limit)
        batch = collate(self.features, [self.source(i) for i in range(lo, hi)])
        return {"step": key, "index": np.arange(lo, hi), **batch}


class StreamDataset(StepBatches):
    """The step-addressed batch stream of a task's split: item k is the batch of step start + k, the
    samples s·B ... s·B + B - 1 (this rank's B/W of them), endless when ``stop`` is None.

    ``source`` replaces the generated stream (an on-disk split, epochs of a finite split); ``task``,
    ``split`` and ``seed`` then come from it. Use with ``loader`` or
    ``DataLoader(stream, batch_size=None, num_workers=N)``.
    """

    def __init__(self, task: Task | None = None, split: str = "train", seed: int = 0, batch_size: int = 1,
                 start: int = 0, stop: int | None = None, rank: int | None = None, world_size: int | None = None,
                 source: Source | None = None):
        rank, world = _rank_world(rank, world_size)
        if batch_size < 1 or batch_size % world:
            raise ValueError(f"batch_size must be a positive multiple of world_size {world} (got {batch_size})")
        source = source if source is not None else Source(task, split, seed)
        part = batch_size // world
        super().__init__(source, range(start, sys.maxsize if stop is None else stop), batch_size, rank * part, part)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world


def evaluation_batches(source: Source, batch_size: int, num_samples: int, rank: int = 0,
                       world_size: int = 1) -> StepBatches:
    """Samples 0 ... num_samples - 1 in whole batches of ``batch_size`` (the last may be shorter),
    batch k on rank k mod world_size: what metrics accumulate and merge over ranks."""
    count = -(-num_samples // batch_size)
    return StepBatches(source, range(rank, count, world_size), batch_size, 0, batch_size, limit=num_samples)


def loader(batches: Dataset, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Batches as tensors in key order; ``workers`` processes build them ahead (forked where the
    platform can: the task is not pickled then)."""
    kw = {}
    if workers > 0:
        import multiprocessing as mp

        kw = dict(num_workers=workers, prefetch_factor=4,
                  multiprocessing_context="fork" if "fork" in mp.get_all_start_methods() else None)
    return DataLoader(batches, batch_size=None, shuffle=False, pin_memory=pin_memory, **kw)


class SplitDataset(Dataset):
    """Map-style dataset of the samples of one on-disk split; with ``world_size`` > 1 it holds the
    samples ``rank, rank + world_size, ...`` of the split. Batch them with ``collate``."""

    def __init__(self, path: str | Path, split: str, rank: int | None = None, world_size: int | None = None):
        self.rank, self.world_size = _rank_world(rank, world_size)
        self.path, self.split = Path(path), split
        ds = open_dataset(self.path)
        self.task = ds.task
        self.view = ds[split]  # opens files lazily, per process
        self.indices = range(self.rank, len(self.view), self.world_size)
        self.collate = pad_collate(self.task.features)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return to_tensors({**self.view[self.indices[i]], "index": np.array(self.indices[i])})
