"""Pathfinder-Segmentation (SPEC §4.3) checked on generated images.

Labels are checked against the pixels with scipy's connected components (one chain of
`contour_length` dashes per main path, circles as bright blobs), and against the scene geometry
with distances computed here by dense sampling, independently of the generator's own routines.
"""

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import lrbench
from lrbench.generators import pathfinder as pf

SPEC_PRESETS = {  # SPEC §4.3, field by field
    128: dict(contour_length=14, paddle_length=5, paddle_thickness=1.5, margins=(2, 3), seed_distance=22,
              marker_radius=2.1, continuity=1.8, distractor_length=4, num_distractors=16, intensity=0.9),
    256: dict(contour_length=16, paddle_length=8, paddle_thickness=2, margins=(4,), seed_distance=27,
              marker_radius=4.2, continuity=2.2, distractor_length=5, num_distractors=16, intensity=1.0),
    512: dict(contour_length=12, paddle_length=22, paddle_thickness=6, margins=(7,), seed_distance=40,
              marker_radius=9, continuity=2.5, distractor_length=4, num_distractors=18, intensity=1.0),
}
BATCH = {128: 16, 256: 6, 512: 3}  # images per size for the structural checks
EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity


def disc(r: float) -> np.ndarray:
    k = math.floor(r)
    y, x = np.mgrid[-k:k + 1, -k:k + 1]
    return x * x + y * y <= r * r


@pytest.fixture(scope="module")
def generated():
    """size -> [(cfg, scene, sample)]; scene geometry and its rendering from the same generator."""
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


# -- configuration


def test_presets_are_the_spec_table():
    for M, fields in SPEC_PRESETS.items():
        cfg = pf.make_config(size=M)
        assert cfg.size == M and pf.PRESETS[M] == cfg
        for name, value in fields.items():
            assert getattr(cfg, name) == value, (M, name)
    assert pf.PathfinderConfig() == pf.make_config() == pf.PRESETS[128]


def test_overrides_start_from_the_preset_of_size():
    cfg = pf.make_config(size=256, margins=[3], num_distractors=4)
    assert cfg.margins == (3,) and cfg.num_distractors == 4 and cfg.paddle_length == 8
    # canonical types: equal values give equal configs and equal JSON
    assert pf.make_config(size=256, paddle_thickness=2, marker_radius=4.2) == pf.PRESETS[256]
    assert isinstance(pf.make_config(paddle_thickness=2).paddle_thickness, float)
    task = lrbench.get_task("pathfinder-seg", size=512, continuity=2)
    assert task.config.continuity == 2.0 and task.config.paddle_length == 22


@pytest.mark.parametrize("params,message", [
    ({"size": 300}, r"size must be one of 128, 256, 512 \(got 300\)"),
    ({"size": "128"}, r"size must be one of 128, 256, 512"),
    ({"contour_length": 1}, r"contour_length must be an integer in \[2, 200\] \(got 1\)"),
    ({"contour_length": True}, r"contour_length must be an integer"),
    ({"paddle_length": 0}, r"paddle_length must be an integer in \[1, 32\]"),
    ({"paddle_length": 5.5}, r"paddle_length must be an integer"),
    ({"paddle_thickness": 0}, r"paddle_thickness must be a number in \(0, 8\]"),
    ({"margins": ()}, r"margins must be a non-empty tuple of integers in \[1, 8\]"),
    ({"margins": (2, 0)}, r"margins must be a non-empty tuple"),
    ({"margins": 3}, r"margins must be a non-empty tuple"),
    ({"seed_distance": 32}, r"seed_distance must be a number in \[1, 32\)"),
    ({"marker_radius": 0.2}, r"marker_radius must be a number in \[0.5, 16\]"),
    ({"continuity": 0.9}, r"continuity must be a number in \[1, 100\]"),
    ({"distractor_length": 0}, r"distractor_length must be an integer in \[1, 200\]"),
    ({"num_distractors": -1}, r"num_distractors must be an integer in \[0, 1000\]"),
    ({"intensity": 0}, r"intensity must be a number in \(0, 1\]"),
    ({"intensity": 1.5}, r"intensity must be a number in \(0, 1\]"),
    ({"intensity": float("nan")}, r"intensity must be a number"),
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
    monkeypatch.setattr(pf, "MAX_ATTEMPTS", 2)
    cfg = pf.make_config(size=128, contour_length=200)  # a 200-dash path cannot fit in 128 x 128
    with pytest.raises(RuntimeError, match="could not fit two main paths of 200 dashes"):
        pf.pathfinder_seg(np.random.default_rng(0), cfg)


# -- the sample


def test_fields_dtypes_and_shapes(generated):
    for cfg, _, s in all_samples(generated):
        M = cfg.size
        assert set(s) == {"inputs", "targets", "connected"}
        assert s["inputs"].dtype == np.uint8 and s["inputs"].shape == (M, M)
        assert s["targets"].dtype == np.uint8 and s["targets"].shape == (M, M)
        assert s["connected"].dtype == np.uint8 and s["connected"].shape == () and int(s["connected"]) in (0, 1)
        assert set(np.unique(s["targets"])) <= {0, 1, 2}
        assert s["inputs"].max() == 255  # circles are full white


def test_every_labelled_pixel_is_lit(generated):
    for _, _, s in all_samples(generated):
        assert (s["inputs"][s["targets"] > 0] > 0).all()


def test_class_2_appears_iff_connected(generated):
    seen = set()
    for _, scene, s in all_samples(generated):
        has2 = bool((s["targets"] == 2).any())
        assert has2 == bool(s["connected"]) == bool(scene.connected)
        assert (s["targets"] == 1).any()  # the other main path, or both
        seen.add(int(s["connected"]))
    assert seen == {0, 1}


def core_components(mask, image, peak):
    """8-connected components of the bright core of the strokes under `mask`."""
    return ndimage.label(mask & (image >= peak / 2), structure=EIGHT)[1]


def stroke_peak(cfg) -> float:
    """Brightest value of a lone dash: anti-aliasing (tent of half-width 1.5 px) dims thin strokes."""
    def box(h):  # centre of a box of half-width h under the tent
        z = min(h / pf.AA, 1.0)
        return 2 * (0.5 + z - 0.5 * z * z) - 1
    return 255 * cfg.intensity * box(cfg.paddle_length / 2) * box(cfg.paddle_thickness / 2)


def test_each_main_path_is_one_chain_of_contour_length_dashes(generated):
    for cfg, _, s in all_samples(generated):
        img, lab, n = s["inputs"], s["targets"], cfg.contour_length
        peak, grow = stroke_peak(cfg), disc(max(cfg.margins))
        if s["connected"]:
            for value in (1, 2):
                mask = lab == value
                assert core_components(mask, img, peak) == n  # n separate dashes ...
                assert ndimage.label(ndimage.binary_dilation(mask, grow), structure=EIGHT)[1] == 1  # ... in one chain
        else:
            mask = lab == 1
            assert core_components(mask, img, peak) == 2 * n
            assert ndimage.label(ndimage.binary_dilation(mask, grow), structure=EIGHT)[1] in (1, 2)


def bright_blobs(s):
    """Circles as pixels: components of >= 240 (dashes stay below at 128 and 256, circles reach 254+)."""
    labels, count = ndimage.label(s["inputs"] >= 240, structure=EIGHT)
    return [labels == i for i in range(1, count + 1)]


@pytest.mark.parametrize("M", [128, 256])
def test_circles_from_pixels(generated, M):
    """Circles counted and located from the image alone: connected -> both on the label-2 path;
    not connected -> two on label-1 paths; every other circle starts a distractor."""
    for cfg, _, s in generated[M]:
        assert stroke_peak(cfg) < 235
        blobs = bright_blobs(s)
        assert len(blobs) == cfg.num_distractors + 2  # two circles on the main paths either way
        on = [set(np.unique(s["targets"][b])) - {0} for b in blobs]
        on_main = [o for o in on if o]
        if s["connected"]:
            assert on_main == [{2}, {2}]
        else:
            assert on_main == [{1}, {1}]
        assert len(on) - len(on_main) == cfg.num_distractors


def test_circles_sit_at_the_right_path_ends(generated):
    for cfg, scene, s in all_samples(generated):
        starts = [p[0, :2] for p in scene.paths]
        ends = [p[-1, 2:] for p in scene.paths]
        main = [tuple(c) for c, o in zip(scene.circles, scene.circle_snake) if o < 2]
        if scene.connected:
            k = scene.marked
            assert sorted(main) == sorted([tuple(starts[k]), tuple(ends[k])])
            assert (s["targets"][s["targets"] > 0] == 2).sum() > 0
        else:  # one circle on each path: the start of one, the end of the other
            k = scene.marked
            assert sorted(main) == sorted([tuple(starts[k]), tuple(ends[1 - k])])
        # each distractor has exactly one circle, at its start
        dis = {o: c for c, o in zip(scene.circles, scene.circle_snake) if o >= 2}
        assert sorted(dis) == list(range(2, 2 + cfg.num_distractors))
        for j, d in enumerate(scene.distractors):
            assert np.array_equal(dis[2 + j], d[0, :2])
        # and every circle is drawn: full white within R - 1.5 px (anti-aliasing) of its centre
        for cx, cy in scene.circles:
            yy, xx = np.mgrid[0:cfg.size, 0:cfg.size]
            inner = (xx - cx) ** 2 + (yy - cy) ** 2 <= max(cfg.marker_radius - pf.AA - 0.2, 0.5) ** 2
            if inner.any():
                assert s["inputs"][inner].min() >= 250


def test_distractor_count_and_lengths(generated):
    for cfg, scene, s in all_samples(generated):
        assert len(scene.paths) == 2 and all(len(p) == cfg.contour_length for p in scene.paths)
        assert len(scene.distractors) == cfg.num_distractors
        assert all(len(d) == cfg.distractor_length for d in scene.distractors)


def test_path_geometry(generated):
    """Dash length, the pivot rule (m px past a dash's end, m px before the next one), turns at most
    90°/continuity, and the two starts seed_distance apart, the first away from the border."""
    for cfg, scene, _ in all_samples(generated):
        m, L, sd = scene.margin, cfg.paddle_length, cfg.seed_distance
        assert m in cfg.margins
        for snake in scene.paths + scene.distractors:
            a, b = snake[:, :2], snake[:, 2:]
            np.testing.assert_allclose(np.linalg.norm(b - a, axis=1), L, rtol=1e-9)
            u = (b - a) / L
            np.testing.assert_allclose(a[1:], b[:-1] + m * u[:-1] + m * u[1:], atol=1e-9)
            turn = np.degrees(np.arccos(np.clip((u[1:] * u[:-1]).sum(axis=1), -1, 1)))
            assert (turn < 90 / cfg.continuity + 1e-6).all()
        p0, p1 = scene.paths[0][0, :2], scene.paths[1][0, :2]
        assert abs(np.linalg.norm(p1 - p0) - sd) < 1e-9
        assert (p0 >= 2 * sd).all() and (p0 <= cfg.size - 1 - 2 * sd).all()


def segment_distances(P, Q):
    """Exact distances between segments P[i] and Q[j] (rows ax, ay, bx, by): [len(P), len(Q)]."""
    def point_to(p, a, b):  # p: (..., 2), a, b: (..., 2)
        d = b - a
        t = np.clip(((p - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0, 1)
        return np.linalg.norm(a + t[..., None] * d - p, axis=-1)

    a, b = P[:, None, :2], P[:, None, 2:]
    c, d = Q[None, :, :2], Q[None, :, 2:]
    a, b, c, d = np.broadcast_arrays(a, b, c, d)
    dist = np.minimum(np.minimum(point_to(a, c, d), point_to(b, c, d)), np.minimum(point_to(c, a, b), point_to(d, a, b)))

    def cross(o, p, q):
        return (p[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (p[..., 1] - o[..., 1]) * (q[..., 0] - o[..., 0])

    crossing = (cross(a, b, c) * cross(a, b, d) < 0) & (cross(c, d, a) * cross(c, d, b) < 0)
    return np.where(crossing, 0.0, dist)


def test_no_collisions_beyond_the_margin_rule(generated):
    """Shapes of objects that are not neighbours on one snake stay >= clearance - 1.1 px apart, and
    every shape lies inside the image."""
    for cfg, scene, _ in all_samples(generated):
        rho, R = cfg.paddle_thickness / 2, cfg.marker_radius
        segs, radius, snake, index = [], [], [], []
        for s, dashes in enumerate(scene.paths + scene.distractors):
            for k, d in enumerate(dashes):
                segs.append(d), radius.append(rho), snake.append(s), index.append(k)
        for (cx, cy), s in zip(scene.circles, scene.circle_snake):
            dashes = (scene.paths + scene.distractors)[s]
            segs.append((cx, cy, cx, cy)), radius.append(R), snake.append(s)
            index.append(0 if np.allclose([cx, cy], dashes[0, :2]) else len(dashes) - 1)
        segs, radius, snake, index = map(np.array, (segs, radius, snake, index))
        lo = np.minimum(segs[:, :2], segs[:, 2:]) - radius[:, None]
        hi = np.maximum(segs[:, :2], segs[:, 2:]) + radius[:, None]
        assert (lo >= 0).all() and (hi <= cfg.size - 1).all()
        gap = segment_distances(segs, segs) - radius[:, None] - radius[None, :]
        neighbours = (snake[:, None] == snake[None, :]) & (np.abs(index[:, None] - index[None, :]) <= 1)
        need = 2 * scene.margin - 1 - 1.1  # clearance(m) = 2m - 1, to within 1.1 px (nearest-pixel checks)
        assert gap[~neighbours].min() >= need, gap[~neighbours].min()
        assert pf.clearance(scene.margin) == 2 * scene.margin - 1


def test_labels_are_the_pixels_each_main_path_touches(generated):
    """Every pixel inside a dash of a main path carries its label; no label lies more than the
    anti-aliasing reach (1.5 px, corners 2.2 px) from that path's dashes."""
    for cfg, scene, s in list(generated[128])[:6] + list(generated[256])[:2] + list(generated[512])[:1]:
        M, rho = cfg.size, cfg.paddle_thickness / 2
        yy, xx = np.mgrid[0:M, 0:M]
        pix = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(float)
        for k, path in enumerate(scene.paths):
            value = 2 if scene.connected and k == scene.marked else 1
            lab = s["targets"].ravel()
            dist = np.full(M * M, np.inf)
            inside = np.zeros(M * M, dtype=bool)
            for ax, ay, bx, by in path:
                u = np.array([bx - ax, by - ay]) / cfg.paddle_length
                rel = pix - [ax, ay]
                along, across = rel @ u, rel @ [-u[1], u[0]]
                out_a = np.maximum(np.maximum(-along, along - cfg.paddle_length), 0)
                out_c = np.maximum(np.abs(across) - rho, 0)
                dist = np.minimum(dist, np.hypot(out_a, out_c))
                inside |= (out_a == 0) & (out_c == 0)
            assert (lab[inside] == value).all()
            mine = dist < 1.5 * math.sqrt(2) + 1e-9
            others = lab[~mine]
            # pixels far from this path may only carry the other path's label
            other_value = 1 if value == 2 else (2 if scene.connected else 1)
            assert set(np.unique(others)) <= {0, other_value}


def test_render_of_the_scene_is_the_public_sample():
    cfg = pf.make_config(size=128)
    scene = pf.sample_scene(np.random.default_rng(5), cfg)
    direct = pf.pathfinder_seg(np.random.default_rng(5), cfg)
    via = pf.render_scene(scene, cfg)
    for key in direct:
        assert np.array_equal(direct[key], via[key])


# -- determinism


def digest(s) -> str:
    h = hashlib.sha256()
    for key in ("inputs", "targets", "connected"):
        h.update(key.encode() + np.ascontiguousarray(s[key]).tobytes())
    return h.hexdigest()[:16]


GOLDEN = {  # lrbench.get_task("pathfinder-seg", size=M).sample(i, split="test", seed=0): digest, connected
    (128, 0): ("f26ad6dda0ca9a33", 0),
    (128, 1): ("2f9d5a6848d793cb", 0),
    (128, 5): ("21a65bfd110c7c07", 1),
    (256, 0): ("e4d293d26f34d791", 0),
    (512, 0): ("9390f4ec65f1bdd3", 0),
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


# -- statistics against the reference generator's figures (SPEC §4.3)

REFERENCE = {128: (0.94, 0.21), 256: (0.97, 0.10), 512: (0.98, 0.09)}  # background share, nonzero image share


def test_class_balance_near_the_reference(generated):
    """Measured on this small batch. Tolerances: background within 1 point of the reference, nonzero
    pixels within 20 % of it. The reference figures are whole percents from a few images (their
    labels also caught the Lanczos ringing of the original's resize), so they are good to about half
    a point and 10 %; ours barely vary per image (standard deviation below 0.1 point for both over
    200 images, benchmarks/pathfinder_stats.py), so a batch of 3 already gives the mean. A changed
    anti-aliasing reach or number of objects moves them further (measured at 128: anti-aliasing
    reach 0.6 px instead of 1.5: background +2.8 points, nonzero pixels -48 %; 12 distractors
    instead of 16: nonzero pixels -18 %)."""
    for M, (bg_ref, lit_ref) in REFERENCE.items():
        samples = [s for _, _, s in generated[M]]
        bg = np.mean([(s["targets"] == 0).mean() for s in samples])
        lit = np.mean([(s["inputs"] > 0).mean() for s in samples])
        assert abs(bg - bg_ref) <= 0.01, (M, bg)
        assert abs(lit - lit_ref) <= 0.2 * lit_ref, (M, lit)
        share2 = [(s["targets"] == 2).sum() / (s["targets"] > 0).sum() for s in samples if s["connected"]]
        if share2:  # the two main paths have the same number of dashes: about half each
            assert 0.4 <= np.mean(share2) <= 0.6, (M, share2)


# -- picture


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
    spec_picture = lrbench.get_task("pathfinder-seg").spec.picture
    assert spec_picture is pf.picture


def test_text_view(generated):
    cfg, _, s = generated[128][0]
    text = pf.describe(s, cfg)
    lines = text.splitlines()
    assert lines[0].startswith(f"pathfinder-seg 128x128  connected={int(s['connected'])}")
    art = lines[2:]
    assert len(art) == 64 and max(len(line) for line in art) <= 64
    body = "".join(art)
    assert ("2" in body) == bool(s["connected"]) and "1" in body
    assert lrbench.get_task("pathfinder-seg").spec.describe is pf.describe


# -- data card

CARDS = Path(__file__).resolve().parents[1] / "data_cards"


def test_data_card_matches_the_code():
    text = (CARDS / "pathfinder-seg.md").read_text(encoding="utf-8")
    meta = text.split("---")[1]
    assert "lrbench_task: pathfinder-seg" in meta and "lrbench_task_id: 13" in meta and "- pathfinder-seg" in meta
    heads = re.findall(r"^## (.+)$", text, flags=re.M)
    assert heads == ["Summary", "Definition", "Fields", "Splits and sizes", "Parameters", "How it is generated",
                     "Statistics", "Intended use", "Limitations", "Citation"]
    # the Parameters table: every preset value as in the code
    params = text.split("## Parameters")[1].split("## How it is generated")[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", params, flags=re.M)
    table = {name: cols for name, *cols in rows}
    assert set(table) == {f.name for f in pf.dataclasses.fields(pf.PathfinderConfig)}
    for name, cols in table.items():
        for M, col in zip(pf.SIZES, cols):
            want = getattr(pf.PRESETS[M], name)
            got = tuple(float(v) for v in col.split(",")) if name == "margins" else float(col)
            assert got == (tuple(map(float, want)) if name == "margins" else float(want)), (name, M)
    # the worked example is real
    s = lrbench.get_task("pathfinder-seg", size=128).sample(5, split="test", seed=0)
    counts = np.bincount(s["targets"].ravel(), minlength=3)
    assert int(s["connected"]) == 1
    assert f"labelled 2 ({counts[2]} pixels" in text and f"labelled 1 ({counts[1]} pixels" in text
    assert f"({100 * counts[0] / counts.sum():.1f} %)" in text and f"{100 * (s['inputs'] > 0).mean():.1f} % of the pixels" in text


@pytest.mark.parametrize("M", pf.SIZES)
def test_example_pictures_are_test_sample_5(M):
    path = CARDS / f"pathfinder-seg-{M}.png"
    assert path.stat().st_size < 200_000
    task = lrbench.get_task("pathfinder-seg", size=M)
    expected = pf.picture(task.sample(5, split="test", seed=0), task.config)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), expected)
