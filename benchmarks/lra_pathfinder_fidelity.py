"""LRA's Pathfinder / Path-X side by side with the generator LRA used (SPEC §4.4, §10).

Runs the reference (the original snakes2 of drewlinsley/pathfinder at commit ab9c130, unmodified,
under Python 2.7) and lrbench's `lra_pathfinder` interleaved, chunk by chunk, in `--jobs` lanes of
one core each, with the same settings (LRA's, per size and difficulty), and prints per size: the
image statistics of `lrbench.fidelity.IMAGE_STATS`, the label, the distractors each generator
placed and the turns between consecutive dashes (each generator's own record), as mean ± sd with
a two-sample Mann-Whitney U test, plus the seconds per image (medians, means, ratios). Writes a
side-by-side picture, the reference's images (npz) and the rows (JSON) to --out.

The reference needs Python 2.7 and the libraries of its time (its NumPy-2 commit changes the
images), installed beside it:

    git clone https://github.com/drewlinsley/pathfinder /tmp/lraref && git -C /tmp/lraref checkout ab9c130
    python2.7 -m pip install --target /tmp/lra27 numpy==1.16.6 scipy==1.2.3 pillow==6.2.2 \\
        opencv-python==4.2.0.32 matplotlib==2.2.5

    python benchmarks/lra_pathfinder_fidelity.py --reference /tmp/lraref --python python2.7 \\
        --pythonpath /tmp/lra27 --sizes 32,128 --images 200,30 --out runs/lra-fidelity
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from lrbench import fidelity  # noqa: E402
from lrbench.generators import pathfinder as pf  # noqa: E402

DRIVER = Path(__file__).resolve().parent / "lra_pathfinder_reference_driver.py"


def reference_settings(cfg: pf.LRAPathfinderConfig) -> dict:
    """Our config in the reference's Args names."""
    return dict(window_size=[cfg.size, cfg.size], padding=cfg.padding, antialias_scale=cfg.antialias_scale,
                seed_distance=cfg.seed_distance, marker_radius=cfg.marker_radius, contour_length=cfg.contour_length,
                distractor_length=cfg.distractor_length, num_distractor_snakes=cfg.num_distractors,
                snake_contrast_list=[cfg.snake_contrast], paddle_contrast_list=[cfg.paddle_contrast],
                continuity=cfg.continuity, paddle_length=cfg.paddle_length, paddle_thickness=cfg.paddle_thickness,
                paddle_margin_list=list(cfg.margins), max_distractor_contour_retrial=cfg.distractor_retries)


def turns(dashes) -> list[float]:
    """|turn| in degrees between consecutive dashes of a snake: a first dash runs along its angle,
    a later one is drawn back from its head, so the snake travels along its angle reversed."""
    dirs = [dashes[0][2]] + [a + math.pi if a < 0 else a - math.pi for _, _, a in dashes[1:]]
    out = []
    for a, b in zip(dirs, dirs[1:]):
        d = abs(b - a) % (2 * math.pi)
        out.append(math.degrees(min(d, 2 * math.pi - d)))
    return out


def reference_chunk(python, pythonpath, ref_dir, cfg, first, n):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chunk.npz"
        env = dict(os.environ, PYTHONPATH=pythonpath or "")
        subprocess.run([python, str(DRIVER), ref_dir, json.dumps(reference_settings(cfg)), str(first), str(n), str(out)],
                       check=True, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


def ours_chunk(cfg, first, n):
    rows = {"inputs": [], "targets": [], "seconds": [], "distractors_placed": [], "main_turns": [],
            "distractor_turns": []}
    for i in range(first, first + n):
        t0 = time.perf_counter()
        scene = pf.sample_scene(np.random.default_rng([cfg.size, i]), cfg)
        image, _, to_uint8 = pf._draw(scene, cfg)
        rows["seconds"].append(time.perf_counter() - t0)
        rows["inputs"].append(to_uint8(image).astype(np.uint8))
        rows["targets"].append(scene.connected)
        rows["distractors_placed"].append(len(scene.distractors))
        rows["main_turns"] += [t for p in scene.paths for t in turns(p)]
        rows["distractor_turns"] += [t for d in scene.distractors for t in turns(d)]
    return {k: np.asarray(v) for k, v in rows.items()}


def lane(args):
    python, pythonpath, ref_dir, cfg, lane_id, n, chunk, offset = args
    ours_chunk(cfg, 10**9, 20)  # the cached tables and dash renderings, outside the timing
    ref, mine = [], []
    for start in range(0, n, chunk):
        k, first = min(chunk, n - start), offset + 1000 * (lane_id + 1) + start
        ref.append(reference_chunk(python, pythonpath, ref_dir, cfg, first, k))
        mine.append(ours_chunk(cfg, first, k))
    join = lambda parts: {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}  # noqa: E731
    return join(ref), join(mine)


def rows_of(sample) -> dict[str, np.ndarray]:
    rows = [fidelity.image_only_stats(im) for im in sample["inputs"]]
    out = {k: np.array([r[k] for r in rows]) for k in fidelity.IMAGE_STATS}
    out["label"] = sample["targets"].astype(float)
    out["distractors_placed"] = sample["distractors_placed"].astype(float)
    out["main_turn_deg"] = sample["main_turns"].astype(float)
    out["distractor_turn_deg"] = sample["distractor_turns"].astype(float)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, help="checkout of drewlinsley/pathfinder at ab9c130")
    ap.add_argument("--python", required=True, help="a Python 2.7 with the reference's libraries")
    ap.add_argument("--pythonpath", default="", help="where those libraries are (pip --target)")
    ap.add_argument("--sizes", default="32,128")
    ap.add_argument("--images", default="200,30", help="images per size and side")
    ap.add_argument("--difficulty", default="hard")
    ap.add_argument("--chunk", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--offset", type=int, default=0, help="first image number (a fresh sample: e.g. 100000)")
    ap.add_argument("--out", default="runs/lra-fidelity")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    counts = [int(c) for c in a.images.split(",")]
    counts = counts * len(sizes) if len(counts) == 1 else counts
    for size, n in zip(sizes, counts):
        cfg = pf.make_lra_config(size=size, difficulty=a.difficulty)
        per_lane = [n // a.jobs + (j < n % a.jobs) for j in range(a.jobs)]
        with ProcessPoolExecutor(a.jobs) as pool:
            parts = list(pool.map(lane, [(a.python, a.pythonpath, a.reference, cfg, j, per_lane[j], a.chunk, a.offset)
                                         for j in range(a.jobs)]))
        ref = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
        ours = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
        np.savez_compressed(out / f"reference-{size}.npz", **ref)
        a_rows, b_rows = rows_of(ref), rows_of(ours)
        print(f"pathfinder-{size} ({a.difficulty}): reference n = {len(ref['targets'])}, ours n = {len(ours['targets'])} "
              "(mean ± sd; turns: every pair of consecutive dashes; p: Mann-Whitney U)")
        print(f"  {'statistic':22s} {'reference':>22s} {'ours':>22s} {'p':>7s}")
        flagged = 0
        for r in fidelity.compare(a_rows, b_rows):
            flag = " *" if r["p"] < 0.01 else ""
            flagged += bool(flag)
            print(f"  {r['stat']:22s} {r['mean_a']:10.4f} ± {r['sd_a']:9.4f} {r['mean_b']:10.4f} ± {r['sd_b']:9.4f} "
                  f"{r['p']:7.3f}{flag}")
        print(f"  {flagged} of {len(a_rows)} statistics with p < 0.01 (*)")
        rs, os_ = ref["seconds"], ours["seconds"]
        print(f"  seconds per image, one core: reference median {np.median(rs):.3f} mean {rs.mean():.3f}; ours median "
              f"{np.median(os_) * 1e3:.2f} ms mean {os_.mean() * 1e3:.2f} ms; ratio of medians "
              f"{np.median(rs) / np.median(os_):.0f}x, of means {rs.mean() / os_.mean():.0f}x", flush=True)
        pics = [np.concatenate([np.pad(s["inputs"][i], 2, constant_values=128) for i in range(8)], axis=1)
                for s in (ref, ours)]
        Image.fromarray(np.concatenate(pics, axis=0)).resize(
            (pics[0].shape[1] * max(1, 256 // size), 2 * pics[0].shape[0] * max(1, 256 // size)),
            Image.Resampling.NEAREST).save(out / f"pathfinder-{size}-side-by-side.png")
        (out / f"pathfinder-{size}.json").write_text(json.dumps(
            {"reference": {k: v.tolist() for k, v in a_rows.items()}, "ours": {k: v.tolist() for k, v in b_rows.items()},
             "reference_seconds": rs.tolist(), "ours_seconds": os_.tolist()}))


if __name__ == "__main__":
    main()
