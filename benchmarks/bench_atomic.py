"""Atomic tasks: cost of one sample against the cost of drawing its random numbers (SPEC §10: a sample
should cost at most 2x its draws).

    python benchmarks/bench_atomic.py [--reps N] [--tasks shift,mips,...] [--breakdown]

For every task, in the same run and interleaved (task by task, repetition by repetition, so load
from other users of the machine hits all columns alike), medians over the repetitions of:

  sample      `lrbench.get_task(name, length=L).sample(i, "train", 0)`, a fresh index each call;
              this includes building the sample's Generator from its SeedSequence;
  draws       exactly the random numbers that sample draws, from a Generator built beforehand;
  seed+draws  building the sample's Generator (lrbench.seeding.sample_rng) and then the draws.

Ratios: sample / draws, and sample / (seed+draws). Rows: Shift and MIPS at L = 4096 and Select at
L = 512 (the §10 rows), then the other atomic tasks at L = 4096 (Select-fixed at 512 and 4096).
`--breakdown` adds where a MIPS sample's time goes. OPENBLAS_NUM_THREADS defaults to 1 here: one
sample is one core's work (generation runs one worker process per core), and on a small shared
machine OpenBLAS's helper threads make the BLAS calls of a sample several times slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import argparse
import time

import numpy as np

import lrbench
from lrbench import registry
from lrbench.generators import atomic
from lrbench.seeding import sample_rng


def draws_of(name: str, task) -> callable:
    """A function rng -> None drawing exactly what `task.sample` draws (generators/atomic.py)."""
    cfg = task.config
    L = cfg.length
    if name in ("shift", "cumsum", "cummax", "reverse", "sort"):
        return lambda rng: rng.standard_normal(L)
    if name == "select":
        n, M = L + cfg.num_selected, cfg.num_selected
        return lambda rng: (rng.standard_normal(n), rng.choice(n, size=M, replace=False))
    if name == "select-fixed":  # the positions are drawn once per seed, not per sample
        return lambda rng: rng.standard_normal(L + cfg.num_selected)
    if name == "mips":
        return lambda rng: rng.standard_normal((3, L, cfg.dim))
    if name == "context-shift":
        return lambda rng: (rng.standard_normal(L - 2), rng.integers(0, L - 2))
    N = atomic.solve_size(L)
    if name == "solve":  # Haar matrix A, then the unit vector X
        return lambda rng: (rng.standard_normal((N, N)), rng.standard_normal(N))
    if name == "solve-fixed":  # A is fixed per seed
        return lambda rng: rng.standard_normal(N)
    raise ValueError(name)


ROWS = [("shift", 4096), ("mips", 4096), ("select", 512), ("cumsum", 4096), ("cummax", 4096), ("reverse", 4096),
        ("sort", 4096), ("select", 4096), ("select-fixed", 512), ("select-fixed", 4096), ("context-shift", 4096),
        ("solve", 4096), ("solve-fixed", 4096)]


def per_call(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def bench(rows, reps: int) -> list[dict]:
    setups = []
    for name, L in rows:
        task = lrbench.get_task(name, length=L)
        task.sample(0)  # warm up: imports, cached positional channels, fixed structures
        draw = draws_of(name, task)
        rng = np.random.default_rng(12345)
        t0 = time.perf_counter()
        task.sample(1)
        n = max(1, min(200, int(2e-3 / max(time.perf_counter() - t0, 1e-6))))  # ~2 ms per timing
        setups.append(dict(name=name, L=L, task=task, draw=draw, rng=rng, n=n, index=[1000],
                           times={"sample": [], "draws": [], "seed+draws": []}))
    for _ in range(reps):
        for s in setups:
            task, draw, rng, n, idx = s["task"], s["draw"], s["rng"], s["n"], s["index"]

            def sample():
                idx[0] += 1
                task.sample(idx[0])

            def seeded():
                idx[0] += 1
                draw(sample_rng(task.id, 0, "train", idx[0]))

            s["times"]["sample"].append(per_call(sample, n))
            s["times"]["draws"].append(per_call(lambda: draw(rng), n))
            s["times"]["seed+draws"].append(per_call(seeded, n))
    return [dict(name=s["name"], L=s["L"], **{k: float(np.median(v)) for k, v in s["times"].items()}) for s in setups]


def breakdown(reps: int) -> None:
    """Where one MIPS sample (L = 4096, D = 4) spends its time, medians over interleaved repetitions:
    the compiled path (generators/_mips.c, when built) and the numpy path that replaces it otherwise."""
    L, D = 4096, 4
    task = lrbench.get_task("mips", length=L)
    compiled = atomic._mips_c
    parts: dict[str, list[float]] = {}

    def timed(key, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        parts.setdefault(key, []).append(time.perf_counter() - t)
        return out

    pos = atomic._positional32(L)
    for i in range(reps):
        rng = timed("sample_rng", sample_rng, task.id, 0, "train", 10_000 + i)
        x = timed("draws", rng.standard_normal, (3, L, D))
        if compiled is not None:
            inputs, targets = np.empty((L, 14), np.float32), np.empty((L, 4), np.float32)
            timed("compiled: all after the draws", compiled.sample, x.copy(), pos, inputs, targets, L)
            q, k, _ = atomic._unit_rows(x)
            timed("compiled: search alone", compiled.search, q, k, np.empty(L, np.int64), L)
            if compiled.simd(False) is False:  # the portable screens, as on a CPU without AVX2 + FMA
                try:
                    timed("compiled: search, portable", compiled.search, q, k, np.empty(L, np.int64), L)
                finally:
                    compiled.simd(True)
        atomic._mips_c = None
        try:
            q, k, v = timed("numpy: normalise", atomic._unit_rows, x)
            best = timed("numpy: causal_mips", atomic.causal_mips, q, k)
            timed("numpy: targets", lambda: v[best].astype(np.float32))
            timed("numpy: inputs", atomic._inputs, q, k, v)
        finally:
            atomic._mips_c = compiled
    print(f"\nMIPS L=4096 D=4, one sample (compiled module {'built' if compiled else 'NOT built'}):")
    for key, v in parts.items():
        print(f"  {key:32s} {np.median(v) * 1e6:8.0f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=21, help="interleaved repetitions (medians are reported)")
    ap.add_argument("--tasks", default="", help="comma-separated task names (default: all rows)")
    ap.add_argument("--breakdown", action="store_true", help="also time the parts of a MIPS sample")
    args = ap.parse_args()
    rows = ROWS
    if args.tasks:
        wanted = {registry.canonical_name(t) for t in args.tasks.split(",")}
        rows = [r for r in ROWS if r[0] in wanted]
    print(f"atomic tasks, median of {args.reps} interleaved repetitions, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}; target: sample <= 2x draws (SPEC §10)")
    head = f"{'task':15s} {'L':>5s} {'sample us':>10s} {'draws us':>9s} {'seed+draws us':>14s} {'/draws':>7s} {'/(seed+draws)':>14s}"
    print(head)
    print("-" * len(head))
    for r in bench(rows, args.reps):
        a, b = r["sample"] / r["draws"], r["sample"] / r["seed+draws"]
        flag = "" if b <= 2 else "  > 2x seed+draws"
        print(f"{r['name']:15s} {r['L']:5d} {r['sample'] * 1e6:10.1f} {r['draws'] * 1e6:9.1f} "
              f"{r['seed+draws'] * 1e6:14.1f} {a:7.2f} {b:14.2f}{flag}")
    if args.breakdown:
        breakdown(args.reps)


if __name__ == "__main__":
    main()
