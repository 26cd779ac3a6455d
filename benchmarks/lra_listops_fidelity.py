"""LRA's ListOps side by side with LRA's own generator (SPEC §4.4): token counts and labels.

Imports `lra_benchmarks/data/listops.py` from a checkout of google-research/long-range-arena
(its absl and TensorFlow imports are stubbed: they only parse flags and write files), draws trees
with its `generate_tree` as its `main` does (kept when 500 < length < 2000), and compares them with
`lrbench.get_task("listops")`-style samples from `generators.listops.listops`: the token-count and
label histograms (two-sample Kolmogorov-Smirnov and chi-squared tests), and the time per accepted
sample on one core.

    git clone https://github.com/google-research/long-range-arena /tmp/lra
    python benchmarks/lra_listops_fidelity.py --reference /tmp/lra --samples 2000
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
from scipy import stats

from lrbench.generators import listops as lo


def load_reference(root: Path):
    for name in ("absl", "absl.app", "absl.flags", "tensorflow", "tensorflow.compat", "tensorflow.compat.v1"):
        sys.modules.setdefault(name, types.ModuleType(name))
    flags = sys.modules["absl.flags"]
    for kind in ("DEFINE_string", "DEFINE_integer"):
        setattr(flags, kind, lambda *a, **k: None)
    flags.FLAGS = types.SimpleNamespace()
    sys.modules["absl"].app, sys.modules["absl"].flags = sys.modules["absl.app"], flags
    sys.modules["tensorflow"].compat = sys.modules["tensorflow.compat"]
    sys.modules["tensorflow.compat"].v1 = sys.modules["tensorflow.compat.v1"]
    spec = importlib.util.spec_from_file_location("lra_listops", root / "lra_benchmarks" / "data" / "listops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, help="checkout of google-research/long-range-arena")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ref = load_reference(Path(a.reference))
    cfg = lo.LRAListOpsConfig()
    random.seed(a.seed)
    lengths, labels, seconds = [], [], []
    while len(lengths) < a.samples:
        t0 = time.perf_counter()
        while True:
            tree, length = ref.generate_tree(1, cfg.max_depth, cfg.max_args)
            if cfg.min_length - 1 < length < cfg.max_length + 1:  # its 500 < length < 2000
                break
        labels.append(int(ref.to_value(tree)))
        seconds.append(time.perf_counter() - t0)
        lengths.append(length)
    ours_len, ours_lab, ours_sec = [], [], []
    for i in range(a.samples):
        t0 = time.perf_counter()
        s = lo.listops(np.random.default_rng([a.seed, i]), cfg)
        ours_sec.append(time.perf_counter() - t0)
        ours_len.append(len(s["inputs"]))
        ours_lab.append(int(s["targets"]))
    rl, ol = np.array(lengths), np.array(ours_len)
    print(f"LRA ListOps, {a.samples} samples each (max_depth {cfg.max_depth}, max_args {cfg.max_args}, "
          f"{cfg.min_length}..{cfg.max_length} tokens)")
    print(f"  tokens: reference mean {rl.mean():.1f} median {np.median(rl):.0f} sd {rl.std(ddof=1):.1f}; "
          f"ours mean {ol.mean():.1f} median {np.median(ol):.0f} sd {ol.std(ddof=1):.1f}; "
          f"KS p = {stats.ks_2samp(rl, ol).pvalue:.3f}")
    law = lo.token_count_pmf(cfg).copy()  # cached, read-only
    law[: cfg.min_length], law[cfg.max_length + 1:] = 0, 0
    cdf = np.cumsum(law) / law.sum()
    for name, x in (("reference", rl), ("ours", ol)):
        ecdf = np.searchsorted(np.sort(x), np.arange(len(cdf)), side="right") / len(x)
        d = np.abs(ecdf - cdf).max()  # discrete law: the continuous KS p is conservative
        print(f"  {name} against the exact law (mean {(law * np.arange(len(law))).sum() / law.sum():.1f}): "
              f"KS D = {d:.4f}, p >= {stats.kstwo.sf(d, len(x)):.3f}")
    edges = np.quantile(np.concatenate([rl, ol]), np.linspace(0, 1, 11))
    rh, oh = np.histogram(rl, edges)[0], np.histogram(ol, edges)[0]
    print("  token deciles (pooled edges):", " ".join(f"{int(e)}" for e in edges))
    print("    reference:", " ".join(f"{c:4d}" for c in rh))
    print("    ours:     ", " ".join(f"{c:4d}" for c in oh))
    rb, ob = np.bincount(labels, minlength=10), np.bincount(ours_lab, minlength=10)
    chi = stats.chi2_contingency(np.stack([rb, ob]))
    print("  labels 0..9: reference", " ".join(f"{c:4d}" for c in rb))
    print("               ours     ", " ".join(f"{c:4d}" for c in ob), f"  chi-squared p = {chi.pvalue:.3f}")
    rs, os_ = np.array(seconds), np.array(ours_sec)
    print(f"  seconds per accepted sample, one core: reference median {np.median(rs) * 1e3:.1f} ms mean "
          f"{rs.mean() * 1e3:.1f} ms; ours median {np.median(os_) * 1e3:.2f} ms mean {os_.mean() * 1e3:.2f} ms; "
          f"ratio of medians {np.median(rs) / np.median(os_):.0f}x, of means {rs.mean() / os_.mean():.0f}x")


if __name__ == "__main__":
    main()
