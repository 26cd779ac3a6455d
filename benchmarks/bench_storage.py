"""Generate + write to HDF5 vs generate only, measured in one run (SPEC §10: ratio >= 0.5).

    python benchmarks/bench_storage.py [--samples N] [--repeats R]

Both sides build the same shard arrays with lrbench.generate.sample_arrays; the write side also
writes them with the production writer (temporary file, fsync, rename, sha256 read-back). Runs are
interleaved and the median is reported, since a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lrbench
from lrbench.generate import ShardJob, default_shard_size, sample_arrays, write_job

CASES = [("shift", {"length": 4096}), ("cumsum", {"length": 4096}), ("select", {"length": 512}),
         ("mips", {"length": 1024})]
for name, params in [("listops-subtrees", {}), ("pathfinder-seg", {"size": 128})]:
    if name in lrbench.list_tasks():
        CASES.append((name, params))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000, help="cap on the samples per shard")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'task':<18} {'params':<16} {'samples':>8} {'gen only/s':>11} {'gen+write/s':>12} {'ratio':>6}")
    worst = 1.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in CASES:
            task = lrbench.get_task(name, **params)
            # a production-sized shard (fixed per-shard costs amortise as they do in real runs), capped for time
            cap = args.samples if name not in ("listops-subtrees", "pathfinder-seg") else max(20, args.samples // 20)
            n = min(default_shard_size(task), cap)
            job = ShardJob("val", 0, 1, 0, n)
            gen, both = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                sample_arrays(task, 0, "val", 0, n)
                gen.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                write_job(task, 0, Path(tmp), job)
                both.append(time.perf_counter() - t0)
            g, b = n / statistics.median(gen), n / statistics.median(both)
            worst = min(worst, b / g)
            label = ",".join(f"{k}={v}" for k, v in params.items())
            print(f"{name:<18} {label:<16} {n:>8} {g:>11.1f} {b:>12.1f} {b / g:>6.2f}")
    print(f"worst ratio generate+write / generate-only: {worst:.2f} (target >= 0.50)")
    sys.exit(0)


if __name__ == "__main__":
    main()
