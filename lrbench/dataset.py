"""Read datasets written by ``lrbench generate``, and verify them.

    ds = open_dataset("data/shift-L512")
    ds["test"][7]                     # == get_task("shift", length=512).sample(7, "test", seed)
    for batch in ds["val"].batches(16): ...

HDF5 files are opened lazily, per process: a split view that crosses a fork or is pickled into a
DataLoader worker reopens its files there (h5py handles survive neither).
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np

from lrbench import manifest as manifest_mod
from lrbench.generate import sample_digest
from lrbench.registry import Task, get_task
from lrbench.storage import attrs_of, sha256_file


class Split:
    """One split of an on-disk dataset: ``len()``, ``[i]`` and ``batches(b)``."""

    def __init__(self, directory: Path, name: str, entry: dict, task: Task):
        self.directory = directory
        self.name = name
        self.features = task.features
        self.shards = entry["shards"]
        self._starts = [s["first_index"] for s in self.shards]
        self._len = entry["num_samples"]
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {self._len} samples, {len(self.shards)} shards)"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def _file(self, k: int) -> h5py.File:
        if os.getpid() != self._pid:  # forked: the parent's handles are not ours
            self._files, self._pid = {}, os.getpid()
        if k not in self._files:
            self._files[k] = h5py.File(self.directory / self.shards[k]["file"], "r")
        return self._files[k]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Samples [start, stop) stacked per field as stored (ragged fields padded), plus ``lengths``
        for ragged tasks."""
        if not 0 <= start <= stop <= self._len:
            raise IndexError(f"range [{start}, {stop}) outside split {self.name} of {self._len} samples")
        parts: dict[str, list[np.ndarray]] = {}
        i = start
        while i < stop:
            k = bisect.bisect_right(self._starts, i) - 1
            shard = self.shards[k]
            j0, j1 = i - shard["first_index"], min(stop, shard["first_index"] + shard["num_samples"]) - shard["first_index"]
            f = self._file(k)
            for name in list(self.features) + (["lengths"] if "lengths" in f else []):
                parts.setdefault(name, []).append(f[name][j0:j1])
            i += j1 - j0
        return {name: np.concatenate(chunks) if len(chunks) > 1 else chunks[0] for name, chunks in parts.items()}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if isinstance(index, slice):
            raise TypeError("use .read(start, stop) or .batches(b) for ranges")
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for split {self.name} of {self._len} samples")
        rows = self.read(index, index + 1)
        length = int(rows["lengths"][0]) if "lengths" in rows else None
        return {
            name: rows[name][0][:length] if f.ragged else rows[name][0]
            for name, f in self.features.items()
        }

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive batches of ``batch_size`` samples (the last may be smaller)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive (got {batch_size})")
        stop = self._len if stop is None else stop
        for i in range(start, stop, batch_size):
            yield self.read(i, min(stop, i + batch_size))


class Dataset:
    """An on-disk dataset: ``ds.task``, ``ds.config``, ``ds.seed``, ``ds.splits``, ``ds[split]``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = manifest_mod.read(self.path)
        try:
            self.task = get_task(self.manifest["task"], **self.manifest["config"])
        except ValueError as exc:
            raise manifest_mod.ManifestError(f"{self.path}: {exc}") from None
        self.config = self.task.config
        self.seed = self.manifest["seed"]
        self.splits = list(self.manifest["splits"])
        self._views: dict[str, Split] = {}

    def __getitem__(self, split: str) -> Split:
        if split not in self.manifest["splits"]:
            raise KeyError(f"split {split!r} is not in {self.path}; it has {', '.join(self.splits)}")
        if split not in self._views:
            self._views[split] = Split(self.path, split, self.manifest["splits"][split], self.task)
        return self._views[split]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.manifest['splits'][s]['num_samples']}" for s in self.splits)
        return f"Dataset({str(self.path)!r}, task={self.task.name!r}, {sizes})"

    def close(self) -> None:
        for view in self._views.values():
            view.close()


def open_dataset(path: str | Path) -> Dataset:
    return Dataset(path)


# --- verification -----------------------------------------------------------------------------

def verify(path: str | Path, deep: bool = False, per_shard: int | None = None,
           progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Check a dataset directory; return the problems found (empty when it is intact).

    Always: the manifest, every shard's size and sha256, its attributes, fields, dtypes and shapes,
    contiguous index ranges, and (tasks with a per-sample digest) that no sample is in two splits.
    ``deep``: regenerate samples (all, or ``per_shard`` spread over each shard) and compare bytes.
    """
    directory = Path(path)
    try:
        ds = Dataset(directory)
    except manifest_mod.ManifestError as exc:
        return [str(exc)]
    problems: list[str] = []
    digests: dict[str, np.ndarray] = {}
    total = sum(s["num_samples"] for e in ds.manifest["splits"].values() for s in e["shards"]) if deep else 0
    done = 0
    for split in ds.splits:
        entry = ds.manifest["splits"][split]
        expected = 0
        for shard in entry["shards"]:
            name, file = shard["file"], directory / shard["file"]
            if shard["first_index"] != expected:
                problems.append(f"{name}: starts at sample {shard['first_index']}, expected {expected}")
            expected = shard["first_index"] + shard["num_samples"]
            if not file.exists():
                problems.append(f"{name}: missing")
                continue
            size = file.stat().st_size
            if size != shard["bytes"]:
                problems.append(f"{name}: {size} bytes, manifest says {shard['bytes']} (truncated or replaced)")
                continue
            if sha256_file(file) != shard["sha256"]:
                problems.append(f"{name}: sha256 mismatch (corrupted)")
                continue
            problems += _check_shard(file, ds, split, shard, digests)
        if expected != entry["num_samples"]:
            problems.append(f"split {split}: shards cover {expected} samples, manifest says {entry['num_samples']}")
    splits = list(digests)
    for a in range(len(splits)):
        for b in range(a + 1, len(splits)):
            shared = _shared_rows(digests[splits[a]], digests[splits[b]])
            if shared:
                problems.append(f"{shared} sample(s) appear in both {splits[a]} and {splits[b]}")
    if deep and not problems:
        for split in ds.splits:
            view = ds[split]
            for k, shard in enumerate(view.shards):
                n = shard["num_samples"]
                picks = range(n) if per_shard is None or per_shard >= n else np.unique(
                    np.linspace(0, n - 1, max(1, per_shard)).round().astype(int))
                digests = view._file(k)["digest"] if ds.task.spec.digest else None
                for j in picks:
                    i = shard["first_index"] + int(j)
                    stored, fresh = view[i], ds.task.sample(i, split, ds.seed)
                    for name, f in ds.task.features.items():
                        if not np.array_equal(stored[name], np.asarray(fresh[name]).astype(f.dtype)):
                            problems.append(f"{shard['file']}: sample {i} field {name} differs from a fresh generation")
                            break
                    if digests is not None:
                        want = sample_digest(stored["inputs"], ds.task.features["inputs"].dtype)
                        if not np.array_equal(digests[int(j)], want):
                            problems.append(f"{shard['file']}: sample {i} digest does not match its inputs")
                done += n
                if progress:
                    progress(done, total)
    ds.close()
    return problems


def _check_shard(file: Path, ds: Dataset, split: str, shard: dict, digests: dict) -> list[str]:
    name = shard["file"]
    try:
        with h5py.File(file, "r") as f:
            attrs = attrs_of(f)
            out = []
            want = {"task": ds.task.name, "split": split, "first_index": shard["first_index"],
                    "num_samples": shard["num_samples"], "seed": ds.seed}
            for key, value in want.items():
                got = attrs.get(key)
                if got != value:
                    out.append(f"{name}: attribute {key} is {got!r}, expected {value!r}")
            n = shard["num_samples"]
            for field, feat in ds.task.features.items():
                if field not in f:
                    out.append(f"{name}: field {field} missing")
                    continue
                d = f[field]
                if d.dtype != np.dtype(feat.dtype) or d.shape != (n, *feat.shape):
                    out.append(f"{name}: field {field} is {d.dtype}{list(d.shape)}, expected {feat.dtype}{[n, *feat.shape]}")
            if any(feat.ragged for feat in ds.task.features.values()):
                lengths = f["lengths"][:] if "lengths" in f else None
                cap = min(feat.shape[0] for feat in ds.task.features.values() if feat.ragged)
                if lengths is None or lengths.shape != (n,) or lengths.min(initial=1) < 1 or lengths.max(initial=0) > cap:
                    out.append(f"{name}: lengths missing or outside 1..{cap}")
            if ds.task.spec.digest:
                if "digest" not in f:
                    out.append(f"{name}: per-sample digest missing")
                else:
                    rows = f["digest"][:]
                    digests[split] = np.concatenate([digests[split], rows]) if split in digests else rows
            return out
    except (OSError, ValueError, KeyError) as exc:
        return [f"{name}: unreadable ({exc})"]


def _shared_rows(a: np.ndarray, b: np.ndarray) -> int:
    va = a.view(f"V{a.shape[1]}").ravel()
    vb = b.view(f"V{b.shape[1]}").ravel()
    return int(np.isin(va, vb).sum())
