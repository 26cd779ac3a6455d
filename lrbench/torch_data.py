"""Thin PyTorch adapters (import this module only where torch is wanted).

    from lrbench.torch_data import SplitDataset, StreamDataset
    train = StreamDataset(lrbench.get_task("shift", length=512), split="train", seed=0)
    val = SplitDataset("data/shift-L512", "val")
    DataLoader(val, batch_size=16, num_workers=2, collate_fn=val.collate)

Work is divided by (rank, world_size, DataLoader worker) with strides, so DDP ranks and loader
workers together see every sample exactly once: no duplicates, none dropped (ranks may differ by
one sample). Integer fields come out as int64 (what embeddings and cross-entropy take), floats as
float32. HDF5 files are opened lazily inside each worker process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError:  # pragma: no cover - exercised only without torch
    raise ImportError("lrbench.torch_data needs PyTorch: pip install 'lrbench-synth[torch]'") from None

from lrbench.dataset import open_dataset
from lrbench.registry import Feature, Task


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


def to_tensors(sample: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    out = {}
    for name, a in sample.items():
        a = np.asarray(a)
        a = a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a.astype(np.float32, copy=False)
        out[name] = torch.from_numpy(np.ascontiguousarray(a))
    return out


def pad_collate(features: dict[str, Feature]):
    """A collate_fn that stacks samples, padding ragged fields to the longest in the batch with the
    field's pad value (targets: -100, ignored by cross-entropy) and adding ``lengths``."""

    def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        out = {}
        ragged = [n for n, f in features.items() if f.ragged]
        for name in batch[0]:
            items = [b[name] for b in batch]
            if name in ragged:
                out[name] = torch.nn.utils.rnn.pad_sequence(items, batch_first=True, padding_value=features[name].pad)
            else:
                out[name] = torch.stack(items)
        if ragged:
            out["lengths"] = torch.tensor([len(b[ragged[0]]) for b in batch])
        return out

    return collate


class SplitDataset(Dataset):
    """Map-style dataset over one split of an on-disk dataset; with ``world_size`` > 1 it holds the
    samples ``rank, rank + world_size, ...`` of the split."""

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
        sample = to_tensors(self.view[self.indices[i]])
        sample["index"] = torch.tensor(self.indices[i])
        return sample


class StreamDataset(IterableDataset):
    """The index-addressed stream of a task: samples start, start+1, ... (endless when stop is None),
    strided over ranks and loader workers. Sample i is always ``task.sample(i, split, seed)``."""

    def __init__(self, task: Task, split: str = "train", seed: int = 0, start: int = 0, stop: int | None = None,
                 rank: int | None = None, world_size: int | None = None):
        self.task, self.split, self.seed, self.start, self.stop = task, split, seed, start, stop
        self.rank, self.world_size = _rank_world(rank, world_size)
        self.collate = pad_collate(task.features)

    def __iter__(self):
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        slot = self.rank * workers + worker
        step = self.world_size * workers
        index = self.start + slot
        while self.stop is None or index < self.stop:
            sample = to_tensors(self.task.sample(index, self.split, self.seed))
            sample["index"] = torch.tensor(index)
            yield sample
            index += step
