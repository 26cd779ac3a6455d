"""lrbench export against reading the HDF5 dataset, measured in one run.

    python benchmarks/bench_export.py [--size 128] [--samples 2000] [--repeats 3] [--data DIR]

Generates pathfinder-seg (one test split of --samples images; reused from --data when that holds
it), then, interleaved repeat by repeat, medians over the repeats:

  hdf5 read       every sample read with lrbench (ds["test"].batches(64)): the baseline
  verify          the sha256 and attribute check that export runs first (lrbench.dataset.verify)
  export          lrbench.export.export, verify included, into a fresh directory
  datasets load   datasets.load_dataset(export) with an empty cache: parquet -> its Arrow cache
  datasets read   every sample as numpy from the loaded dataset (with_format("numpy", dtype=None),
                  batches of 64), Array2D as declared by the README
  parquet read    the parquet files with pyarrow alone, every sample as a numpy array

and the sizes on disk: HDF5 shards (gzip 1) against parquet files (zstd). Page caches are warm for
every reader alike (nothing is dropped on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import lrbench  # noqa: E402
from lrbench.dataset import open_dataset, verify  # noqa: E402
from lrbench.export import export  # noqa: E402
from lrbench.generate import generate  # noqa: E402


def hdf5_read(directory: Path) -> int:
    ds = open_dataset(directory)
    n = 0
    for batch in ds["test"].batches(64):
        n += int(batch["inputs"].shape[0])
    ds.close()
    return n


def datasets_load(export_dir: Path, cache: Path):
    import datasets

    return datasets.load_dataset(str(export_dir), cache_dir=str(cache))


def datasets_read(loaded) -> int:
    split = loaded["test"].with_format("numpy", dtype=None)
    n = 0
    for start in range(0, len(split), 64):
        batch = split[start:start + 64]
        assert batch["inputs"].dtype == np.uint8 and batch["inputs"].ndim == 3
        n += len(batch["inputs"])
    return n


def parquet_read(export_dir: Path) -> int:
    import pyarrow.parquet as pq

    n = 0
    for path in sorted((export_dir / "data").glob("test-*.parquet")):
        f = pq.ParquetFile(path)
        for batch in f.iter_batches(batch_size=64, columns=["inputs", "targets"]):
            # nested lists -> [b, M, M] without a Python loop: the flat values, reshaped
            images = batch.column("inputs").flatten().flatten().to_numpy().reshape(len(batch), *SHAPE)
            n += len(images)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lrbench-bench-export")
    args = parser.parse_args()
    global SHAPE
    SHAPE = (args.size, args.size)

    task = lrbench.get_task("pathfinder-seg", size=args.size)
    directory = args.data / f"pathfinder-seg-{args.size}-n{args.samples}"
    t0 = time.perf_counter()
    generate(task, directory, sizes={"test": args.samples}, workers=args.workers)
    print(f"dataset {directory} ready in {time.perf_counter() - t0:.1f} s")

    times: dict[str, list[float]] = {k: [] for k in
                                     ("hdf5 read", "verify", "export", "datasets load", "datasets read", "parquet read")}
    work = Path(tempfile.mkdtemp(prefix="bench-export-", dir=args.data))
    try:
        for r in range(args.repeats):
            out = work / f"export-{r}"
            for key, fn in (("hdf5 read", lambda: hdf5_read(directory)),
                            ("verify", lambda: verify(directory)),
                            ("export", lambda: export(directory, out)),
                            ("datasets load", lambda: LOADED.__setitem__(0, datasets_load(out, work / f"cache-{r}"))),
                            ("datasets read", lambda: datasets_read(LOADED[0])),
                            ("parquet read", lambda: parquet_read(out))):
                t = time.perf_counter()
                result = fn()
                times[key].append(time.perf_counter() - t)
                if key == "verify":
                    assert result == [], result
            if r < args.repeats - 1:
                shutil.rmtree(out)
        hdf5_bytes = sum(p.stat().st_size for p in directory.glob("test-*.h5"))
        parquet_bytes = sum(p.stat().st_size for p in (out / "data").glob("*.parquet"))
        raw = args.samples * 2 * args.size * args.size
        base = statistics.median(times["hdf5 read"])
        print(f"\npathfinder-seg-{args.size}, {args.samples} samples, medians of {args.repeats} repeats")
        print(f"{'':<16}{'seconds':>9}{'/ hdf5 read':>13}{'samples/s':>11}")
        for key, values in times.items():
            m = statistics.median(values)
            print(f"{key:<16}{m:>9.2f}{m / base:>13.2f}{args.samples / m:>11,.0f}")
        print(f"\n{'raw arrays':<16}{raw:>15,} bytes")
        print(f"{'hdf5 (gzip 1)':<16}{hdf5_bytes:>15,} bytes  {hdf5_bytes / raw:.3f} of raw")
        print(f"{'parquet (zstd)':<16}{parquet_bytes:>15,} bytes  {parquet_bytes / raw:.3f} of raw, "
              f"{parquet_bytes / hdf5_bytes:.2f} x hdf5")
    finally:
        shutil.rmtree(work, ignore_errors=True)


LOADED: dict[int, object] = {}
SHAPE: tuple[int, int] = (128, 128)

if __name__ == "__main__":
    main()
