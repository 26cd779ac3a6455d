"""manifest.json: the one file that says what a dataset directory holds. Only this module writes it.

It is written last, atomically, once every shard exists; its presence means the dataset is complete.
It is read back as types, checked once here before anything is read through it:

    m = read("data/shift-L512")                  # a Manifest; LrbenchError if it cannot be trusted
    m.task, m.seed, m.config                     # "shift", 0, {"length": 512, "num_shifts": 8}
    m.splits["test"].num_samples                 # 6400
    m.splits["test"].shards[0].sha256            # a storage.ShardInfo
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lrbench.errors import LrbenchError
from lrbench.seeding import SPLITS
from lrbench.storage import SHA256, ShardInfo, atomic_write_bytes, open_regular, shard_name

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 64 << 20  # ~100 bytes a shard: room for every split at the most shards
MAX_SHARDS = 99_999  # per split: shard names have five digits
MAX_SEED = 2 ** 63 - 1  # stored as a 64-bit integer in every shard
VERSIONS = ("lrbench", "numpy", "h5py")


@dataclass(frozen=True)
class FeatureInfo:
    """A field as stored: dtype, per-sample shape (a ragged field's first axis is its maximum), and
    the value padding a ragged field."""

    dtype: str
    shape: tuple[int, ...]
    ragged: bool
    pad: int | float

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "ragged": self.ragged, "pad": self.pad}


@dataclass(frozen=True)
class SplitInfo:
    """A split: its number of samples and its shards, whose ranges tile 0..num_samples-1 in order."""

    num_samples: int
    shards: tuple[ShardInfo, ...]

    def to_json(self) -> dict:
        return {"num_samples": self.num_samples, "shards": [info.to_json() for info in self.shards]}


@dataclass(frozen=True)
class Manifest:
    """What a dataset directory holds, as ``lrbench generate`` wrote it."""

    versions: dict[str, str]  # lrbench, numpy, h5py
    task: str
    task_id: int
    config: dict  # the task's parameters, as JSON gives them back
    seed: int
    kind: str
    features: dict[str, FeatureInfo]
    splits: dict[str, SplitInfo]  # in split order
    format_version: int = FORMAT_VERSION

    @property
    def num_samples(self) -> int:
        """Samples in every split together."""
        return sum(entry.num_samples for entry in self.splits.values())

    def to_json(self) -> dict:
        return {
            "format_version": self.format_version,
            "versions": dict(self.versions),
            "task": self.task,
            "task_id": self.task_id,
            "config": self.config,
            "seed": self.seed,
            "kind": self.kind,
            "features": {name: f.to_json() for name, f in self.features.items()},
            "splits": {split: entry.to_json() for split, entry in self.splits.items()},
        }

    @classmethod
    def from_json(cls, m: dict) -> "Manifest":
        """A manifest from JSON that ``_check`` accepted."""
        return cls(
            versions={k: m["versions"][k] for k in VERSIONS}, task=m["task"], task_id=m["task_id"],
            config=m["config"], seed=m["seed"], kind=m["kind"],
            features={name: FeatureInfo(f["dtype"], tuple(f["shape"]), f["ragged"], f["pad"])
                      for name, f in m["features"].items()},
            splits={split: SplitInfo(entry["num_samples"], tuple(_shard_info(shard) for shard in entry["shards"]))
                    for split, entry in m["splits"].items()},
            format_version=m["format_version"])


def _shard_info(shard: dict) -> ShardInfo:
    return ShardInfo(shard["file"], shard["first_index"], shard["num_samples"], shard["bytes"], shard["sha256"])


def build(task, seed: int, shards: dict[str, list[ShardInfo]], sizes: dict[str, int]) -> Manifest:
    from lrbench import __version__
    from lrbench.registry import config_dict

    return Manifest(
        versions={"lrbench": __version__, "numpy": np.__version__, "h5py": h5py.__version__},
        task=task.name, task_id=task.id, config=config_dict(task.config), seed=seed, kind=task.kind,
        features={name: FeatureInfo(f.dtype, tuple(f.shape), f.ragged, f.pad) for name, f in task.features.items()},
        splits={split: SplitInfo(sizes[split], tuple(shards[split])) for split in shards})


def write(directory: str | Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(Path(directory) / MANIFEST, text.encode())


def read(directory: str | Path) -> Manifest:
    """The manifest of a dataset directory, checked once here before anything is read through it:
    types, splits, shard entries whose ranges tile each split exactly, shard files named as the
    writer names them (plain names inside the directory), features and versions. Raises LrbenchError
    (code 2; ``verify`` reports it and exits 3)."""
    path = Path(directory) / MANIFEST
    try:
        with os.fdopen(open_regular(path, follow=True), "rb") as f:
            data = _read_at_most(f, MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise LrbenchError(f"no {MANIFEST} in {directory} (not an lrbench dataset, or generation did not finish)") from None
    except OSError as exc:
        raise LrbenchError(f"{path} {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise LrbenchError(f"{path} is larger than {MAX_MANIFEST_BYTES >> 20} MiB: not a manifest lrbench wrote")
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LrbenchError(f"{path} is not valid JSON: {exc}") from None
    try:
        _check(manifest)
    except ValueError as exc:
        raise LrbenchError(f"{path}: {exc}") from None
    return Manifest.from_json(manifest)


def _read_at_most(f, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``f``, read in pieces (``f.read(limit)`` would allocate ``limit``)."""
    parts, size = [], 0
    while size < limit and (part := f.read(min(1 << 20, limit - size))):
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _check(m) -> None:
    """Raise ValueError naming the first thing wrong with the manifest ``m``."""
    if not isinstance(m, dict) or not _is_int(m.get("format_version")) or m["format_version"] != FORMAT_VERSION:
        raise ValueError(f"not an lrbench manifest of format {FORMAT_VERSION}")
    for key, kind, name in (("task", str, "string"), ("config", dict, "object"), ("seed", int, "integer"),
                            ("features", dict, "object"), ("splits", dict, "object")):
        if key not in m:
            raise ValueError(f"lacks the {key!r} entry")
        if not isinstance(m[key], kind) or isinstance(m[key], bool):
            raise ValueError(f"{key!r} must be a JSON {name} (got {_kind(m[key])})")
    if not 0 <= m["seed"] <= MAX_SEED:
        raise ValueError(f"'seed' must be an integer in 0..2**63-1 (got {m['seed']})")
    if not m["splits"]:
        raise ValueError("lists no splits")
    for split, entry in m["splits"].items():
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        _check_split(split, entry)
    _check_described(m)


def _check_described(m: dict) -> None:
    """What the manifest says about the data besides its shards: versions, task id, kind, features."""
    versions = m.get("versions")
    if not isinstance(versions, dict) or not all(isinstance(versions.get(k), str) for k in VERSIONS):
        raise ValueError(f"'versions' must be a JSON object with the strings {', '.join(VERSIONS)}")
    if not _is_int(m.get("task_id")):
        raise ValueError(f"'task_id' must be a JSON integer (got {_kind(m.get('task_id'))})")
    if not isinstance(m.get("kind"), str):
        raise ValueError(f"'kind' must be a JSON string (got {_kind(m.get('kind'))})")
    for name, f in m["features"].items():
        ok = (isinstance(f, dict) and isinstance(f.get("dtype"), str) and isinstance(f.get("shape"), list)
              and all(_is_int(n) and n >= 0 for n in f["shape"]) and isinstance(f.get("ragged"), bool)
              and isinstance(f.get("pad"), (int, float)) and not isinstance(f.get("pad"), bool))
        if not ok:
            raise ValueError(f"feature {name!r} must be a JSON object with dtype (string), shape (list of "
                             "non-negative integers), ragged (boolean) and pad (number)")


def _check_split(split: str, entry) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"split {split} must be a JSON object (got {_kind(entry)})")
    n, shards = entry.get("num_samples"), entry.get("shards")
    if not _is_int(n) or n < 1:
        raise ValueError(f"split {split}: num_samples must be a positive integer (got {n!r})")
    if not isinstance(shards, list) or not shards:
        raise ValueError(f"split {split}: shards must be a non-empty list")
    if len(shards) > MAX_SHARDS:
        raise ValueError(f"split {split} lists {len(shards)} shards; shard names allow at most {MAX_SHARDS}")
    covered = 0
    for i, shard in enumerate(shards):
        where = f"shard {i} of split {split}"
        if not isinstance(shard, dict):
            raise ValueError(f"{where} must be a JSON object (got {_kind(shard)})")
        for key in ("file", "first_index", "num_samples", "bytes", "sha256"):
            if key not in shard:
                raise ValueError(f"{where} lacks {key!r}")
        for key in ("first_index", "num_samples", "bytes"):
            if not _is_int(shard[key]):
                raise ValueError(f"{where}: {key} must be an integer (got {shard[key]!r})")
        if shard["num_samples"] < 1 or shard["bytes"] < 0:
            raise ValueError(f"{where}: num_samples must be positive and bytes non-negative "
                             f"(got {shard['num_samples']} and {shard['bytes']})")
        if not isinstance(shard["sha256"], str) or not SHA256.fullmatch(shard["sha256"]):
            raise ValueError(f"{where}: sha256 must be 64 lowercase hex digits")
        if shard["first_index"] != covered:
            raise ValueError(f"split {split}: shard {i} starts at sample {shard['first_index']}, expected {covered}")
        covered += shard["num_samples"]
    if covered != n:
        raise ValueError(f"shards cover {covered} samples, split {split} has {n}")
    for i, shard in enumerate(shards):
        name, want = shard["file"], shard_name(split, i, len(shards))
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ValueError(f"shard {i} of split {split} is {name!r}; shard files are plain file names inside the "
                             "dataset directory")
        if name != want:
            raise ValueError(f"shard {i} of split {split} is named {name!r}, expected {want!r}")
