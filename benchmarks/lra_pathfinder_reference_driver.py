"""Run LRA's Pathfinder generator (the original snakes2 of drewlinsley/pathfinder, commit ab9c130)
and save what it made, for `lra_pathfinder_fidelity.py`. It runs under Python 2.7 with the
libraries of its time (see that script for the recipe), so this file keeps to Python 2 syntax and
imports nothing of lrbench.

    python2.7 lra_pathfinder_reference_driver.py REF_DIR SETTINGS_JSON FIRST N OUT.npz

Each image is one call of the reference's `from_wrapper` with `n_images = 1`, after seeding NumPy's
and Python's generators with FIRST + i (LRA's runs seeded nothing: each process started from its
own state). The files the reference would write are caught in memory. OUT.npz holds

    inputs    uint8 [N, M, M]   the image as the reference saves it (scipy.misc.imsave)
    targets   uint8 [N]         its label (1: the circles sit on one path)
    seconds   float64 [N]       wall time of each call, on one core
    distractors_placed int [N]  distractor snakes the reference completed
    main_turns, distractor_turns  float64 [*]: |turn| (degrees) between consecutive dashes of the
                                  main paths / placed distractors, all images together
"""

import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import types

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DEFAULTS = dict(  # the Args defaults of the reference's wrapper that LRA's settings leave alone
    LABEL=1, use_single_paddles=False, segmentation_task=False, segmentation_task_double_circle=False,
    max_target_contour_retrial=4, max_distractor_contour_retrial=4, max_paddle_retrial=2,
    pause_display=False, save_images=True, save_metadata=True)


def turn(a, b):
    d = abs(a - b) % (2 * math.pi)
    return math.degrees(min(d, 2 * math.pi - d))


def main(ref_dir, settings, first, n, out):
    sys.path.insert(0, ref_dir)
    import scipy.misc
    import snakes
    import snakes2

    caught = {}
    scipy.misc.imsave = lambda path, arr: caught.__setitem__("image", np.array(scipy.misc.toimage(arr)))
    snakes.save_metadata = lambda *a, **k: None

    def accumulate_meta(array, label, *a, **k):
        caught["label"] = label
        return array

    snakes2.accumulate_meta = accumulate_meta
    record = {"where": None, "turns": [], "placed": 0}
    extend, make_snake, two_snakes = snakes.extend_snake, snakes.make_snake, snakes2.two_snakes

    def counting_extend(last_pivot, last_orientation, *a, **k):
        result = extend(last_pivot, last_orientation, *a, **k)
        if result[-1]:
            record["turns"].append(turn(result[4], last_orientation))
        return result

    def counting_make_snake(*a, **k):
        record["turns"] = []
        result = make_snake(*a, **k)
        if result[2]:
            record["placed"] += 1
            caught["distractor_turns"].extend(record["turns"])
        return result

    def counting_two_snakes(*a, **k):
        record["turns"] = []
        result = two_snakes(*a, **k)
        if result[-1]:
            caught["main_turns"] = list(record["turns"])
        return result

    snakes.extend_snake, snakes.make_snake, snakes2.two_snakes = counting_extend, counting_make_snake, counting_two_snakes
    snakes2.snakes.extend_snake = counting_extend

    rows = {"inputs": [], "targets": [], "seconds": [], "distractors_placed": []}
    main_turns, distractor_turns = [], []
    tmp = tempfile.mkdtemp()
    try:
        for i in range(n):
            args = types.SimpleNamespace() if hasattr(types, "SimpleNamespace") else type("Args", (), {})()
            for k, v in list(DEFAULTS.items()) + list(settings.items()):
                setattr(args, k, v)
            args.contour_path, args.batch_id, args.n_images = os.path.join(tmp, str(i)), first + i, 1
            np.random.seed(first + i)
            random.seed(first + i)
            record["placed"] = 0
            caught["distractor_turns"] = []
            t0 = time.time()
            snakes2.from_wrapper(args)
            rows["seconds"].append(time.time() - t0)
            rows["inputs"].append(caught["image"].astype(np.uint8))
            rows["targets"].append(int(caught["label"]))
            rows["distractors_placed"].append(record["placed"])
            main_turns.extend(caught["main_turns"])
            distractor_turns.extend(caught["distractor_turns"])
    finally:
        shutil.rmtree(tmp)
    arrays = dict((k, np.asarray(v)) for k, v in rows.items())
    arrays["main_turns"], arrays["distractor_turns"] = np.asarray(main_turns), np.asarray(distractor_turns)
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    sys.stdout = open(os.devnull, "w")  # the reference prints a line per image
    main(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
