"""Statistics of ListOps-Subtrees samples, as quoted in data_cards/listops-subtrees.md.

    python benchmarks/listops_stats.py [--split test] [--seed 0] [--num-samples 2000] [--set key=value ...]

Generates samples 0..N-1 of a split through the library (the default is the whole 2,000-sample test
split of the default dataset) and prints Markdown tables: lengths, sub-expressions per sample, node
heights, operators, labels, and the accuracy of two trivial predictors. The exact length law from
the generating functions is printed beside the measured one.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrbench
from lrbench.generators.listops import OPS, token_count_pmf
from lrbench.registry import parse_value


def pct(counts: np.ndarray) -> list[str]:
    return [f"{100 * c / counts.sum():.1f}" for c in counts]


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="task parameter")
    args = ap.parse_args()
    spec = lrbench.registry.spec_of("listops-subtrees")
    params = {k: parse_value(spec, k, v) for k, v in (kv.split("=", 1) for kv in args.set)}
    task = lrbench.get_task("listops-subtrees", **params)
    cfg = task.config

    t0 = time.perf_counter()
    samples = [task.sample(i, args.split, args.seed) for i in range(args.num_samples)]
    seconds = time.perf_counter() - t0
    n = len(samples)
    lengths = np.array([len(s["inputs"]) for s in samples])
    closes = [s["targets"] != -100 for s in samples]
    labels = np.concatenate([s["targets"][m] for s, m in zip(samples, closes)]).astype(np.int64)
    heights = np.concatenate([s["node_height"][m] for s, m in zip(samples, closes)]).astype(np.int64)
    ops = np.concatenate([s["node_op"][m] for s, m in zip(samples, closes)]).astype(np.int64)
    per_sample = np.array([m.sum() for m in closes])
    root_height = np.array([s["node_height"][-1] for s in samples])
    root_label = np.array([s["targets"][-1] for s in samples])

    print(f"ListOps-Subtrees {cfg}: samples 0..{n - 1} of split {args.split!r}, seed {args.seed} "
          f"({seconds:.1f} s to generate, {1e3 * seconds / n:.2f} ms per sample)\n")
    qs = [0, 1, 5, 25, 50, 75, 95, 99, 100]
    pmf = token_count_pmf(cfg)[cfg.min_length : cfg.max_length + 1]
    cdf = np.cumsum(pmf) / pmf.sum()
    exact = [cfg.min_length + int(np.searchsorted(cdf, q / 100)) for q in qs[1:-1]]
    print(table(["tokens per sample"] + [f"{q}%" if q not in (0, 100) else ("min", "max")[q > 0] for q in qs]
                + ["mean"],
                [["measured"] + [int(v) for v in np.percentile(lengths, qs, method="inverted_cdf")]
                 + [f"{lengths.mean():.0f}"],
                 ["exact law"] + [cfg.min_length] + exact + [cfg.max_length]
                 + [f"{(np.arange(cfg.min_length, cfg.max_length + 1) * pmf).sum() / pmf.sum():.0f}"]]))
    print()
    print(table(["sub-expressions (tagged ']') per sample", "min", "5%", "50%", "95%", "max", "mean",
                 "share of tokens"],
                [["measured"] + [int(v) for v in np.percentile(per_sample, [0, 5, 50, 95, 100],
                                                                method="inverted_cdf")]
                 + [f"{per_sample.mean():.0f}", f"{100 * per_sample.sum() / lengths.sum():.1f} %"]]))
    print()
    h = np.bincount(heights, minlength=cfg.max_depth)
    top = int(heights.max())
    print(table(["node height"] + [str(v) for v in range(1, top + 1)],
                [["% of sub-expressions"] + pct(h[1 : top + 1])]))
    rh = np.bincount(root_height, minlength=cfg.max_depth)
    print(f"\nroot height: " + ", ".join(f"{v}: {c}" for v, c in enumerate(rh) if c) + f" (of {n})\n")
    print(table(["operator"] + list(OPS), [["% of sub-expressions"] + pct(np.bincount(ops, minlength=4))]))
    print()
    rows = [["all sub-expressions"] + pct(np.bincount(labels, minlength=10))]
    rows += [[f"{OPS[o]}"] + pct(np.bincount(labels[ops == o], minlength=10)) for o in range(4)]
    rows += [["height 1"] + pct(np.bincount(labels[heights == 1], minlength=10))]
    rows += [["height ≥ 3"] + pct(np.bincount(labels[heights >= 3], minlength=10))]
    rows += [["root"] + pct(np.bincount(root_label, minlength=10))]
    print(table(["label %"] + [str(v) for v in range(10)], rows))
    majority = np.bincount(labels, minlength=10).max() / len(labels)
    by_op = sum(np.bincount(labels[ops == o], minlength=10).max() for o in range(4)) / len(labels)
    print(f"\ntrivial predictors, token accuracy: most frequent label {100 * majority:.1f} %; "
          f"most frequent label of the node's operator (read from the matching '[') {100 * by_op:.1f} %")


if __name__ == "__main__":
    main()
