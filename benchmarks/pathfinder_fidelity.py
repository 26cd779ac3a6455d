"""Pathfinder-Segmentation side by side with the DLR paper's own generator (SPEC §4.3, §10).

Runs the reference (ag1988/dlr's snakes2 with its wrapper's segmentation settings, targets as its
loader builds them) and lrbench's generator interleaved, chunk by chunk, in `--jobs` lanes of one
core each, and prints per size: every statistic of `lrbench.fidelity` (mean ± sd of per-image
values, both sides) with a two-sample Mann-Whitney U test, the distractors each generator placed,
and the seconds per image (medians, means, ratios). Writes a side-by-side picture and the per-image
rows (JSON) and the reference's images (npz) to --out; `--save-reference FILE` stores the
reference's rows for the tests.

The reference needs the Python and libraries of its time, in a virtual environment of its own:

    git clone https://github.com/ag1988/dlr /tmp/dlr
    python3.10 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install numpy==1.23.5 scipy==1.9.3 opencv-python-headless==4.6.0.66 \\
        scikit-image==0.19.3 imageio==2.22.4 matplotlib==3.6.2 tqdm pillow==9.3.0

    python benchmarks/pathfinder_fidelity.py --reference /tmp/dlr --python /tmp/refvenv/bin/python \\
        --sizes 128,256,512 --images 60,40,30 --out runs/fidelity

`--reference-rows FILE` compares with stored reference rows instead of running the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import lrbench  # noqa: E402
from lrbench import fidelity  # noqa: E402
from lrbench.generators import pathfinder as pf  # noqa: E402
from lrbench.seeding import sample_rng  # noqa: E402

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "pathfinder_reference_driver.py"


def reference_chunk(python: str, ref_dir: str, size: int, first: int, n: int) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chunk.npz"
        subprocess.run([python, str(DRIVER), ref_dir, str(size), str(first), str(n), str(out)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


def ours_chunk(size: int, first: int, n: int, seed: int) -> dict[str, np.ndarray]:
    task = lrbench.get_task("pathfinder-seg", size=size)
    rows = {"inputs": [], "targets": [], "connected": [], "seconds": [], "distractors_placed": []}
    for i in range(first, first + n):
        rng_sample = sample_rng(task.id, seed, "train", i)
        t0 = time.perf_counter()
        scene = pf.sample_scene(rng_sample, task.config)
        s = pf.render_scene(scene, task.config)
        rows["seconds"].append(time.perf_counter() - t0)
        for k in ("inputs", "targets", "connected"):
            rows[k].append(s[k])
        rows["distractors_placed"].append(len(scene.distractors))
    return {k: np.asarray(v) for k, v in rows.items()}


def lane(args) -> tuple[dict, dict]:
    """One core: reference and ours alternate, chunk by chunk. Lane j numbers its images (the
    reference's batch ids, our train indices) from offset + 1000 (j + 1)."""
    python, ref_dir, size, lane_id, n, chunk, seed, offset = args
    ours_chunk(size, 10**9, 1, seed)  # build the cached tables outside the timing
    ref, mine = [], []
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        first = offset + 1000 * (lane_id + 1) + start
        if python:
            ref.append(reference_chunk(python, ref_dir, size, first, k))
        mine.append(ours_chunk(size, first, k, seed))
    join = lambda parts: {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else {}  # noqa: E731
    return join(ref), join(mine)


def side_by_side(ref: dict, ours: dict, size: int, path: Path, n: int = 3):
    rows = []
    for sample in (ref, ours):
        pics = [pf.picture({"inputs": sample["inputs"][i], "targets": sample["targets"][i]}) for i in range(n)]
        rows.append(np.concatenate([np.pad(p, ((4, 4), (4, 4), (0, 0)), constant_values=255) for p in pics], axis=1))
    grid = np.concatenate(rows, axis=0)
    img = Image.fromarray(grid)
    if size == 512:
        img = img.resize((img.width // 2, img.height // 2), Image.Resampling.BOX)
    img.save(path)


def report(size: int, ref_rows: dict, ours: dict, ref_extra: dict) -> list[str]:
    lines = [f"pathfinder-seg-{size}: reference n = {len(ref_extra['distractors_placed'])}, "
             f"ours n = {len(ours['distractors_placed'])}  (mean ± sd of per-image values; p: Mann-Whitney U)",
             f"  {'statistic':24s} {'reference':>22s} {'ours':>22s} {'p':>7s}"]
    ours_rows = fidelity.sample_stats(ours["inputs"], ours["targets"])
    ours_rows["distractors_placed"] = ours["distractors_placed"].astype(float)
    ref_rows = dict(ref_rows, distractors_placed=np.asarray(ref_extra["distractors_placed"], float))
    flagged = 0
    for r in fidelity.compare(ref_rows, ours_rows):
        flag = " *" if r["p"] < 0.01 else ""
        flagged += bool(flag)
        lines.append(f"  {r['stat']:24s} {r['mean_a']:10.4f} ± {r['sd_a']:9.4f} {r['mean_b']:10.4f} ± "
                     f"{r['sd_b']:9.4f} {r['p']:7.3f}{flag}")
    lines.append(f"  {flagged} of {len(ref_rows)} statistics with p < 0.01 (*)")
    rs, os_ = np.asarray(ref_extra["seconds"]), ours["seconds"]
    if len(rs):
        lines.append(f"  seconds per image, one core: reference median {np.median(rs):.3f} mean {rs.mean():.3f}; ours median "
                     f"{np.median(os_) * 1e3:.1f} ms mean {os_.mean() * 1e3:.1f} ms; ratio of medians "
                     f"{np.median(rs) / np.median(os_):.0f}x, of means {rs.mean() / os_.mean():.0f}x")
    else:
        lines.append(f"  seconds per image, one core: ours median {np.median(os_) * 1e3:.1f} ms mean {os_.mean() * 1e3:.1f} ms")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", help="checkout of ag1988/dlr")
    ap.add_argument("--python", help="the reference venv's python")
    ap.add_argument("--reference-rows", help="stored reference rows (JSON) instead of running the reference")
    ap.add_argument("--sizes", default="128,256,512")
    ap.add_argument("--images", default="60,40,30", help="images per size and side (one number or one per size)")
    ap.add_argument("--chunk", type=int, default=4, help="images per interleaved chunk")
    ap.add_argument("--jobs", type=int, default=2, help="lanes, one core each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--offset", type=int, default=0, help="first image number (a fresh sample: e.g. 100000)")
    ap.add_argument("--out", default="runs/fidelity")
    ap.add_argument("--save-reference", help="write the reference's per-image rows here (JSON)")
    a = ap.parse_args()
    if not a.reference_rows and not (a.reference and a.python):
        ap.error("give --reference and --python, or --reference-rows")
    sizes = [int(s) for s in a.sizes.split(",")]
    counts = [int(c) for c in a.images.split(",")]
    counts = counts * len(sizes) if len(counts) == 1 else counts
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stored = json.loads(Path(a.reference_rows).read_text()) if a.reference_rows else {}
    saved = {}
    ref_dir = str(Path(a.reference) / "src/dataloaders/prepare/pathfinder") if a.reference else ""
    for size, n in zip(sizes, counts):
        per_lane = [n // a.jobs + (j < n % a.jobs) for j in range(a.jobs)]
        python = None if a.reference_rows else a.python
        with ProcessPoolExecutor(a.jobs) as pool:
            parts = list(pool.map(lane, [(python, ref_dir, size, j, per_lane[j], a.chunk, a.seed, a.offset)
                                         for j in range(a.jobs)]))
        ours = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
        if a.reference_rows:
            entry = stored[str(size)]
            ref_rows = {k: np.asarray(v, float) for k, v in entry["stats"].items()}
            ref_extra = {"distractors_placed": entry["distractors_placed"], "seconds": entry.get("seconds", [])}
        else:
            ref = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
            np.savez_compressed(out / f"reference-{size}.npz", **ref)  # to measure new statistics later
            ref_rows = fidelity.sample_stats(ref["inputs"], ref["targets"])
            ref_extra = {"distractors_placed": ref["distractors_placed"].tolist(), "seconds": ref["seconds"].tolist()}
            side_by_side(ref, ours, size, out / f"pathfinder-seg-{size}-side-by-side.png")
            saved[str(size)] = {"n": len(ref["seconds"]), "stats": {k: v.tolist() for k, v in ref_rows.items()},
                                **ref_extra}
        print("\n".join(report(size, ref_rows, ours, ref_extra)), flush=True)
        ours_rows = fidelity.sample_stats(ours["inputs"], ours["targets"])
        (out / f"pathfinder-seg-{size}.json").write_text(json.dumps(
            {"reference": {k: np.asarray(v).tolist() for k, v in ref_rows.items()},
             "ours": {k: v.tolist() for k, v in ours_rows.items()},
             "ours_seconds": ours["seconds"].tolist(), "ours_distractors_placed": ours["distractors_placed"].tolist(),
             "reference_extra": ref_extra}))
    if a.save_reference and saved:
        what = ("Per-image statistics (lrbench.fidelity) of images made by the DLR paper's own Pathfinder-Segmentation "
                "generator (ag1988/dlr snakes2 with its wrapper's segmentation settings, targets as its loader builds "
                "them), measured by benchmarks/pathfinder_fidelity.py; seconds: one core of a 2-core machine.")
        Path(a.save_reference).write_text(json.dumps({"what": what, **saved}, indent=1))


if __name__ == "__main__":
    main()
