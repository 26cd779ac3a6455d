"""Pathfinder-Segmentation: images per second per core at 128 / 256 / 512, against a slow
reference implementation of the same procedure measured in the same run, and against the DLR
paper's generator (SPEC §10: about 4-8 s per image at 128 and 20-55 s at 512 on one core; at
least 100x faster is the target).

    python benchmarks/bench_pathfinder.py [--images N] [--reference-images N] [--sizes 128,256,512]

Ours: `lrbench.get_task("pathfinder-seg", size=M).sample(i, "train", seed)`, as `lrbench generate`
calls it; "+ write" also stacks the samples and writes them as one shard with lrbench.storage
(gzip level 1 for inputs and targets, as `lrbench generate` does) into a temporary directory.
Times are CPU seconds of this process (time.process_time), one core; the machine is shared, so
each figure is the best of two rounds. The 100,000-image projection assumes 2 cores in parallel.

Reference, written here: the same decisions from the same random stream (generators/pathfinder.py
`_try_scene`), computed the way the original generator computes them, on full frames: every
placed object keeps a full-image mask of its shape dilated by half the clearance, and every
candidate dash or circle is tested by computing its own full-image dilated mask and intersecting
it with the occupancy (the original's "dilated masks must not overlap" test). Rendering evaluates
the same tent-filtered shape at every pixel of the frame for every object (our renderer evaluates
it on each object's bounding box only), so its pixels are identical to ours for a given scene:
checked below. Its decisions test pixel centres of dilated masks rather than our 0.5 px samples,
so its scenes differ from ours in detail.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import lrbench
from lrbench.generators import pathfinder as pf
from lrbench.storage import write_shard

PAPER_SECONDS = {128: (4.0, 8.0), 512: (20.0, 55.0)}  # SPEC §10, the DLR paper's generator, one core


class FullFrameBuilder(pf._Builder):
    """pf._Builder with every occupancy operation on full-image masks (the original's way)."""

    def __init__(self, cfg, margin):
        super().__init__(cfg, margin)
        M = cfg.size
        self.yy, self.xx = np.mgrid[0:M, 0:M].astype(np.float64)
        self.count = np.zeros((M, M), dtype=np.int32)  # how many dilated masks cover each pixel

    def _mask(self, ax, ay, bx, by, radius):
        """Full-image mask of the shape dilated by half the clearance."""
        d2 = pf._point_seg2(self.xx, self.yy, ax, ay, bx, by)
        return d2 <= (radius + self.gap / 2) ** 2

    def _stamp(self, obj, sign):
        _, ax, ay, bx, by, r = obj
        self.count += sign * self._mask(ax, ay, bx, by, r)

    def _collides(self, ax, ay, bx, by, radius, snake):
        mask = self._mask(ax, ay, bx, by, radius)
        if (mask & (self.count > 0)).any():
            return True
        for other, objs in self.pending.items():
            if other != snake:
                for _, oax, oay, obx, oby, r in objs:
                    if (mask & self._mask(oax, oay, obx, oby, r)).any():
                        return True
        return False

    def fits(self, ax, ay, bx, by, snake):
        lo, hi = self.lo_hi(self.rho)
        ok = ((np.minimum(ax, bx) >= lo) & (np.maximum(ax, bx) <= hi)
              & (np.minimum(ay, by) >= lo) & (np.maximum(ay, by) <= hi))
        for i in np.flatnonzero(ok):
            ok[i] = not self._collides(ax[i], ay[i], bx[i], by[i], self.rho, snake)
        return ok

    def circle_fits(self, cx, cy, snake):
        lo, hi = self.lo_hi(self.R)
        ok = (cx >= lo) & (cx <= hi) & (cy >= lo) & (cy <= hi)
        for i in np.flatnonzero(ok):
            ok[i] = not self._collides(cx[i], cy[i], cx[i], cy[i], self.R, snake)
        return ok


def reference_scene(rng, cfg) -> pf.Scene:
    connected = int(rng.integers(0, 2))
    margin = int(cfg.margins[int(rng.integers(0, len(cfg.margins)))])
    marked = int(rng.integers(0, 2))
    while True:
        scene = pf.Scene(margin=margin, connected=connected, marked=marked)
        if pf._try_scene(rng, cfg, scene, builder=FullFrameBuilder):
            return scene


def reference_render(scene, cfg) -> dict[str, np.ndarray]:
    """Every object evaluated at every pixel of the frame, composited with np.maximum."""
    M, L, T = cfg.size, float(cfg.paddle_length), cfg.paddle_thickness
    Y, X = np.mgrid[0:M, 0:M].astype(np.float64)
    canvas, targets = np.zeros((M, M)), np.zeros((M, M), dtype=np.uint8)
    labels = [1, 1]
    if scene.connected:
        labels[scene.marked] = 2

    def dash_value(dash):
        ax, ay, bx, by = dash
        cx, cy = (ax + bx) / 2, (ay + by) / 2
        ux, uy = (bx - ax) / L, (by - ay) / L
        along, across = (X - cx) * ux + (Y - cy) * uy, (Y - cy) * ux - (X - cx) * uy
        return pf._box_profile(along, L / 2) * pf._box_profile(across, T / 2) * cfg.intensity

    for s, path in enumerate(scene.paths):
        for dash in path:
            v = dash_value(dash)
            canvas = np.maximum(canvas, v)
            targets = np.maximum(targets, np.where(np.rint(v * 255.0) >= 1, labels[s], 0).astype(np.uint8))
    for snake in scene.distractors:
        for dash in snake:
            canvas = np.maximum(canvas, dash_value(dash))
    for cx, cy in scene.circles:
        d = np.sqrt((X - cx) * (X - cx) + (Y - cy) * (Y - cy))
        canvas = np.maximum(canvas, pf._box_profile(d, cfg.marker_radius))
    return {"inputs": np.rint(canvas * 255.0).astype(np.uint8), "targets": targets,
            "connected": np.array(scene.connected, dtype=np.uint8)}


def cpu_seconds(fn, rounds: int = 2) -> float:
    """Best of `rounds` CPU times of fn()."""
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=40, help="images per size for ours")
    ap.add_argument("--reference-images", type=int, default=2, help="images per size for the reference")
    ap.add_argument("--sizes", default="128,256,512")
    args = ap.parse_args()

    for M in [int(s) for s in args.sizes.split(",")]:
        task = lrbench.get_task("pathfinder-seg", size=M)
        cfg, n = task.config, args.images

        def generate():
            return [task.sample(i, "train", 0) for i in range(n)]

        def generate_and_write():
            samples = generate()
            arrays = {k: np.stack([s[k] for s in samples]) for k in samples[0]}
            with tempfile.TemporaryDirectory() as tmp:
                write_shard(Path(tmp) / "train-00000-of-00001.h5", arrays,
                            {"task": task.name, "first_index": 0}, compress={"inputs", "targets"})

        ours = cpu_seconds(generate) / n
        ours_write = cpu_seconds(generate_and_write) / n

        # the reference renderer gives our pixels for our scenes
        scene = pf.sample_scene(np.random.default_rng(1), cfg)
        mine, theirs = pf.render_scene(scene, cfg), reference_render(scene, cfg)
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine), "reference renderer disagrees"

        t = time.process_time()
        for i in range(args.reference_images):
            reference_render(reference_scene(np.random.default_rng([M, i]), cfg), cfg)
        ref = (time.process_time() - t) / args.reference_images

        paper = PAPER_SECONDS.get(M)
        vs_paper = (f"{paper[0] / ours_write:,.0f}-{paper[1] / ours_write:,.0f}x vs the paper's "
                    f"{paper[0]:g}-{paper[1]:g} s" if paper else
                    f">= {4.0 / ours_write:,.0f}x vs the paper's fastest figure (4 s at 128; none quoted at {M})")
        print(f"pathfinder-seg-{M}: ours {ours * 1e3:6.1f} ms/image generate, {ours_write * 1e3:6.1f} ms/image "
              f"generate+write ({1 / ours_write:5.1f} images/s/core); 100,000 images on 2 cores: "
              f"{1e5 * ours_write / 2 / 60:5.1f} min", flush=True)
        print(f"    reference (full-frame, same procedure) {ref:7.2f} s/image over {args.reference_images} images: "
              f"ours is {ref / ours_write:,.0f}x faster; {vs_paper}", flush=True)


if __name__ == "__main__":
    main()
