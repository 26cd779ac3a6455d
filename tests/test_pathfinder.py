"""Pathfinder-Segmentation (SPEC §4.3): the DLR paper's generator, reproduced.

What the generator draws is checked against independent computations written here the way the
reference (ag1988/dlr, snakes2) computes them: a dash drawn on a fine canvas, dilated by a disc and
shrunk with Lanczos; circles drawn on a whole-image fine canvas; where a snake may start, from a
full-image dilation with the dash's kernel; images and labels recomposed from the scene on full
canvases. The process as a whole is checked statistically against the reference's own images
(benchmarks/reference/pathfinder_seg_reference.json, measured by benchmarks/pathfinder_fidelity.py)
and against the figures in ../shared/reference/pathfinder_seg_paper_stats.json.
"""

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

import lrbench
from lrbench import fidelity
from lrbench.generators import pathfinder as pf
from lrbench.seeding import sample_rng

ROOT = Path(__file__).resolve().parents[1]
SPEC_PRESETS = {  # SPEC §4.3 and the reference wrapper's settings, field by field
    128: dict(contour_length=14, paddle_length=5, paddle_thickness=1.5, margins=(2, 3), seed_distance=22,
              marker_radius=2.1, continuity=1.8, distractor_length=4, num_distractors=16, intensity=0.9,
              antialias_scale=2),
    256: dict(contour_length=16, paddle_length=8, paddle_thickness=2, margins=(4,), seed_distance=27,
              marker_radius=4.2, continuity=2.2, distractor_length=5, num_distractors=16, intensity=1.0,
              antialias_scale=2),
    512: dict(contour_length=12, paddle_length=22, paddle_thickness=6, margins=(7,), seed_distance=40,
              marker_radius=9, continuity=2.5, distractor_length=4, num_distractors=18, intensity=1.0,
              antialias_scale=3),
}
BATCH = {128: 8, 256: 4, 512: 2}  # images per size for the structural checks


@pytest.fixture(scope="module")
def generated():
    """size -> [(cfg, scene, sample)]"""
    out = {}
    for M, n in BATCH.items():
        cfg = pf.make_config(size=M)
        out[M] = []
        for i in range(n):
            scene = pf.sample_scene(np.random.default_rng([M, i]), cfg)
            out[M].append((cfg, scene, pf.render_scene(scene, cfg)))
    return out


def all_samples(generated):
    for M in BATCH:
        yield from generated[M]


def pen_of(cfg, margin):
    return pf.Pen(cfg.paddle_length, cfg.paddle_thickness, margin, cfg.antialias_scale)


# -- configuration


def test_presets_are_the_reference_settings():
    for M, fields in SPEC_PRESETS.items():
        cfg = pf.make_config(size=M)
        assert cfg.size == M and pf.PRESETS[M] == cfg
        for name, value in fields.items():
            assert getattr(cfg, name) == value, (M, name)
        assert cfg.distractor_retries == 4 and cfg.distractor_circle == "pivot"  # the reference's
    assert pf.PathfinderConfig() == pf.make_config() == pf.PRESETS[128]


def test_overrides_start_from_the_preset_of_size():
    cfg = pf.make_config(size=256, margins=[3], num_distractors=4)
    assert cfg.margins == (3,) and cfg.num_distractors == 4 and cfg.paddle_length == 8
    assert pf.make_config(size=256, paddle_thickness=2, marker_radius=4.2) == pf.PRESETS[256]
    assert isinstance(pf.make_config(paddle_thickness=2).paddle_thickness, float)
    task = lrbench.get_task("pathfinder-seg", size=512, continuity=2)
    assert task.config.continuity == 2.0 and task.config.paddle_length == 22
    assert lrbench.get_task("pathfinder-seg", distractor_circle="tip").config.distractor_circle == "tip"


@pytest.mark.parametrize("params,message", [
    ({"size": 300}, r"size must be one of 128, 256, 512 \(got 300\)"),
    ({"size": "128"}, r"size must be one of 128, 256, 512"),
    ({"contour_length": 1}, r"contour_length must be an integer in \[2, 200\] \(got 1\)"),
    ({"contour_length": True}, r"contour_length must be an integer"),
    ({"paddle_length": 0}, r"paddle_length must be an integer in \[1, 32\]"),
    ({"paddle_length": 5.5}, r"paddle_length must be an integer"),
    ({"paddle_thickness": 0}, r"paddle_thickness must be a number in \(0, 8\]"),
    ({"paddle_thickness": 1.25}, r"paddle_thickness .* times antialias_scale \(2\) is whole \(got 1.25\)"),
    ({"margins": ()}, r"margins must be a non-empty tuple of integers in \[1, 8\]"),
    ({"margins": (2, 0)}, r"margins must be a non-empty tuple"),
    ({"margins": 3}, r"margins must be a non-empty tuple"),
    ({"seed_distance": 32}, r"seed_distance must be an integer in \[1, 32\)"),
    ({"seed_distance": 20.5}, r"seed_distance must be an integer"),
    ({"marker_radius": 0.2}, r"marker_radius must be a number in \[0.5, 16\]"),
    ({"continuity": 0.9}, r"continuity must be a number in \[1, 100\]"),
    ({"distractor_length": 0}, r"distractor_length must be an integer in \[1, 200\]"),
    ({"num_distractors": -1}, r"num_distractors must be an integer in \[0, 1000\]"),
    ({"intensity": 0}, r"intensity must be a number in \(0, 1\]"),
    ({"intensity": float("nan")}, r"intensity must be a number"),
    ({"antialias_scale": 0}, r"antialias_scale must be an integer in \[1, 8\]"),
    ({"distractor_retries": -1}, r"distractor_retries must be an integer in \[0, 100\]"),
    ({"distractor_circle": "end"}, r"distractor_circle must be one of pivot, tip \(got 'end'\)"),
])
def test_bad_configs_say_what_is_allowed(params, message):
    with pytest.raises(ValueError, match=message):
        pf.make_config(**params)
    with pytest.raises(ValueError, match=message):
        lrbench.get_task("pathfinder-seg", **params)


def test_unknown_parameters_are_errors():
    with pytest.raises(ValueError, match="unknown parameter.*colour.*valid parameters: size, contour_length"):
        pf.make_config(colour=1)
    with pytest.raises(ValueError, match="unknown parameter colour for task pathfinder-seg"):
        lrbench.get_task("pathfinder-seg", colour=1)


def test_an_impossible_config_fails_cleanly(monkeypatch):
    monkeypatch.setattr(pf, "MAX_ATTEMPTS", 2 * pf.ATTEMPT_BLOCK)
    cfg = pf.make_config(size=128, contour_length=200)  # a 200-dash path cannot fit in 128 x 128
    with pytest.raises(RuntimeError, match="two main paths of 200 dashes did not fit .* in 128 attempts"):
        pf.pathfinder_seg(np.random.default_rng(0), cfg)


# -- rendering, against the reference's way of drawing


def reference_dash(pen, angle, contrast=1.0):
    """A dash as the reference draws it: a white line on a canvas aa times finer, Lanczos-shrunk,
    times the contrast, placed through a float32 image; its mask: the fine line dilated by a disc of
    radius margin*aa (a full-canvas grey dilation here), shrunk as 8-bit."""
    K, aa = pen.half, pen.aa
    c = K * aa
    hy, hx = math.ceil(c + pen.length * aa * math.sin(angle)), math.ceil(c + pen.length * aa * math.cos(angle))
    fine = Image.new("F", (2 * c + 1, 2 * c + 1), "black")
    ImageDraw.Draw(fine).line([(c, c), (hx, hy)], fill="white", width=int(round(pen.thickness * aa)))
    small = (2 * K + 1, 2 * K + 1)
    line = np.asarray(fine.resize(small, Image.Resampling.LANCZOS)).astype(np.float64) / 255
    line = (line * contrast if contrast != 1.0 else line).astype(np.float32)
    r = pen.margin * aa
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    dilated = ndimage.grey_dilation(np.asarray(fine), footprint=x * x + y * y <= r * r, mode="constant", cval=0)
    mask = np.asarray(Image.fromarray(dilated.astype(np.uint8)).resize(small, Image.Resampling.LANCZOS))
    return line, mask


@pytest.mark.parametrize("M", pf.SIZES)
def test_dashes_are_drawn_as_the_reference_draws_them(M):
    cfg = pf.make_config(size=M)
    for margin in cfg.margins:
        pen = pen_of(cfg, margin)
        angles = [d * math.pi / 180 for d in range(-180, 180, 23)] + [math.atan2(3, -7), math.atan2(-5, 2)]
        for angle in angles:
            shape = pf.dash_shape(pen, angle)
            line, mask = reference_dash(pen, angle)
            assert np.array_equal((shape.line.astype(np.float64) / 255).astype(np.float32), line)
            assert np.array_equal(shape.mask, mask)
            y, x = np.ogrid[-margin:margin + 1, -margin:margin + 1]
            grown = ndimage.grey_dilation(np.pad(mask, margin), footprint=x * x + y * y <= margin * margin,
                                          mode="constant", cval=0)
            assert np.array_equal(shape.grown, grown)


def reference_circle(M, y, x, radius, aa):
    """The reference's circle: a disc on a whole-image canvas aa times finer, Lanczos-shrunk."""
    ys, xs = np.ogrid[-y * aa:(M - y) * aa, -x * aa:(M - x) * aa]
    fine = np.where(xs * xs + ys * ys <= (radius * aa) ** 2, 1.0, 0.0)
    return np.asarray(Image.fromarray(fine.astype(np.float32)).resize((M, M), Image.Resampling.LANCZOS)).astype(np.float64)


@pytest.mark.parametrize("M", pf.SIZES)
def test_circles_are_drawn_as_the_reference_draws_them(M):
    cfg = pf.make_config(size=M)
    for y, x in [(M // 2, M // 3), (0, 0), (1, M - 1), (M - 2, 3), (5, M // 2)]:  # the filter renormalises at edges
        canvas = np.zeros((M, M))
        pf._draw_circle(canvas, y, x, cfg)
        ref = np.maximum(reference_circle(M, y, x, cfg.marker_radius, cfg.antialias_scale), 0)
        assert np.array_equal(canvas, ref), (y, x)


def test_start_footprint_is_the_reference_kernel():
    """Where a snake may start: the reference dilates the mask with the saturated part of the dash's
    mask, drawn one pixel down-right of the centre of a (2 (length + margin) + 1)^2 kernel; a pixel is
    a start when the dilated mask stays <= 0.3 there. Computed here over the whole image, shift by
    shift, on a real mask."""
    cfg = pf.make_config(size=128)
    proc = pf._Process(np.random.default_rng(3), cfg, 3)
    proc.main_paths()
    mask = proc.occ.mask  # the mask after the main paths
    L, m = cfg.paddle_length, 3
    S = L + m
    for degree in (-180, -97, 0, 45, 133):
        pen = pen_of(cfg, m)
        _, dash_mask = reference_dash(pen, degree * math.pi / 180)
        kernel = np.zeros((2 * S + 1, 2 * S + 1), dtype=np.uint8)
        K = pen.half
        big = np.zeros((2 * S + 1 + 2 * K, 2 * S + 1 + 2 * K), dtype=np.uint8)  # place, then crop
        big[S + 1:S + 1 + 2 * K + 1, S + 1:S + 1 + 2 * K + 1] = dash_mask
        kernel[:] = big[K:K + 2 * S + 1, K:K + 2 * S + 1]
        offsets = np.argwhere(kernel == 255) - S
        dilated = np.full(mask.shape, -1, dtype=np.int16)  # cv2.dilate: out-of-image pixels count for nothing
        for dy, dx in offsets:
            shifted = np.full(mask.shape, -1, dtype=np.int16)
            ys, yd = slice(max(dy, 0), 128 + min(dy, 0)), slice(max(-dy, 0), 128 + min(-dy, 0))
            xs, xd = slice(max(dx, 0), 128 + min(dx, 0)), slice(max(-dx, 0), 128 + min(-dx, 0))
            shifted[yd, xd] = mask[ys, xs]
            np.maximum(dilated, shifted, out=dilated)
        expected = dilated <= 76
        assert np.array_equal(pf._clear_everywhere(mask, pf.start_footprint(pen, degree)), expected), degree
        ys, xs = np.nonzero(expected)
        assert pf._clear_at(mask, ys[:50], xs[:50], pf.start_footprint(pen, degree)).all()
        # the first main path's starts: a frame 2 seed_distance wide; the clear set is a rectangle
        frame = pf._frame(128, 2 * cfg.seed_distance)
        clear = pf._clear_everywhere(frame, pf.start_footprint(pen, degree))
        f = proc.tab.foot[degree + 180]
        w = 2 * cfg.seed_distance
        rect = np.zeros_like(clear)
        rect[w - f[0]:128 - w - f[1], w - f[2]:128 - w - f[3]] = True
        assert np.array_equal(clear, rect), degree


def recompose(scene, cfg):
    """Image and labels from the scene on whole-image canvases, as the reference saves them."""
    M = cfg.size
    pen = pen_of(cfg, scene.margin)

    def canvas_of(dashes):
        c = np.zeros((M + 200, M + 200))  # margins so that no patch needs cropping
        for y, x, angle in dashes:
            v = reference_dash(pen, angle, cfg.intensity)[0].astype(np.float64)
            K = pen.half
            c[100 + y - K:100 + y + K + 1, 100 + x - K:100 + x + K + 1] = np.maximum(
                c[100 + y - K:100 + y + K + 1, 100 + x - K:100 + x + K + 1], v)
        return c[100:100 + M, 100:100 + M]

    paths = [canvas_of(p) for p in scene.paths]
    image = np.maximum(paths[0], paths[1])
    for d in scene.distractors:
        image = np.maximum(image, canvas_of(d))
    for y, x in scene.circles:
        image = np.maximum(image, reference_circle(M, y, x, cfg.marker_radius, cfg.antialias_scale))
    lo, hi = image.min(), image.max()
    to_uint8 = lambda a: np.rint((a - lo) / (hi - lo) * 255)  # noqa: E731
    labels = [np.where(to_uint8(p) > 0, 1 + int(scene.connected and s == scene.marked), 0) for s, p in enumerate(paths)]
    return to_uint8(image).astype(np.uint8), np.maximum(*labels).astype(np.uint8)


def test_image_and_labels_recomposed_from_the_scene(generated):
    for M in (128, 256):
        for cfg, scene, s in generated[M][:2]:
            image, labels = recompose(scene, cfg)
            assert np.array_equal(s["inputs"], image)
            assert np.array_equal(s["targets"], labels)
            assert int(s["connected"]) == scene.connected


# -- the process, read back from the scene


def travel(cfg, scene, dashes):
    """Per dash of a snake: its pivot and the direction the snake travels in, recomputed from the
    dashes: a first dash runs from its tail to its head, its pivot margin px behind the tail; every
    later dash is drawn back from its head towards the pivot length + 2 margin beyond the last."""
    L, m = cfg.paddle_length, scene.margin
    y, x, a = dashes[0]
    hy, hx = math.ceil(y + L * math.sin(a)), math.ceil(x + L * math.cos(a))
    back = a + math.pi if a < 0 else a - math.pi
    pivot = (math.ceil(hy + (L + m) * math.sin(back)), math.ceil(hx + (L + m) * math.cos(back)))
    out = [(pivot, a, (hy, hx))]
    for y, x, a in dashes[1:]:
        (py, px), last, _ = out[-1]
        pivot = (math.ceil(py + (L + 2 * m) * math.sin(last)), math.ceil(px + (L + 2 * m) * math.cos(last)))
        heading = math.atan2(y - pivot[0], x - pivot[1])
        out.append((pivot, heading, (y, x)))
    return out


def test_snakes_grow_as_the_reference_grows_them(generated):
    for cfg, scene, s in all_samples(generated):
        M, L, m = cfg.size, cfg.paddle_length, scene.margin
        assert m in cfg.margins
        assert [len(p) for p in scene.paths] == [cfg.contour_length] * 2
        assert len(scene.distractors) <= cfg.num_distractors
        assert all(len(d) == cfg.distractor_length for d in scene.distractors)
        max_turn = math.pi / (2 * cfg.continuity)  # weight cos²(continuity * turn) is 0 beyond
        for dashes in scene.paths + scene.distractors:
            first = dashes[0][2]
            assert round(first * 180 / math.pi) * math.pi / 180 == first  # whole degrees
            steps = travel(cfg, scene, dashes)
            for k, ((py, px), heading, (hy, hx)) in enumerate(steps):
                assert 0 <= py < M and 0 <= px < M and 0 <= hy < M and 0 <= hx < M
                if k == 0:
                    continue
                dist = math.hypot(hy - py, hx - px)
                assert L + m - 1.5 <= dist <= L + m + 1.5  # a pixel of the ring around the pivot
                angle = dashes[k][2]
                assert abs(angle - (heading + math.pi if heading < 0 else heading - math.pi)) < 1e-12
                turn = abs(heading - steps[k - 1][1]) % (2 * math.pi)
                assert min(turn, 2 * math.pi - turn) < max_turn + 1e-9
        (t1y, t1x, _), (t2y, t2x, _) = scene.paths[0][0], scene.paths[1][0]
        assert abs(math.hypot(t2y - t1y, t2x - t1x) - cfg.seed_distance) <= 0.75  # rounded to a pixel
        w = 2 * cfg.seed_distance
        assert w - (L + m) <= min(t1y, t1x) and max(t1y, t1x) <= M - 1 - w + (L + m)


def test_circles_sit_where_the_reference_puts_them(generated):
    for cfg, scene, s in all_samples(generated):
        marked, other = scene.marked, scene.marked if scene.connected else 1 - scene.marked
        assert scene.circles[0] == scene.paths[marked][0][:2]  # the tail of one path's first dash
        assert scene.circles[1] == scene.paths[other][-1][:2]  # the head of a path's last dash
        assert scene.circle_snake[:2] == [marked, other]
        for j, dashes in enumerate(scene.distractors):
            pivot = travel(cfg, scene, dashes)[0][0]
            assert scene.circles[2 + j] == pivot  # margin px behind the first dash
            assert scene.circle_snake[2 + j] == 2 + j
    cfg = pf.make_config(size=128, distractor_circle="tip")
    scene = pf.sample_scene(np.random.default_rng(1), cfg)
    assert [c for c in scene.circles[2:]] == [d[0][:2] for d in scene.distractors]


def test_fields_dtypes_and_labels(generated):
    for cfg, scene, s in all_samples(generated):
        M = cfg.size
        assert set(s) == {"inputs", "targets", "connected"}
        assert s["inputs"].dtype == np.uint8 and s["inputs"].shape == (M, M)
        assert s["targets"].dtype == np.uint8 and s["targets"].shape == (M, M)
        assert s["connected"].dtype == np.uint8 and s["connected"].shape == ()
        assert s["inputs"].max() == 255 and s["inputs"].min() == 0  # rescaled as the reference saves
        assert (s["inputs"][s["targets"] > 0] > 0).all()  # a labelled pixel is lit
        assert bool((s["targets"] == 2).any()) == bool(s["connected"])
        assert (s["targets"] == 1).any()
        faint = s["inputs"][s["targets"] > 0] < 32
        assert faint.mean() > 0.3  # the labels include the Lanczos halo


# -- the compiled growth loop


@pytest.mark.skipif(os.environ.get("LRBENCH_REQUIRE_EXT") != "1", reason="set LRBENCH_REQUIRE_EXT=1 (CI does)")
def test_compiled_module_is_built():
    assert pf._pathfinder_c is not None, "pip install -e . did not build lrbench.generators._pathfinder"


@pytest.mark.skipif(pf._pathfinder_c is None, reason="generators/_pathfinder.c is not built")
@pytest.mark.parametrize("M,indices", [(128, (0, 1, 2)), (256, (0,)), (512, (0,))])
def test_compiled_and_python_paths_give_the_same_bytes(M, indices, monkeypatch):
    task = lrbench.get_task("pathfinder-seg", size=M, distractor_circle="tip" if M == 256 else "pivot")
    for i in indices:
        fast = task.sample(i, split="val", seed=3)
        monkeypatch.setattr(pf, "_pathfinder_c", None)
        slow = task.sample(i, split="val", seed=3)
        monkeypatch.undo()
        for key in fast:
            assert fast[key].tobytes() == slow[key].tobytes(), (M, i, key)


@pytest.mark.skipif(pf._pathfinder_c is None, reason="generators/_pathfinder.c is not built")
def test_compiled_module_checks_its_buffers():
    proc = pf._Process(np.random.default_rng(0), pf.make_config(), 2)
    tables = proc.tab.for_c(128)
    with pytest.raises(ValueError, match="mask has the wrong size"):
        pf._pathfinder_c.distractor(tables, np.zeros(10, np.uint8), proc.occ.grown, 4, np.zeros(1000),
                                    np.zeros((4, 3), np.int64), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="23-tuple"):
        pf._pathfinder_c.distractor(tables[:5], proc.occ.mask, proc.occ.grown, 4, np.zeros(1000),
                                    np.zeros((4, 3), np.int64), np.zeros(2, np.int64))
    readonly = proc.occ.mask.copy()
    readonly.setflags(write=False)
    with pytest.raises((ValueError, BufferError, TypeError)):
        pf._pathfinder_c.distractor(tables, readonly, proc.occ.grown, 4, np.zeros(1000),
                                    np.zeros((4, 3), np.int64), np.zeros(2, np.int64))


# -- in distribution: against the reference's own images

REFERENCE_ROWS = json.loads((ROOT / "benchmarks" / "reference" / "pathfinder_seg_reference.json").read_text())
SHARED_STATS = ROOT.parent / "shared" / "reference" / "pathfinder_seg_paper_stats.json"
PAPER_STATS = json.loads(SHARED_STATS.read_text()) if SHARED_STATS.exists() else None


@pytest.fixture(scope="module")
def ours_like_reference():
    """As many of our images per size as the stored reference rows have (train split, seed 0)."""
    out = {}
    for M in pf.SIZES:
        n = REFERENCE_ROWS[str(M)]["n"]
        task = lrbench.get_task("pathfinder-seg", size=M)
        rows, placed = [], []
        for i in range(n):
            scene = pf.sample_scene(sample_rng(task.id, 0, "train", i), task.config)
            s = pf.render_scene(scene, task.config)
            rows.append(fidelity.image_stats(s["inputs"], s["targets"]))
            placed.append(len(scene.distractors))
        out[M] = {k: np.array([r[k] for r in rows]) for k in fidelity.STATS}
        out[M]["distractors_placed"] = np.array(placed, float)
    return out


@pytest.mark.parametrize("M", pf.SIZES)
def test_every_statistic_matches_the_reference_images(ours_like_reference, M):
    """Mann-Whitney U per statistic, ours against the reference generator's images; with ~18
    statistics a true difference shows as p < 0.001 (a changed rendering, halo in the labels,
    distractor rule or turn rule moves several by far more)."""
    ref = {k: np.asarray(v, float) for k, v in REFERENCE_ROWS[str(M)]["stats"].items()}
    ref["distractors_placed"] = np.asarray(REFERENCE_ROWS[str(M)]["distractors_placed"], float)
    for row in fidelity.compare(ref, ours_like_reference[M]):
        assert row["p"] > 0.001, row


@pytest.mark.skipif(PAPER_STATS is None, reason="../shared/reference is not beside this checkout")
@pytest.mark.parametrize("M", [128, 256])
def test_figures_match_the_shared_reference_statistics(ours_like_reference, M):
    """The shared figures (means over n reference images): each of ours within 4 standard errors
    of the difference, the reference's spread taken as ours (as it is under the null)."""
    ref, ours = PAPER_STATS["sizes"][str(M)], ours_like_reference[M]
    pairs = {"frac_bg": "frac_bg", "frac_lit": "frac_lit",
             "bright_blobs": "bright250_components_mean", "share_c2": "share_c2_in_connected",
             "distractors_placed": ("distractors_placed", "mean")}
    for mine, theirs in pairs.items():
        want = ref[theirs[0]][theirs[1]] if isinstance(theirs, tuple) else ref[theirs]
        x = ours[mine][np.isfinite(ours[mine])]
        se = x.std(ddof=1) * math.sqrt(1 / len(x) + 1 / ref["n"])
        assert abs(x.mean() - want) <= 4 * se + 1e-9, (mine, x.mean(), want, se)


def test_mann_whitney_detects_a_different_process(ours_like_reference):
    """The statistical test above can fail: the same statistics of a changed generator (labels
    without the faint halo; no distractor circles) are flagged."""
    cfg = pf.make_config(size=128)
    rows = []
    for i in range(REFERENCE_ROWS["128"]["n"]):
        scene = pf.sample_scene(np.random.default_rng([7, i]), cfg)
        scene.circles, scene.circle_snake = scene.circles[:2], scene.circle_snake[:2]
        s = pf.render_scene(scene, cfg)
        s["targets"][s["inputs"] < 32] = 0
        rows.append(fidelity.image_stats(s["inputs"], s["targets"]))
    changed = {k: np.array([r[k] for r in rows]) for k in fidelity.STATS}
    ref = {k: np.asarray(v, float) for k, v in REFERENCE_ROWS["128"]["stats"].items()}
    flagged = {r["stat"] for r in fidelity.compare(ref, changed) if r["p"] <= 0.001}
    assert {"label_below_32", "bright_blobs"} <= flagged


# -- determinism


def digest(s) -> str:
    h = hashlib.sha256()
    for key in ("inputs", "targets", "connected"):
        h.update(key.encode() + np.ascontiguousarray(s[key]).tobytes())
    return h.hexdigest()[:16]


GOLDEN = {  # lrbench.get_task("pathfinder-seg", size=M).sample(i, split="test", seed=0): digest, connected
    (128, 0): ("77dd33858ea57a5f", 0),
    (128, 1): ("dbd0b4a17c42fd28", 0),
    (128, 5): ("e187197372fa1a4d", 1),
    (256, 0): ("2e5fb32f01170793", 0),
    (512, 0): ("974944ed4e7b11bd", 0),
}


@pytest.mark.parametrize("M,i", sorted(GOLDEN))
def test_golden_samples(M, i):
    task = lrbench.get_task("pathfinder-seg", size=M)
    s = task.sample(i, split="test", seed=0)
    assert (digest(s), int(s["connected"])) == GOLDEN[(M, i)]
    assert digest(task.sample(i, split="test", seed=0)) == digest(s)  # same key, same bytes


def test_same_seed_same_bytes_other_seed_other_image():
    cfg = pf.make_config(size=128)
    a = pf.pathfinder_seg(np.random.default_rng(11), cfg)
    b = pf.pathfinder_seg(np.random.default_rng(11), cfg)
    c = pf.pathfinder_seg(np.random.default_rng(12), cfg)
    assert digest(a) == digest(b) != digest(c)


def test_render_of_the_scene_is_the_public_sample():
    cfg = pf.make_config(size=128)
    scene = pf.sample_scene(np.random.default_rng(5), cfg)
    direct = pf.pathfinder_seg(np.random.default_rng(5), cfg)
    via = pf.render_scene(scene, cfg)
    for key in direct:
        assert np.array_equal(direct[key], via[key])


# -- views


def test_picture_is_image_beside_colour_coded_mask(generated):
    cfg, _, s = generated[128][0]
    pic = pf.picture(s, cfg)
    M = cfg.size
    assert pic.dtype == np.uint8 and pic.shape == (M, 2 * M, 3)
    for c in range(3):
        assert np.array_equal(pic[:, :M, c], s["inputs"])
    right, lab = pic[:, M:].astype(int), s["targets"]
    bright = s["inputs"] >= 200
    for value in (1, 2):
        sel = (lab == value) & bright
        if sel.any():
            colour = right[sel].mean(axis=0)
            expected = pf.LABEL_COLOURS[value]
            assert np.abs(colour / colour.max() - expected / expected.max()).max() < 0.05
    assert (right[lab == 0].max(axis=1) <= 0.3 * 255 + 1).all()  # background dimmed
    assert lrbench.get_task("pathfinder-seg").spec.picture is pf.picture


def test_text_view(generated):
    cfg, _, s = generated[128][0]
    lines = pf.describe(s, cfg).splitlines()
    assert lines[0].startswith(f"pathfinder-seg 128x128  connected={int(s['connected'])}")
    art = lines[2:]
    assert len(art) == 64 and max(len(line) for line in art) <= 64
    body = "".join(art)
    assert ("2" in body) == bool(s["connected"]) and "1" in body
    assert lrbench.get_task("pathfinder-seg").spec.describe is pf.describe


# -- data card

CARDS = ROOT / "data_cards"


def test_data_card_matches_the_code():
    text = (CARDS / "pathfinder-seg.md").read_text(encoding="utf-8")
    meta = text.split("---")[1]
    assert "lrbench_task: pathfinder-seg" in meta and "lrbench_task_id: 13" in meta and "- pathfinder-seg" in meta
    heads = re.findall(r"^## (.+)$", text, flags=re.M)
    assert heads == ["Summary", "Definition", "Fields", "Splits and sizes", "Parameters", "How it is generated",
                     "Statistics", "Differences from the paper's code", "Intended use", "Limitations", "Citation"]
    params = text.split("## Parameters")[1].split("## How it is generated")[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", params, flags=re.M)
    table = {name: [c.strip() for c in cols] for name, *cols in rows}
    assert set(table) == {f.name for f in pf.dataclasses.fields(pf.PathfinderConfig)}
    for name, cols in table.items():
        for M, col in zip(pf.SIZES, cols):
            want = getattr(pf.PRESETS[M], name)
            if name == "margins":
                assert tuple(float(v) for v in col.split(",")) == tuple(map(float, want)), (name, M)
            elif isinstance(want, str):
                assert col == want, (name, M)
            else:
                assert float(col) == float(want), (name, M)
    # the worked example is real
    s = lrbench.get_task("pathfinder-seg", size=128).sample(5, split="test", seed=0)
    counts = np.bincount(s["targets"].ravel(), minlength=3)
    assert f"labelled 2 ({counts[2]} pixels" in text and f"labelled 1 ({counts[1]} pixels" in text
    assert int(s["connected"]) == 1


@pytest.mark.parametrize("M", pf.SIZES)
def test_example_pictures_are_test_sample_5(M):
    path = CARDS / f"pathfinder-seg-{M}.png"
    assert path.stat().st_size < 250_000
    task = lrbench.get_task("pathfinder-seg", size=M)
    expected = pf.picture(task.sample(5, split="test", seed=0), task.config)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), expected)


def test_no_start_is_the_reference_dilation_seeing_minus_infinity():
    """OpenCV's dilation gives -inf at a pixel whose kernel pixels all fall outside the image, and
    the reference then sees no start anywhere. Brute force over a small image, every kernel of the
    LRA 32 preset's pen (thin, short dashes: most kernels miss a quadrant) and of the 128 preset."""
    for cfg, margin in ((pf.make_lra_config(size=32), 1), (pf.make_config(size=128), 2)):
        pen = pf.Pen(cfg.paddle_length, cfg.paddle_thickness, margin, cfg.antialias_scale)
        M = 24
        seen = set()
        for degree in range(-180, 180):
            dy, dx = pf.start_footprint(pen, degree)
            ys, xs = np.mgrid[0:M, 0:M]
            Y, X = ys[..., None] + dy, xs[..., None] + dx  # (M, M, F)
            inside = ((Y >= 0) & (Y < M) & (X >= 0) & (X < M)).any(axis=-1) if len(dy) else np.zeros((M, M), bool)
            assert pf.no_start((dy, dx)) == (not inside.all()), degree
            seen.add(pf.no_start((dy, dx)))
        assert seen == {True, False}
