"""Long Range Arena's synthetic tasks (SPEC §4.4): Pathfinder / Path-X from the original snakes2
process with LRA's settings, and ListOps with LRA's settings and the whole expression's value.

Settings are checked against LRA's data docstrings written out here; the 8-bit rendering against
a whole-canvas drawing done the reference's way (scipy.misc.imresize = a byte-scaled image shrunk
by Pillow in 8 bits); ListOps' root value against an independent evaluation of the tokens.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lrbench import fidelity
from lrbench.generators import listops as lo
from lrbench.generators import pathfinder as pf

# LRA's lra_benchmarks/data/pathfinder.py docstrings (and the snakes2 wrapper's defaults they keep)
LRA_DOCSTRINGS = {
    32: dict(margins=(1,), padding=1, paddle_length=2, marker_radius=1.5, paddle_thickness=0.5, antialias_scale=2,
             seed_distance=7, continuity=1.0, budget=20, snake_contrast=2.0, paddle_contrast=0.75),
    64: dict(margins=(1,), padding=1, paddle_length=5, marker_radius=2.5, paddle_thickness=1.0, antialias_scale=2,
             seed_distance=12, continuity=1.8, budget=22, snake_contrast=0.8, paddle_contrast=1.0),
    128: dict(margins=(2, 3), padding=1, paddle_length=5, marker_radius=3.0, paddle_thickness=1.5, antialias_scale=2,
              seed_distance=20, continuity=1.8, budget=35, snake_contrast=0.9, paddle_contrast=1.0),
    256: dict(margins=(3,), padding=22, paddle_length=5, marker_radius=5.0, paddle_thickness=2.0, antialias_scale=2,
              seed_distance=27, continuity=1.8, budget=30, snake_contrast=1.0, paddle_contrast=1.0),
}


@pytest.mark.parametrize("M", pf.LRA_SIZES)
@pytest.mark.parametrize("difficulty,length", [("easy", 6), ("intermediate", 9), ("hard", 14)])
def test_presets_are_lra_settings(M, difficulty, length):
    cfg = pf.make_lra_config(size=M, difficulty=difficulty)
    want = dict(LRA_DOCSTRINGS[M])
    budget = want.pop("budget")
    for name, value in want.items():
        assert getattr(cfg, name) == value, (M, name)
    assert cfg.contour_length == length and cfg.distractor_length == length // 3
    assert cfg.num_distractors == budget // (length // 3)
    assert pf.LRAPathfinderConfig() == pf.make_lra_config()  # the defaults: 32, hard


def test_lra_config_errors_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"size must be one of 32, 64, 128, 256 \(got 512\)"):
        pf.make_lra_config(size=512)
    with pytest.raises(ValueError, match=r"difficulty must be one of easy, intermediate, hard \(got 'medium'\)"):
        pf.make_lra_config(difficulty="medium")
    with pytest.raises(ValueError, match=r"padding must be an integer in \[1, 8\)"):
        pf.make_lra_config(size=32, padding=8)
    with pytest.raises(ValueError, match=r"snake_contrast must be a number in \(0, 4\]"):
        pf.make_lra_config(snake_contrast=0)
    with pytest.raises(ValueError, match="unknown parameter.*colour"):
        pf.make_lra_config(colour=1)


def imresize_dash(pen, angle, contrast):
    """The original snakes2's dash: a white line on a canvas aa times finer, byte-scaled (0/255)
    and shrunk by Pillow in 8 bits, /255, times the contrast, placed through a float32 image."""
    K, aa = pen.half, pen.aa
    c = K * aa
    hy, hx = math.ceil(c + pen.length * aa * math.sin(angle)), math.ceil(c + pen.length * aa * math.cos(angle))
    fine = Image.new("L", (2 * c + 1, 2 * c + 1), 0)
    ImageDraw.Draw(fine).line([(c, c), (hx, hy)], fill=255, width=int(round(pen.thickness * aa)))
    small = np.asarray(fine.resize((2 * K + 1, 2 * K + 1), Image.Resampling.LANCZOS)).astype(np.float64) / 255
    return (small * contrast if contrast != 1 else small).astype(np.float32)


@pytest.mark.parametrize("M", pf.LRA_SIZES)
def test_dashes_are_shrunk_in_8_bits_as_the_original_does(M):
    cfg = pf.make_lra_config(size=M)
    pen = pf._pen(cfg, cfg.margins[0])
    assert pen.quantized
    for degree in range(-180, 180, 29):
        angle = degree * math.pi / 180
        ours = (pf.dash_shape(pen, angle).line.astype(np.float64) / 255 * cfg.snake_contrast).astype(np.float32)
        assert np.array_equal(ours, imresize_dash(pen, angle, cfg.snake_contrast)), degree
        assert ours.min() >= 0  # 8 bits: no negative lobes


@pytest.mark.parametrize("M", [32, 128])
def test_circles_are_shrunk_in_8_bits_as_the_original_does(M):
    cfg = pf.make_lra_config(size=M)
    for y, x in [(M // 2, M // 3), (0, 0), (1, M - 1)]:
        canvas = np.zeros((M, M))
        pf._draw_circle(canvas, y, x, cfg)
        ys, xs = np.ogrid[-y * 2:(M - y) * 2, -x * 2:(M - x) * 2]
        fine = Image.fromarray(np.where(xs * xs + ys * ys <= (cfg.marker_radius * 2) ** 2, 255, 0).astype(np.uint8))
        ref = np.asarray(fine.resize((M, M), Image.Resampling.LANCZOS)).astype(np.float64) / 255
        assert np.array_equal(canvas, ref), (y, x)


def bytescale(a):
    """scipy.misc.bytescale as the original's imsave applies it."""
    lo, hi = a.min(), a.max()
    return ((a - lo) * (255.0 / (hi - lo)) + 0.5).clip(0, 255.5).astype(np.uint8)


@pytest.mark.parametrize("M", pf.LRA_SIZES)
def test_lra_pathfinder_sample(M):
    cfg = pf.make_lra_config(size=M)
    seen = set()
    for i in range(4):
        s = pf.lra_pathfinder(np.random.default_rng([M, i]), cfg)
        assert set(s) == {"inputs", "targets"}
        assert s["inputs"].dtype == np.uint8 and s["inputs"].shape == (M, M)
        assert s["targets"].dtype == np.uint8 and s["targets"].shape == () and int(s["targets"]) in (0, 1)
        assert s["inputs"].min() == 0 and s["inputs"].max() == 255  # byte-scaled per image
        scene = pf.sample_scene(np.random.default_rng([M, i]), cfg)
        assert int(s["targets"]) == scene.connected
        assert len(scene.circles) == 2  # distractors carry no circle in the original
        assert len(scene.distractors) <= cfg.num_distractors
        image, _, to_uint8 = pf._draw(scene, cfg)
        assert np.array_equal(to_uint8(image).astype(np.uint8), bytescale(image))
        seen.add(int(s["targets"]))
    assert len(pf.lra_pathfinder(np.random.default_rng(5), cfg)["inputs"]) == M


def test_lra_32_places_few_distractors_as_the_original_does():
    """At 32 most of the original's start kernels miss a quadrant, so OpenCV's dilation leaves no
    start (pf.no_start): it places about one distractor of five (1.07 over 200 reference images)."""
    cfg = pf.make_lra_config(size=32)
    placed = [len(pf.sample_scene(np.random.default_rng([32, i]), cfg).distractors) for i in range(60)]
    assert 0.6 <= np.mean(placed) <= 1.6


def evaluate_tokens(tokens: np.ndarray) -> int:
    """The value of a ListOps token sequence, by a stack (independent of the generator)."""
    names = lo.TOKEN_NAMES
    stack = []
    for t in tokens.tolist():
        name = names[t]
        if name.startswith("["):
            stack.append([name, []])
        elif name == "]":
            op, args = stack.pop()
            args = sorted(args)
            value = {"[MIN": args[0], "[MAX": args[-1], "[SM": sum(args) % 10,
                     "[MED": (args[(len(args) - 1) // 2] + args[len(args) // 2]) // 2}[op]
            if not stack:
                return value
            stack[-1][1].append(value)
        else:
            stack[-1][1].append(int(name))
    raise AssertionError("unbalanced")


def test_lra_listops_is_the_value_of_the_whole_expression():
    cfg = lo.LRAListOpsConfig()
    assert (cfg.max_depth, cfg.max_args, cfg.min_length, cfg.max_length) == (10, 10, 501, 1999)
    labels = []
    for i in range(20):
        s = lo.listops(np.random.default_rng(i), cfg)
        assert set(s) == {"inputs", "targets"} and s["targets"].dtype == np.uint8 and s["targets"].shape == ()
        assert 501 <= len(s["inputs"]) <= 1999
        assert int(s["targets"]) == evaluate_tokens(s["inputs"])
        labels.append(int(s["targets"]))
    assert len(set(labels)) > 3


REFERENCE = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "reference"
                        / "lra_pathfinder_reference.json").read_text())


@pytest.mark.parametrize("M", [32, 128])
def test_every_statistic_matches_the_original_generator(M):
    """Ours against the stored rows of the generator LRA used (Mann-Whitney U, p > 0.001 for each of
    13 statistics): images, labels, distractors placed and turns between dashes."""
    cfg = pf.make_lra_config(size=M)
    rows, placed, labels, main_turns, other_turns = [], [], [], [], []
    for i in range(REFERENCE[str(M)]["n"]):
        scene = pf.sample_scene(np.random.default_rng([77, M, i]), cfg)
        image, _, to_uint8 = pf._draw(scene, cfg)
        rows.append(fidelity.image_only_stats(to_uint8(image).astype(np.uint8)))
        placed.append(len(scene.distractors))
        labels.append(scene.connected)
        main_turns += [t for p in scene.paths for t in turns(p)]
        other_turns += [t for d in scene.distractors for t in turns(d)]
    ours = {k: np.array([r[k] for r in rows]) for k in fidelity.IMAGE_STATS}
    ours.update(label=np.array(labels, float), distractors_placed=np.array(placed, float),
                main_turn_deg=np.array(main_turns), distractor_turn_deg=np.array(other_turns))
    ours = {k: np.round(v, 6) for k, v in ours.items()}  # the stored rows' precision: ties stay ties
    ref = {k: np.asarray(v, float) for k, v in REFERENCE[str(M)]["stats"].items()}
    assert set(ref) == set(ours)
    for row in fidelity.compare(ref, ours):
        assert row["p"] > 0.001, row


def turns(dashes):
    """|turn| (degrees) between consecutive dashes, from the scene (independent of the benchmark)."""
    dirs = [dashes[0][2]] + [a + math.pi if a < 0 else a - math.pi for _, _, a in dashes[1:]]
    return [math.degrees(min(abs(b - a) % (2 * math.pi), 2 * math.pi - abs(b - a) % (2 * math.pi)))
            for a, b in zip(dirs, dirs[1:])]


def test_lra_views_say_the_label_and_the_values():
    """The text views: an LRA ListOps sample's values at every ']' (computed from its tokens) agree
    with what ListOps-Subtrees stores for the same tree, and each view states the stored label."""
    for i in range(5):
        sub = lo.listops_subtrees(np.random.default_rng([3, i]),
                                  lo.ListOpsConfig(max_depth=8, min_length=100, max_length=400))
        assert lo.subexpression_values(sub["inputs"]).tolist() == sub["targets"].astype(int).tolist()
    cfg = lo.LRAListOpsConfig()
    s = lo.listops(np.random.default_rng(11), cfg)
    text = lo.describe_lra(s, cfg)
    assert text.startswith(f"ListOps (LRA) sample: {len(s['inputs']):,} tokens")
    assert f"value of the whole expression: {int(s['targets'])}" in text
    pcfg = pf.make_lra_config(size=32)
    for i in range(6):
        p = pf.lra_pathfinder(np.random.default_rng([5, i]), pcfg)
        text = pf.describe_lra(p, pcfg)
        assert f"label={int(p['targets'])}" in text.splitlines()[0]
        rows = text.split("\n")[2:]
        assert len(rows) == 32 and sum(c != " " for r in rows for c in r) == int((p["inputs"] > 0).sum())
        pic = pf.picture_lra(p)
        assert pic.shape == (256, 256, 3) and (pic[::8, ::8, 0] == p["inputs"]).all()


# ---------------------------------------------------------------------------------------------
# the registered tasks: pathfinder (id 14) and listops (id 15)

import hashlib  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import lrbench  # noqa: E402
from lrbench import metrics as M  # noqa: E402
from lrbench.presets import get_preset  # noqa: E402

GOLDEN = {  # sha256 of inputs | targets bytes of get_task(name, **params).sample(index, "test", seed=0)
    ("pathfinder", 32, 0): "82e6572e777cbbdf0cf34b58998e0fb903a33523d19e455d912fdc3d460991b1",
    ("pathfinder", 128, 3): "36abb8434d82c08d905c42ee36e7eb5e651e0ad91baca13745d8147519885e3d",
    ("listops", None, 0): "878df4ce50ab56b963f15d082311260cd8b4c016162ae2fa0b018befb8fa3c9f",
    ("listops", None, 7): "4548ab1c79c8a6de650686a8b929d2ef10950bf3590338f9b524e82fcb7f7385",
}


@pytest.mark.parametrize("key", list(GOLDEN))
def test_golden_samples(key):
    name, size, index = key
    s = lrbench.get_task(name, **({"size": size} if size else {})).sample(index, split="test", seed=0)
    assert hashlib.sha256(s["inputs"].tobytes() + s["targets"].tobytes()).hexdigest() == GOLDEN[key]


def test_registered_facts_are_lras():
    """What a model and the tools learn from the registry: LRA's sizes, splits and classes."""
    path_x = lrbench.get_task("pathfinder", size=128)
    assert (path_x.kind, path_x.metric, path_x.view, path_x.d_input, path_x.d_output) == \
        ("classification", "accuracy", "image", 1, 2)
    assert path_x.t_in == 128 * 128 and path_x.t_out is None and path_x.dir_name() == "pathfinder-128"
    assert path_x.default_splits == {"train": 160_000, "val": 20_000, "test": 20_000}
    assert path_x.config == pf.make_lra_config(size=128)  # LRA's Path-X settings, hard
    lo_task = lrbench.get_task("listops")
    assert (lo_task.kind, lo_task.view, lo_task.vocab_size, lo_task.d_output) == ("classification", "tokens", 16, 10)
    assert lo_task.default_splits == {"train": 96_000, "val": 2_000, "test": 2_000}
    assert (lo_task.config.max_depth, lo_task.config.max_args, lo_task.config.min_length,
            lo_task.config.max_length) == (10, 10, 501, 1999)
    easy = lrbench.get_task("pathfinder", size=64, difficulty="easy")
    assert (easy.config.contour_length, easy.config.distractor_length) == (6, 2) and easy.dir_name() != "pathfinder-64"


def test_accuracy_is_the_share_of_samples_classed_right():
    rng = np.random.default_rng(0)
    logits, target = rng.normal(size=(50, 10)), rng.integers(0, 10, size=50)
    right = sum(int(np.argmax(row) == t) for row, t in zip(logits, target))  # counted one by one
    assert M.accuracy(logits, target) == pytest.approx(right / 50)
    assert M.accuracy(logits.argmax(1), target, per_batch=10) == pytest.approx(right / 50)
    acc = M.make_accumulator("accuracy", num_classes=10)
    acc.update(logits[:20], target[:20]).update(logits[20:], target[20:])
    assert acc.result() == pytest.approx(right / 50)


def test_outputs_are_averaged_over_each_samples_own_positions():
    """A class per sample: the mean of the per-position outputs over the real tokens (padding left
    out) for ListOps, over every pixel for Pathfinder, computed here position by position."""
    torch = pytest.importorskip("torch")
    from lrbench.evaluate.model import ModelIO

    def io(task):
        job = SimpleNamespace(task=task, model=SimpleNamespace(name="m", factory=None))
        return ModelIO(torch, job, None, 8)

    tokens = torch.tensor([[11, 3, 5, 15, 0, 0], [12, 2, 2, 9, 4, 15]])
    y = torch.randn(2, 6, 10, dtype=torch.float64)
    pooled = io(lrbench.get_task("listops")).pool(y, tokens)
    for b in range(2):
        real = [t for t in range(6) if int(tokens[b, t]) != 0]
        want = sum(y[b, t] for t in real) / len(real)
        assert torch.allclose(pooled[b], want)
    pixels = torch.rand(3, 32 * 32, 1)
    y = torch.randn(3, 32 * 32, 2, dtype=torch.float64)
    assert torch.allclose(io(lrbench.get_task("pathfinder")).pool(y, pixels), y.sum(1) / (32 * 32))


def test_lra_preset_transcribes_s4s_settings():
    """The `lra` preset's rows against the S4 authors' configs (state-spaces/s4 at e757cef,
    configs/experiment/lra/s4-{listops,pathfinder,pathx}.yaml), written out here."""
    s4 = {  # task, params: (d_state, dt_min, batch, steps, lr, ssm lr, warmup)
        ("listops", ()): (4, 1e-3, 32, 120_000, 1e-2, 1e-3, 12_000),
        ("pathfinder", (("size", 32),)): (64, 1e-3, 64, 500_000, 4e-3, 1e-3, 50_000),
        ("pathfinder", (("size", 128),)): (64, 1e-4, 16, 500_000, 1e-3, 1e-3, 50_000),
    }
    preset = get_preset("lra")
    assert sorted((t, tuple(sorted(p.items()))) for t, p in preset.suite) == sorted(s4)
    for (task, params), (n, dt_min, batch, steps, lr, kernel_lr, warmup) in s4.items():
        cell = preset.setting(task, dict(params), "dlr")
        m, t = cell.model, cell.train
        assert (m["n_layers"], m["d_model"], m["d_state"], m["dt_min"], m["dt_max"]) == (6, 256, n, dt_min, 0.1)
        assert m["bidirectional"] and m["glu"]
        assert (t.batch_size, t.steps, t.lr, t.kernel_lr, t.warmup, t.weight_decay, t.schedule) == \
            (batch, steps, lr, kernel_lr, warmup, 0.05, "cosine")
    assert preset.setting("pathfinder", {"size": 128}, "attention").paper == pytest.approx(0.9635)  # S4's, reference
    assert preset.setting("pathfinder", {"size": 32}, "attention").paper == pytest.approx(0.714)  # LRA's Transformer
    with pytest.raises(ValueError, match="preset lra has no setting for task pathfinder at pathfinder-64"):
        preset.setting("pathfinder", {"size": 64}, "dlr")


def test_lra_results_name_every_published_accuracy():
    """results.md puts the S4, S5 and LRU papers' accuracies (and LRA's Transformer's) beside ours:
    S4's updated table 59.60 / 94.20 / 96.35, S5's Table 1 62.15 / 95.33 / 98.58, LRU's Table 3
    60.2 / 95.1 / 94.2, LRA's Transformer 36.37 / 71.40 (it fails Path-X)."""
    preset = get_preset("lra")
    published = {("listops", ()): ["S4 0.596", "S5 0.622", "LRU 0.602", "Transformer 0.364"],
                 ("pathfinder", (("size", 32),)): ["S4 0.942", "S5 0.953", "LRU 0.951", "Transformer 0.714"],
                 ("pathfinder", (("size", 128),)): ["S4 0.964", "S5 0.986", "LRU 0.942"]}
    for (task, params), names in published.items():
        for model in ("s4d", "lru", "attention"):
            source = preset.setting(task, dict(params), model).paper_source
            assert all(name in source for name in names), (task, model, source)
    cell = preset.setting("listops", {}, "lru")
    assert cell.paper == pytest.approx(0.602) and cell.paper_source.startswith("LRU (Orvieto et al. 2023")
    assert "reference" in preset.setting("listops", {}, "s4d").paper_source  # S4's, for a model without its own
