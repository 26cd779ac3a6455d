"""Read datasets written by ``lrbench generate``, and verify them.

    ds = open_dataset("data/shift-L512")
    ds["test"][7]                     # == get_task("shift", length=512).sample(7, "test", seed)
    for batch in ds["val"].batches(16): ...

HDF5 files are opened lazily, per process: a split view that crosses a fork or is pickled into a
DataLoader worker reopens its files there (h5py handles survive neither).
"""

from __future__ import annotations

import bisect
import json
import os
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np

from lrbench import manifest as manifest_mod
from lrbench.errors import LrbenchError
from lrbench.registry import Task, config_dict, config_json, get_task
from lrbench.manifest import SplitInfo
from lrbench.storage import (SHARD_FORMAT, ShardInfo, attrs_of, describe_file, open_shard_file, sample_digest,
                             sha256_file)


MAX_OPEN_SHARDS = 16  # HDF5 files a split keeps open (least recently used ones are closed)


class Split:
    """One split of an on-disk dataset: ``len()``, ``[i]`` and ``batches(b)``.

    A shard is checked when it is opened: a regular file of the dataset directory, with the
    attributes the manifest implies (task, config, seed, split, first index, number of samples) and
    its fields plain datasets of the declared dtype and shape, stored in the file itself. At most
    MAX_OPEN_SHARDS shards stay open at a time.
    """

    def __init__(self, directory: Path, name: str, entry: SplitInfo, task: Task, seed: int):
        self.directory = directory
        self.name = name
        self.task, self.seed = task, seed
        self.features = task.features
        self.shards = entry.shards
        self._starts = [s.first_index for s in self.shards]
        self._len = entry.num_samples
        self._files: OrderedDict[int, h5py.File] = OrderedDict()
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {self._len} samples, {len(self.shards)} shards)"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = OrderedDict()
        return state

    def _file(self, k: int) -> h5py.File:
        if os.getpid() != self._pid:  # forked: the parent's handles are not ours
            self._files, self._pid = OrderedDict(), os.getpid()
        f = self._files.get(k)
        if f is not None:
            self._files.move_to_end(k)
            return f
        f = open_checked(self.directory, self.shards[k], self.task, self.seed, self.name)
        self._files[k] = f
        if len(self._files) > MAX_OPEN_SHARDS:
            self._files.popitem(last=False)[1].close()
        return f

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = OrderedDict()

    def check_shards(self) -> None:
        """Open, and so check, every shard now rather than when a sample first needs it."""
        for k in range(len(self.shards)):
            self._file(k)

    def read(self, start: int, stop: int, stored: bool = False) -> dict[str, np.ndarray]:
        """Samples [start, stop) stacked per field as stored (ragged fields padded), plus ``lengths``
        for ragged tasks; with ``stored`` also the per-sample ``digest`` of tasks that keep one, so
        that every dataset of the shard comes back (what an export copies)."""
        if not 0 <= start <= stop <= self._len:
            raise IndexError(f"range [{start}, {stop}) outside split {self.name} of {self._len} samples")
        parts: dict[str, list[np.ndarray]] = {}
        i = start
        while i < stop:
            k = bisect.bisect_right(self._starts, i) - 1
            shard = self.shards[k]
            j0, j1 = i - shard.first_index, min(stop, shard.first_index + shard.num_samples) - shard.first_index
            f = self._file(k)
            extras = [m for m in ("lengths", "digest") if m in f and (stored or m == "lengths")]
            for name in list(self.features) + extras:
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
            self.task = get_task(self.manifest.task, **self.manifest.config)
        except ValueError as exc:
            raise LrbenchError(f"{self.path / manifest_mod.MANIFEST}: {exc}") from None
        said, known = (self.manifest.task_id, self.manifest.kind), (self.task.id, self.task.kind)
        if said != known:
            raise LrbenchError(f"{self.path / manifest_mod.MANIFEST}: task {self.task.name} is id {known[0]}, kind "
                               f"{known[1]}; the manifest says id {said[0]}, kind {said[1]}")
        self.config = self.task.config
        self.seed = self.manifest.seed
        self.splits = list(self.manifest.splits)
        self._views: dict[str, Split] = {}

    def __getitem__(self, split: str) -> Split:
        if split not in self.manifest.splits:
            raise KeyError(f"split {split!r} is not in {self.path}; it has {', '.join(self.splits)}")
        if split not in self._views:
            self._views[split] = Split(self.path, split, self.manifest.splits[split], self.task, self.seed)
        return self._views[split]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.manifest.splits[s].num_samples}" for s in self.splits)
        return f"Dataset({str(self.path)!r}, task={self.task.name!r}, {sizes})"

    def close(self) -> None:
        for view in self._views.values():
            view.close()


def open_dataset(path: str | Path) -> Dataset:
    return Dataset(path)


# --- verification -----------------------------------------------------------------------------

def shard_problems(f: h5py.File, task: Task, seed: int, split: str, shard: ShardInfo) -> list[str]:
    """What is wrong with an open shard, given its manifest entry: attributes that disagree with the
    manifest, and fields that are not plain datasets of this very file (links, external storage and
    virtual datasets read bytes from elsewhere) or not of the declared dtype and shape."""
    name, n = shard.file, shard.num_samples
    out = []
    attrs = attrs_of(f)
    want = {"format_version": SHARD_FORMAT, "task": task.name, "seed": seed, "split": split,
            "first_index": shard.first_index, "num_samples": n}
    for key, value in want.items():
        got = attrs.get(key)
        if type(got) is not type(value) or got != value:
            out.append(f"{name}: attribute {key} is {got!r}, expected {value!r}")
    try:
        same_config = json.loads(attrs.get("config")) == config_dict(task.config)
    except (TypeError, ValueError):
        same_config = False
    if not same_config:
        out.append(f"{name}: attribute config is {attrs.get('config')!r}, expected {config_json(task.config)!r}")
    fields = {field: (np.dtype(feat.dtype), (n, *feat.shape)) for field, feat in task.features.items()}
    if any(feat.ragged for feat in task.features.values()):
        fields["lengths"] = (None, (n,))  # any integer type
    if task.spec.digest:
        fields["digest"] = (np.dtype(np.uint8), (n, 16))
    for field, (dtype, shape) in fields.items():
        link = f.get(field, getlink=True)
        if link is None:
            out.append(f"{name}: field {field} missing")
        elif isinstance(link, h5py.SoftLink):
            out.append(f"{name}: field {field} is a soft link (to {link.path}); only plain datasets are read")
        elif isinstance(link, h5py.ExternalLink):
            out.append(f"{name}: field {field} is an external link (to {link.filename}:{link.path}); "
                       "only plain datasets are read")
        elif not isinstance(d := f[field], h5py.Dataset):
            out.append(f"{name}: field {field} is not a dataset")
        elif d.is_virtual:
            out.append(f"{name}: field {field} is a virtual dataset (its bytes live in other files)")
        elif d.external:
            out.append(f"{name}: field {field} uses external storage ({d.external[0][0]}); "
                       "only bytes inside the shard are read")
        elif (d.dtype != dtype if dtype is not None else d.dtype.kind not in "iu") or d.shape != shape:
            out.append(f"{name}: field {field} is {d.dtype}{list(d.shape)}, expected "
                       f"{dtype if dtype is not None else 'integers'}{list(shape)}")
    out += [f"{name}: unexpected member {member!r}" for member in f if member not in fields]
    return out


def open_checked(directory: Path, shard: ShardInfo, task: Task, seed: int, split: str) -> h5py.File:
    """A shard of a dataset opened for reading once it passed ``shard_problems``; LrbenchError if not."""
    path = directory / shard.file
    try:
        f = open_shard_file(path)
    except FileNotFoundError:
        raise LrbenchError(f"{path}: missing") from None
    except OSError as exc:
        raise LrbenchError(f"{path}: {exc.strerror if exc.filename else f'unreadable ({exc})'}") from None
    try:
        problems = shard_problems(f, task, seed, split, shard)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems = [f"{shard.file}: unreadable ({exc})"]
    if problems:
        f.close()
        raise LrbenchError(f"{directory}{os.sep}{problems[0]}")
    return f


def verify(path: str | Path, deep: bool = False, per_shard: int | None = None,
           progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Check a dataset directory; return the problems found (empty when it is intact).

    Always: the manifest (types, shard ranges tiling each split, shard names), every shard's size
    and sha256, its attributes, fields, dtypes and shapes (plain datasets stored in the shard itself),
    and (tasks with a per-sample digest) that no sample is in two splits.
    ``deep``: regenerate samples (all, or ``per_shard`` spread over each shard) and compare bytes.
    """
    directory = Path(path)
    try:
        ds = Dataset(directory)
    except LrbenchError as exc:
        return [str(exc)]
    problems: list[str] = []
    digests: dict[str, np.ndarray] = {}
    total = ds.manifest.num_samples if deep else 0
    done = 0
    for split in ds.splits:
        for shard in ds.manifest.splits[split].shards:
            name, file = shard.file, directory / shard.file
            try:
                st = os.lstat(file)
            except FileNotFoundError:
                problems.append(f"{name}: missing")
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{name}: is {describe_file(st.st_mode)}; shards are regular files of the directory")
                continue
            if st.st_size != shard.bytes:
                problems.append(f"{name}: {st.st_size} bytes, manifest says {shard.bytes} (truncated or replaced)")
                continue
            try:
                intact = sha256_file(file) == shard.sha256
            except OSError as exc:
                problems.append(f"{name}: unreadable ({exc.strerror or exc})")
                continue
            if not intact:
                problems.append(f"{name}: sha256 mismatch (corrupted)")
                continue
            problems += _check_shard(file, ds, split, shard, digests)
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
                n = shard.num_samples
                picks = range(n) if per_shard is None or per_shard >= n else np.unique(
                    np.linspace(0, n - 1, max(1, per_shard)).round().astype(int))
                stored_digests = view._file(k)["digest"][:] if ds.task.spec.digest else None
                for j in picks:
                    i = shard.first_index + int(j)
                    stored, fresh = view[i], ds.task.sample(i, split, ds.seed)
                    for name, f in ds.task.features.items():
                        if not np.array_equal(stored[name], np.asarray(fresh[name]).astype(f.dtype)):
                            problems.append(f"{shard.file}: sample {i} field {name} differs from a fresh generation")
                            break
                    if stored_digests is not None:
                        want = sample_digest(stored["inputs"], ds.task.features["inputs"].dtype)
                        if not np.array_equal(stored_digests[int(j)], want):
                            problems.append(f"{shard.file}: sample {i} digest does not match its inputs")
                done += n
                if progress:
                    progress(done, total)
            view.close()
    ds.close()
    return problems


def _check_shard(file: Path, ds: Dataset, split: str, shard: ShardInfo, digests: dict) -> list[str]:
    name = shard.file
    try:
        with open_shard_file(file) as f:
            out = shard_problems(f, ds.task, ds.seed, split, shard)
            if out:
                return out
            if any(feat.ragged for feat in ds.task.features.values()):
                lengths = f["lengths"][:]
                cap = min(feat.shape[0] for feat in ds.task.features.values() if feat.ragged)
                if lengths.min(initial=1) < 1 or lengths.max(initial=0) > cap:
                    out.append(f"{name}: lengths outside 1..{cap}")
            if ds.task.spec.digest:
                rows = f["digest"][:]
                digests[split] = np.concatenate([digests[split], rows]) if split in digests else rows
            return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{name}: unreadable ({exc})"]


def _shared_rows(a: np.ndarray, b: np.ndarray) -> int:
    va = a.view(f"V{a.shape[1]}").ravel()
    vb = b.view(f"V{b.shape[1]}").ravel()
    return int(np.isin(va, vb).sum())
