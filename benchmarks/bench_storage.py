"""Generate + write to HDF5 vs generate only, measured in one run (SPEC §10: ratio >= 0.5).

    python benchmarks/bench_storage.py [--samples N] [--repeats R] [--workers W] [--shards S]

Two tables, each interleaved repeat by repeat (so load from other users of the machine hits both
sides alike), medians over the repeats:

  per shard    one process: build a production-sized shard with lrbench.generate.sample_arrays,
               then build and write it with write_job (temporary file, fsync, rename, sha256).
               sha/gen: hashing the written shard alone (as write_shard does, from the page
               cache) against building it. The manifest needs that sha256, so a writer cannot
               do much better than a ratio of 1 / (1 + sha/gen).
  end to end   the production path, lrbench.generate.generate with W worker processes (default:
               the CPU count, as the CLI) writing S shards and the manifest, against a pool of W
               spawned processes that builds the same shards' arrays and discards them. Starting
               a pool (spawn W processes, import lrbench, build the task), timed alone in the same
               repeat, is subtracted from both sides: a real run of many shards amortises it, and
               left in it would flatter the ratio of these short runs.

Every repeat writes into a fresh directory, deleted afterwards outside the timings: a run never
overwrites its own shards, and freeing an old shard's blocks is not part of writing a new one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import lrbench
from lrbench.generate import (ShardJob, default_shard_size, generate, one_blas_thread, plan_shards, sample_arrays,
                              write_job)
from lrbench.storage import sha256_file

CASES = [("shift", {"length": 4096}), ("cumsum", {"length": 4096}), ("select", {"length": 512}),
         ("mips", {"length": 1024})]
for name, params in [("listops-subtrees", {}), ("pathfinder-seg", {"size": 128})]:
    if name in lrbench.list_tasks():
        CASES.append((name, params))


def _task(name: str, params: dict) -> None:
    lrbench.get_task(name, **params)


def _build(name: str, params: dict, job: ShardJob) -> None:
    sample_arrays(lrbench.get_task(name, **params), 0, job.split, job.first_index, job.num_samples)


def generate_only(name: str, params: dict, jobs: list[ShardJob], workers: int) -> None:
    """The generate-only twin of generate(): same spawned pool, same jobs, arrays discarded."""
    ctx = multiprocessing.get_context("spawn")
    with one_blas_thread(), ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
        for fut in [pool.submit(_build, name, params, job) for job in jobs]:
            fut.result()


def pool_start(name: str, params: dict, workers: int) -> None:
    """What both end-to-end sides spend before their first sample, and on shutting the pool down."""
    ctx = multiprocessing.get_context("spawn")
    with one_blas_thread(), ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        for fut in [pool.submit(_task, name, params) for _ in range(workers)]:
            fut.result()


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def per_shard(task, n: int, root: Path) -> tuple[float, float, float]:
    """Seconds to build one shard, to build and write it, and to hash the written file."""
    gen = timed(sample_arrays, task, 0, "val", 0, n)
    out = Path(tempfile.mkdtemp(dir=root))
    job = ShardJob("val", 0, 1, 0, n)
    both = timed(write_job, task, 0, out, job)
    sha256_file(out / job.file)  # back into the page cache, which write_shard hashes from and then leaves
    sha = timed(sha256_file, out / job.file)
    shutil.rmtree(out)
    return gen, both, sha


def end_to_end(task, params: dict, n: int, shards: int, workers: int, root: Path) -> tuple[float, float, float]:
    """Seconds for the generate-only pool and for generate(), each less the pool start-up (also returned)."""
    start = timed(pool_start, task.name, params, min(workers, shards))
    gen = timed(generate_only, task.name, params, plan_shards({"val": shards * n}, n), workers)
    out = Path(tempfile.mkdtemp(dir=root))
    both = timed(generate, task, out, sizes={"val": shards * n}, shard_size=n, workers=workers)
    shutil.rmtree(out)
    return gen - start, both - start, start


def row(name: str, params: dict, samples: int, gen, both, extra: str = "") -> tuple[float, str]:
    g, b = samples / statistics.median(gen), samples / statistics.median(both)
    label = ",".join(f"{k}={v}" for k, v in params.items())
    return b / g, f"{name:<18} {label:<14} {samples:>8} {g:>11.1f} {b:>12.1f} {b / g:>6.2f}{extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000, help="cap on the samples per shard")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="end to end: worker processes")
    ap.add_argument("--shards", type=int, default=None, help="end to end: shards per run (default 4 per worker)")
    args = ap.parse_args()
    shards = args.shards or 4 * args.workers
    rows, e2e_rows, starts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in CASES:
            task = lrbench.get_task(name, **params)
            # a production-sized shard (fixed per-shard costs amortise as they do in real runs), capped for time
            cap = args.samples if name not in ("listops-subtrees", "pathfinder-seg") else max(20, args.samples // 20)
            n = min(default_shard_size(task), cap)
            one, many = [], []
            for _ in range(args.repeats):
                one.append(per_shard(task, n, Path(tmp)))
                many.append(end_to_end(task, params, n, shards, args.workers, Path(tmp)))
            gen, both, sha = zip(*one)
            rows.append(row(name, params, n, gen, both, f" {statistics.median(sha) / statistics.median(gen):>8.2f}"))
            gen, both, start = zip(*many)
            e2e_rows.append(row(name, params, shards * n, gen, both))
            starts.append(statistics.median(start))
    header = f"{'task':<18} {'params':<14} {'samples':>8} {'gen only/s':>11} {'gen+write/s':>12} {'ratio':>6}"
    print("per shard, one process")
    print(f"{header} {'sha/gen':>8}")
    print("\n".join(line for _, line in rows))
    print(f"\nend to end: generate() with {args.workers} workers, {shards} shards, against a generate-only pool "
          f"(pool start-up {min(starts):.2f}-{max(starts):.2f} s subtracted from both)")
    print(header)
    print("\n".join(line for _, line in e2e_rows))
    print(f"\nworst ratio generate+write / generate-only: per shard {min(r for r, _ in rows):.2f}, "
          f"end to end {min(r for r, _ in e2e_rows):.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
