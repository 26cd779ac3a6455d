"""ListOps-Subtrees: our sampler vs straightforward rejection sampling of the same process, per
accepted sample at the default window (7001..8179 tokens), measured side by side in one run
(SPEC §10: at least 100x faster than the DLR paper's generator, ~0.75 s per sample on one core).

    python benchmarks/bench_listops.py [--ours N] [--evaluate-seconds S] [--count-seconds S]
                                       [--abort-seconds S] [--min-accepted N]

Three rejection baselines of the same process, single-process Python with a seeded random.Random,
written here:
  evaluate  as the LRA and DLR generators do: every tree is built together with the post-order lists
            of its sub-expressions' values, lengths, heights and operators (MED by np.median),
            then rejected if its length is outside the window.
  count     a leaner variant: build the bare tree, count its tokens, and evaluate only accepted ones.
  abort     count, but abandon a tree as soon as it has more than max_length tokens.
Each runs until its time budget is spent (and at least --min-accepted samples); the number of
accepted samples is printed. Our sampler goes through the registry, as `lrbench generate` calls it,
and is timed before and after the baselines (load drifts on a shared machine).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

import lrbench
from lrbench.generators.listops import ListOpsConfig


class TooLong(Exception):
    pass


def grow(rnd: random.Random, cfg: ListOpsConfig, depth: int):
    """One node of the process: (op, children) or a digit."""
    if depth < cfg.max_depth and rnd.random() < 0.25:
        k = rnd.randint(2, cfg.max_args)
        op = rnd.randrange(4)
        return (op, [grow(rnd, cfg, depth + 1) for _ in range(k)])
    return rnd.randrange(10)


def count(tree) -> int:
    return 1 if isinstance(tree, int) else 2 + sum(count(c) for c in tree[1])


def grow_bounded(rnd: random.Random, cfg: ListOpsConfig, depth: int, budget: list[int]):
    """grow(), raising TooLong once the tree has more than max_length tokens."""
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLong
    if depth < cfg.max_depth and rnd.random() < 0.25:
        budget[0] -= 1  # the closing bracket
        k = rnd.randint(2, cfg.max_args)
        op = rnd.randrange(4)
        return (op, [grow_bounded(rnd, cfg, depth + 1, budget) for _ in range(k)])
    return rnd.randrange(10)


def tag(tree, tokens: list[int], targets: list[int]) -> int:
    """Serialise to token ids and tag each ']' with its value; returns the value."""
    if isinstance(tree, int):
        tokens.append(1 + tree)
        targets.append(-100)
        return tree
    op, children = tree
    tokens.append(11 + op)
    targets.append(-100)
    args = [tag(c, tokens, targets) for c in children]
    if op == 0:
        value = min(args)
    elif op == 1:
        value = max(args)
    elif op == 3:
        value = sum(args) % 10
    else:
        s, n = sorted(args), len(args)
        value = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2
    tokens.append(15)
    targets.append(value)
    return value


def grow_evaluated(rnd: random.Random, cfg: ListOpsConfig, depth: int):
    """A node generated together with its evaluation: (tree, post-order lists of sub-expression
    values, token counts, heights, operators), leaves included, as the LRA/DLR generators keep them."""
    if depth < cfg.max_depth and rnd.random() < 0.25:
        k = rnd.randint(2, cfg.max_args)
        subtrees, values, lengths, heights, ops, args = [], [], [], [], [], []
        n, h = 2, 0
        for _ in range(k):
            t, v, ln, hs, os_ = grow_evaluated(rnd, cfg, depth + 1)
            subtrees.append(t)
            values, lengths, heights, ops = values + v, lengths + ln, heights + hs, ops + os_
            args.append(v[-1])
            n, h = n + ln[-1], max(h, hs[-1])
        op = rnd.randrange(4)
        value = (min(args), max(args), int(np.median(args)), sum(args) % 10)[op]
        return (op, subtrees), values + [value], lengths + [n], heights + [h + 1], ops + [op]
    digit = rnd.randrange(10)
    return digit, [digit], [1], [0], [-1]


def baseline(rnd: random.Random, cfg: ListOpsConfig, how: str):
    while True:
        if how == "evaluate":
            tree, _, lengths, _, _ = grow_evaluated(rnd, cfg, 1)
            n = lengths[-1]
        elif how == "abort":
            try:
                tree = grow_bounded(rnd, cfg, 1, [cfg.max_length])
            except TooLong:
                continue
            n = count(tree)
        else:
            tree = grow(rnd, cfg, 1)
            n = count(tree)
        if cfg.min_length <= n <= cfg.max_length:
            tokens, targets = [], []
            tag(tree, tokens, targets)
            return tokens, targets


def time_baseline(cfg: ListOpsConfig, how: str, seconds: float, min_accepted: int, seed: int) -> tuple[int, float]:
    rnd = random.Random(seed)
    n, t0 = 0, time.perf_counter()
    while n < min_accepted or time.perf_counter() - t0 < seconds:
        baseline(rnd, cfg, how)
        n += 1
    return n, time.perf_counter() - t0


def time_ours(task, n: int, offset: int) -> float:
    t0 = time.perf_counter()
    for i in range(offset, offset + n):
        task.sample(i, "train", seed=0)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", type=int, default=500, help="samples of our sampler per timing (two timings)")
    ap.add_argument("--evaluate-seconds", type=float, default=60.0, help="time budget, evaluate baseline")
    ap.add_argument("--count-seconds", type=float, default=30.0, help="time budget, count baseline")
    ap.add_argument("--abort-seconds", type=float, default=20.0, help="time budget, abort baseline")
    ap.add_argument("--min-accepted", type=int, default=10)
    args = ap.parse_args()
    task = lrbench.get_task("listops-subtrees")
    cfg = task.config
    task.sample(0, "train", seed=0)  # warm caches outside the timing

    before = time_ours(task, args.ours, 0)
    runs = [(how, *time_baseline(cfg, how, secs, args.min_accepted, seed))
            for seed, (how, secs) in enumerate([("evaluate", args.evaluate_seconds),
                                                 ("count", args.count_seconds), ("abort", args.abort_seconds)])]
    after = time_ours(task, args.ours, args.ours)
    ours = (before + after) / 2

    total = sum(task.spec.default_splits.values())
    print(f"ListOps-Subtrees, window {cfg.min_length}..{cfg.max_length}, max_depth {cfg.max_depth}, "
          f"max_args {cfg.max_args}; one process, per accepted sample")
    print(f"{'sampler':<30} {'accepted':>8} {'ms/sample':>10} {'samples/s/core':>15} {'ours x faster':>14} "
          f"{'100k on 2 cores':>16}")
    rows = [("ours (registry task.sample)", 2 * args.ours, ours)]
    rows += [(f"baseline: {how}", n, t / n) for how, n, t in runs]
    for name, n, per in rows:
        print(f"{name:<30} {n:>8} {per * 1e3:>10.2f} {1 / per:>15.1f} {per / ours:>14.0f} "
              f"{total * per / 2 / 60:>12.1f} min")
    print(f"ours before / after the baselines: {before * 1e3:.2f} / {after * 1e3:.2f} ms per sample")
    print(f"vs the DLR paper's generator (~0.75 s per sample on one core here, SPEC §10): "
          f"{0.75 / ours:.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
