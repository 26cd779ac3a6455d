"""Statistics of Pathfinder-Segmentation samples, as quoted in data_cards/pathfinder-seg.md.

    python benchmarks/pathfinder_stats.py [--num-samples 200] [--sizes 128,256,512] [--split test] [--seed 0]

Generates samples 0..N-1 of a split per size through the library and prints a Markdown table of
the class balance beside the reference generator's figures (SPEC §4.3): label shares, the share of
nonzero image pixels, the share of connected images, and in connected images the share of the
main-path pixels that are labelled 2.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrbench

REFERENCE = {128: ("94", "21"), 256: ("97", "10"), 512: ("98", "9")}  # % background, % nonzero image


def mean_sd(values, scale=100.0, digits=1) -> str:
    v = np.asarray(values, dtype=np.float64) * scale
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-samples", type=int, default=200)
    ap.add_argument("--sizes", default="128,256,512")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    header = ["size", "label 0 %", "label 1 %", "label 2 %", "nonzero image %", "connected %",
              "label 2 / path pixels, connected %", "reference: label 0 % / nonzero %"]
    rows = []
    for M in [int(s) for s in args.sizes.split(",")]:
        task = lrbench.get_task("pathfinder-seg", size=M)
        shares, lit, conn, two = [], [], [], []
        t = time.process_time()
        for i in range(args.num_samples):
            s = task.sample(i, args.split, args.seed)
            counts = np.bincount(s["targets"].ravel(), minlength=3) / s["targets"].size
            shares.append(counts)
            lit.append((s["inputs"] > 0).mean())
            conn.append(int(s["connected"]))
            if s["connected"]:
                two.append(counts[2] / (counts[1] + counts[2]))
        seconds = (time.process_time() - t) / args.num_samples
        shares = np.array(shares)
        rows.append([f"{M}", mean_sd(shares[:, 0], digits=2), mean_sd(shares[:, 1], digits=2),
                     mean_sd(shares[:, 2], digits=2), mean_sd(lit, digits=2), f"{100 * np.mean(conn):.1f}",
                     mean_sd(two), " / ".join(REFERENCE.get(M, ("-", "-")))])
        print(f"# {M}: {args.num_samples} samples of {args.split} (seed {args.seed}), {seconds * 1e3:.0f} ms each",
              flush=True)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nmean ± standard deviation over images")


if __name__ == "__main__":
    main()
