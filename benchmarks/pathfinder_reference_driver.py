"""Run the DLR paper's Pathfinder-Segmentation generator and save what it made, for
`pathfinder_fidelity.py`. Runs under the reference's own interpreter (see that script for the
recipe): it imports nothing of lrbench.

    python pathfinder_reference_driver.py REF_DIR SIZE FIRST_BATCH N OUT.npz

REF_DIR is `src/dataloaders/prepare/pathfinder` of a checkout of ag1988/dlr. Each image is one call
of the reference's `from_wrapper` (batch id FIRST_BATCH + i, so its own seeding), with the settings
its wrapper script gives for SIZE. Nothing is written to disk but OUT.npz: the files the reference
would write are caught in memory. OUT.npz holds

    inputs   uint8 [N, M, M]  the image as the reference saves it (its PNG)
    targets  uint8 [N, M, M]  the labels as the paper's loader builds them from the saved paths
    connected uint8 [N]
    seconds  float64 [N]      wall time of each call, on one core
    distractors_placed int [N]  distractor snakes that the reference completed
"""

import os
import sys
import tempfile
import time
import types

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

# The wrapper script's Args defaults that the segmentation settings below leave as they are
# (save_metadata off: the metadata file only lists the images).
WRAPPER_DEFAULTS = dict(
    seed=0, LABEL=1, use_single_paddles=False, segmentation_task=False, segmentation_task_double_circle=False,
    max_target_contour_retrial=4, max_distractor_contour_retrial=4, max_paddle_retrial=2,
    paddle_contrast_list=[1.0], pause_display=False, save_images=True, save_metadata=False,
    save_main_segments=True)

# The wrapper script's settings, size by size (its commented-out blocks; 256 keeps the default
# seed_distance 27 because its block does not set one).
SETTINGS = {
    128: dict(padding=1, paddle_margin_list=[2, 3], seed_distance=22, window_size=[128, 128], marker_radius=2.1,
              contour_length=14, paddle_thickness=1.5, antialias_scale=2, continuity=1.8, paddle_length=5,
              distractor_length=14 // 3, num_distractor_snakes=64 / (14 // 3), snake_contrast_list=[0.9],
              mark_distractors=True),
    256: dict(padding=1, paddle_margin_list=[4], seed_distance=27, window_size=[256, 256], marker_radius=4.2,
              contour_length=16, paddle_thickness=2, antialias_scale=2, continuity=2.2, paddle_length=8,
              distractor_length=16 // 3, num_distractor_snakes=16, snake_contrast_list=[1.0], mark_distractors=True),
    512: dict(padding=1, paddle_margin_list=[7], seed_distance=40, window_size=[512, 512], marker_radius=9,
              contour_length=12, paddle_thickness=6, antialias_scale=3, continuity=2.5, paddle_length=22,
              distractor_length=12 // 3, num_distractor_snakes=18, snake_contrast_list=[1.0], mark_distractors=True),
}


def main(ref_dir: str, size: int, first_batch: int, n: int, out: str) -> None:
    sys.path.insert(0, ref_dir)
    import snakes  # noqa: F401  (the reference's modules)
    import snakes2  # (not its wrapper script: importing that starts a run)

    caught = {}

    class _Catch:  # stands in for the modules the reference writes files with
        @staticmethod
        def imwrite(path, image):
            caught["image"] = np.asarray(image)

        @staticmethod
        def dump(obj, handle, protocol=None):
            caught["paths"] = obj

    snakes2.imageio = _Catch
    snakes2.pickle = _Catch
    snakes2.tqdm = lambda total=None: type("Bar", (), {"set_description": lambda s, d: None,
                                                       "update": lambda s, k: None})()
    placed = []
    make_snake = snakes.make_snake

    def counting_make_snake(*a, **k):
        result = make_snake(*a, **k)
        if result[2]:
            placed[-1] += 1
        return result

    snakes.make_snake = counting_make_snake
    snakes2.print = lambda *a, **k: None

    rows = {"inputs": [], "targets": [], "connected": [], "seconds": [], "distractors_placed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            args = types.SimpleNamespace(**{**WRAPPER_DEFAULTS, **SETTINGS[size]},
                                         contour_path=tmp, batch_id=first_batch + i, n_images=1)
            placed.append(0)
            t0 = time.perf_counter()
            snakes2.from_wrapper(args)
            rows["seconds"].append(time.perf_counter() - t0)
            d = caught["paths"]
            origin, terminal = d["marker_indices"]
            connected = int(origin == terminal)
            labels = np.zeros((size, size), dtype=np.uint8)
            for j, (ys, xs) in enumerate(d["segs"]):  # as the paper's loader builds its target
                path = np.zeros((size, size), dtype=np.uint8)
                path[ys.astype(np.int64), xs.astype(np.int64)] = 1 + int(origin == terminal == j)
                labels = np.maximum(labels, path)
            rows["inputs"].append(caught["image"].astype(np.uint8))
            rows["targets"].append(labels)
            rows["connected"].append(connected)
            rows["distractors_placed"].append(placed[-1])
    np.savez_compressed(out, **{k: np.asarray(v) for k, v in rows.items()})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
