"""manifest.json: the one file that says what a dataset directory holds. Only this module writes it.

It is written last, atomically, once every shard exists; its presence means the dataset is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from lrbench.storage import ShardInfo, atomic_write_bytes

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ManifestError(Exception):
    """manifest.json is missing, unreadable or not an lrbench manifest."""


def build(task, seed: int, shards: dict[str, list[ShardInfo]], sizes: dict[str, int]) -> dict:
    from lrbench import __version__
    from lrbench.registry import config_dict

    features = {name: f.to_json() for name, f in task.features.items()}
    return {
        "format_version": FORMAT_VERSION,
        "versions": {"lrbench": __version__, "numpy": np.__version__, "h5py": h5py.__version__},
        "task": task.name,
        "task_id": task.id,
        "config": config_dict(task.config),
        "seed": seed,
        "kind": task.kind,
        "features": features,
        "splits": {
            split: {
                "num_samples": sizes[split],
                "shards": [info.to_json() for info in shards[split]],
            }
            for split in shards
        },
    }


def write(directory: str | Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(Path(directory) / MANIFEST, text.encode())


def read(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise ManifestError(f"no {MANIFEST} in {directory} (not an lrbench dataset, or generation did not finish)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{path} is not an lrbench manifest of format {FORMAT_VERSION}")
    for key in ("task", "config", "seed", "features", "splits"):
        if key not in manifest:
            raise ManifestError(f"{path} lacks the {key!r} entry")
    return manifest
