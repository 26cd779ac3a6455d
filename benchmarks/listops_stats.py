"""Statistics of ListOps-Subtrees samples, as quoted in data_cards/listops-subtrees.md.

    python benchmarks/listops_stats.py [--split test] [--seed 0] [--num-samples 2000] [--set key=value ...]
                                       [--reference DLR_CHECKOUT [--reference-samples 200]]

Generates samples 0..N-1 of a split through the library (the default is the whole 2,000-sample test
split of the default dataset) and prints Markdown tables: lengths, sub-expressions per sample, node
heights, operators, labels, and the accuracy of two trivial predictors. The exact length law from
the generating functions is printed beside the measured one.

With --reference, also runs the DLR paper's own generator side by side: DLR_CHECKOUT is a checkout
of github.com/ag1988/dlr (its src/dataloaders/prepare/listops/listops.py is imported from there;
that module needs numpy, tqdm, psutil and jsonlines: `pip install tqdm psutil jsonlines`). Its
generate_data() runs as its subtree command line runs it (--task subtrees --max_depth 15 --max_args 9
--min_length 7000 --max_length 8180 --no_paranthesis --seed 0, one worker), about 0.6 s per sample,
and its rows are turned into model inputs and targets the way its ListOpsSubTrees loader does
(tokens by its listops_tokenizer, the value of SubTreeEvals at each SubTreeInds position). The
script prints two-sample tests of ours against those samples (Kolmogorov-Smirnov on per-sample
numbers; chi-square with whole samples permuted for node histograms, whose nodes within a sample
are not independent), checks the reference's targets against an evaluator written here (MED of an
even count included), counts repeated expressions and tree templates (what --unique_templates
drops), and lists the token frequencies from which its loader's vocabulary would be ordered.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import types
from pathlib import Path

import numpy as np
from scipy import stats

import lrbench
from lrbench.generators.listops import OPS, token_count_pmf
from lrbench.registry import parse_value

OUR_ID = {"[MIN": 11, "[MAX": 12, "[MED": 13, "[SM": 14, **{str(v): 1 + v for v in range(10)}}


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
    ap.add_argument("--reference", metavar="DLR_CHECKOUT", help="also run the DLR paper's generator from here")
    ap.add_argument("--reference-samples", type=int, default=200)
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
    if args.reference:
        compare_with_reference(Path(args.reference), args.reference_samples, samples, cfg, seconds / n)


# ---------------------------------------------------------------------------------------------
# Side by side with the DLR paper's generator.


def load_reference(checkout: Path) -> types.ModuleType:
    path = checkout / "src" / "dataloaders" / "prepare" / "listops" / "listops.py"
    if not path.is_file():
        raise SystemExit(f"{path} not found: --reference must be a checkout of github.com/ag1988/dlr")
    os.environ.setdefault("TQDM_DISABLE", "1")  # its per-worker progress bar
    spec = importlib.util.spec_from_file_location("dlr_listops", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_samples(ref: types.ModuleType, cfg, n: int) -> tuple[list[dict], list[str], float]:
    """n rows of the reference's generate_data, as its loader presents them, and the raw expressions."""
    # Its window is strict (min_length < tokens < max_length): pass the bounds one outside ours.
    args = types.SimpleNamespace(seed=0, per_worker_samples=n, max_depth=cfg.max_depth, max_args=cfg.max_args,
                                 min_length=cfg.min_length - 1, max_length=cfg.max_length + 1,
                                 no_paranthesis=True, num_workers=1)
    t0 = time.perf_counter()
    rows = ref.generate_data(0, args)
    seconds = (time.perf_counter() - t0) / len(rows)
    out = []
    for expr, value, sub_vals, _lengths, sub_heights, sub_ops, sub_inds in rows:
        words = ref.listops_tokenizer(expr)  # ']' comes out as 'X', as its loader reads it
        inds = [int(i) for i in sub_inds.split()]
        targets = np.full(len(words), -100)
        targets[inds] = [int(v) for v in sub_vals.split()]
        heights = np.full(len(words), -1)
        heights[inds] = [int(h) for h in sub_heights.split()]
        ops = np.full(len(words), -1)
        ops[inds] = [OPS.index(o[1:]) for o in sub_ops.split()]
        assert targets[inds[-1]] == value
        out.append({"words": words, "inputs": np.array([OUR_ID.get(w, 15) for w in words]),
                    "targets": targets, "node_height": heights, "node_op": ops, "inds": inds})
    return out, [r[0] for r in rows], seconds


def evaluate_tokens(ids: np.ndarray) -> tuple[dict[int, int], int]:
    """Value of the sub-expression closed at each ']' under lrbench's definition (MED of an even
    count = floor of the mean of the middle two), and how many MEDs had an even count."""
    stack, values, even_meds = [], {}, 0
    for pos, t in enumerate(ids.tolist()):
        if 11 <= t <= 14:
            stack.append((t - 11, []))
        elif t == 15:
            op, args = stack.pop()
            a, k = sorted(args), len(args)
            if op == 0:
                v = a[0]
            elif op == 1:
                v = a[-1]
            elif op == 2:
                v = a[k // 2] if k % 2 else (a[k // 2 - 1] + a[k // 2]) // 2
                even_meds += k % 2 == 0
            else:
                v = sum(a) % 10
            values[pos] = v
            if stack:
                stack[-1][1].append(v)
        else:
            stack[-1][1].append(t - 1)
    return values, even_meds


def permutation_chi2(x: np.ndarray, y: np.ndarray, n_perm: int = 2000) -> float:
    """Chi-square of two histograms given per-sample counts [samples, bins]; the p-value comes from
    permuting whole samples between the groups. Bins with pooled count < 10 are merged."""
    z = np.vstack([x, y]).astype(np.float64)
    rare = z.sum(0) < 10
    if rare.any():
        z = np.column_stack([z[:, ~rare], z[:, rare].sum(1)])
    z = z[:, z.sum(0) > 0]
    total = z.sum(0)

    def chi2(a):
        b = total - a
        na, nb = a.sum(-1, keepdims=True), b.sum(-1, keepdims=True)
        ea, eb = na * total / (na + nb), nb * total / (na + nb)
        return ((a - ea) ** 2 / ea + (b - eb) ** 2 / eb).sum(-1)

    observed = chi2(z[: len(x)].sum(0))
    masks = np.random.default_rng(0).permuted(np.tile(np.arange(len(z)) < len(x), (n_perm, 1)), axis=1)
    return float((1 + np.sum(chi2(masks.astype(np.float64) @ z) >= observed * (1 - 1e-12))) / (n_perm + 1))


def node_counts(samples: list[dict], field: str, bins: int, where=None) -> np.ndarray:
    rows = []
    for s in samples:
        m = s["targets"] != -100
        if where is not None:
            m &= where(s)
        rows.append(np.bincount(np.asarray(s[field])[m].astype(np.int64), minlength=bins)[:bins])
    return np.array(rows)


def compare_with_reference(checkout: Path, n_ref: int, ours: list[dict], cfg, ours_seconds: float) -> None:
    ref_module = load_reference(checkout)
    ref, exprs, ref_seconds = reference_samples(ref_module, cfg, n_ref)
    print(f"\n### Side by side with the DLR paper's generator ({len(ref)} samples of its generate_data, "
          f"{len(ours)} of ours)\n")

    # What its loader would feed a model, checked against our definition.
    closes_ok = all(sorted(s["inds"]) == np.flatnonzero(np.array(s["words"]) == "X").tolist() for s in ref)
    agree = total = even = 0
    for s in ref:
        values, e = evaluate_tokens(s["inputs"])
        even += e
        total += len(values)
        agree += sum(int(s["targets"][p]) == v for p, v in values.items())
    words = sorted({w for s in ref for w in s["words"]})
    templates = {"".join(ch for ch in e if not ch.isdigit()).replace(" ", "") for e in exprs}
    print(f"- its targets sit exactly at the ']' tokens (SubTreeInds): {closes_ok}")
    print(f"- its values equal lrbench's definition at {agree:,} of {total:,} sub-expressions "
          f"({even:,} of them MEDs of an even count)")
    print(f"- its token words: {' '.join(words)} ({len(words)}; its loader adds <pad>, <unk>)")
    print(f"- distinct expressions {len(set(exprs))} and distinct templates (digits removed, what "
          f"--unique_templates compares) {len(templates)} among {len(exprs)}")
    freq = {}
    for s in ref:
        for w in s["words"]:
            freq[w] = freq.get(w, 0) + 1
        for v in s["targets"][s["targets"] != -100]:
            freq[str(v)] = freq.get(str(v), 0) + 1
    order = sorted(freq, key=lambda w: (-freq[w], w))
    print("- token frequencies, inputs and targets together (its loader's torchtext vocabulary takes "
          "<pad> = 0, <unk> = 1, then this order): " + ", ".join(f"{w} {freq[w]}" for w in order))
    print(f"- seconds per sample: reference {ref_seconds:.3f}, ours {ours_seconds:.4f} "
          f"({ref_seconds / ours_seconds:.0f}x)\n")

    lengths = [np.array([len(s["inputs"]) for s in g]) for g in (ours, ref)]
    closes = [np.array([(s["targets"] != -100).sum() for s in g]) for g in (ours, ref)]
    root = [np.array([int(s["targets"][-1]) for s in g]) for g in (ours, ref)]
    rows = [
        ["tokens per sample (mean, median)", *[f"{v.mean():.0f}, {np.median(v):.0f}" for v in lengths],
         "KS", f"{stats.ks_2samp(*lengths).pvalue:.2f}"],
        ["tokens, min .. max", *[f"{v.min()} .. {v.max()}" for v in lengths], "", ""],
        ["sub-expressions per sample (mean)", *[f"{v.mean():.0f}" for v in closes], "KS",
         f"{stats.ks_2samp(*closes).pvalue:.2f}"],
    ]
    H = cfg.max_depth
    root_counts = [np.eye(10, dtype=np.int64)[r] for r in root]
    hist = {
        "root label": root_counts,
        "label, all sub-expressions": [node_counts(g, "targets", 10) for g in (ours, ref)],
        "node height": [node_counts(g, "node_height", H + 1) for g in (ours, ref)],
        "operator": [node_counts(g, "node_op", 4) for g in (ours, ref)],
    }
    for o, name in enumerate(OPS):
        hist[f"label at {name}"] = [node_counts(g, "targets", 10, lambda s, o=o: s["node_op"] == o)
                                    for g in (ours, ref)]
    for name, (a, b) in hist.items():
        share = lambda c: c.sum(0) / c.sum()
        gap = np.abs(share(a) - share(b)).max()
        rows.append([name, f"{len(a)} samples", f"{len(b)} samples", "chi2 (perm.)",
                     f"{permutation_chi2(a, b):.2f} (largest share gap {100 * gap:.1f} pt)"])
    print(table(["statistic", "ours", "reference", "test", "p"], rows))


if __name__ == "__main__":
    main()
