"""`lrbench show`: the text view shows the scored positions with their targets, and `show -o` draws
pictures one can read: every target channel under the positions it scores, Select's marks, a
legend and a pixel scale on Pathfinder, the targets under ListOps' ']' tokens; a one-line error
when matplotlib is missing."""

from __future__ import annotations

import builtins
import re

import numpy as np
import pytest
from PIL import Image

import lrbench
from conformance import run_main
from lrbench import show

ATOMIC = [name for name in lrbench.list_tasks() if lrbench.get_task(name).kind == "regression"]


def _scored_row(text: str, position: int) -> str:
    """The text view's line for one position."""
    rows = [line for line in text.splitlines() if re.match(rf"^\s*{position}\s+x:", line)]
    assert rows, f"no line for position {position} in:\n{text}"
    return rows[0]


@pytest.mark.parametrize("name", ["reverse", "select", "sort", "solve"])
def test_text_view_prints_the_scored_positions_and_their_targets(name, capsys):
    code, text, err = run_main(["show", name, "--length", "32", "--index", "2"], capsys)
    assert code == 0, err
    task = lrbench.get_task(name, length=32)
    sample = task.sample(2, "test")
    x, y = sample["inputs"], sample["targets"]
    first = len(x) - len(y)  # the targets sit under the last T_out positions
    assert task.t_out == len(y) < len(x)
    for j in range(4):
        row = _scored_row(text, first + j)
        assert f"x: {x[first + j, 0]:+.4f}" in row and row.endswith(f"y: {y[j, 0]:+.4f}"), row


@pytest.mark.parametrize("name", ATOMIC)
def test_every_regression_task_shows_a_target_value(name, capsys):
    code, text, err = run_main(["show", name, "--length", "32"], capsys)
    assert code == 0, err
    y = lrbench.get_task(name, length=32).sample(0, "test")["targets"]
    assert f"y: {y[0, 0]:+.4f}" in text


def test_text_view_lists_select_marked_positions(capsys):
    code, text, err = run_main(["show", "select", "--length", "32"], capsys)
    assert code == 0, err
    marked = np.flatnonzero(lrbench.get_task("select", length=32).sample(0, "test")["inputs"][:, 1])
    assert "marked at positions " + ", ".join(map(str, marked[:8])) in text


# -- the regression figure ----------------------------------------------------------------------


def _lines(ax) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)) for line in ax.get_lines()]


def _has_line(fig, xs, ys) -> bool:
    return any(len(a) == len(xs) and np.array_equal(a, xs) and np.allclose(b, ys)
               for ax in fig.axes for a, b in _lines(ax))


@pytest.mark.parametrize("name,params", [("reverse", {}), ("shift", {}), ("mips", {"dim": 3}), ("select", {})])
def test_every_target_channel_is_drawn_under_the_positions_it_scores(name, params):
    task = lrbench.get_task(name, length=48, **params)
    sample = task.sample(1, "test")
    fig = show.signal_figure(task, sample)
    x, y = sample["inputs"], sample["targets"]
    scored = np.arange(len(x) - len(y), len(x))
    for j in range(y.shape[1]):
        assert _has_line(fig, scored, y[:, j]), f"{name}: target channel {j} is not drawn at {scored[[0, -1]]}"
    if name == "mips":  # q, k, v: D channels each, drawn as heat maps (a row per channel)
        maps = [np.asarray(im.get_array()) for ax in fig.axes for im in ax.get_images()]
        for g in range(3):
            assert any(np.allclose(m, x[:, g * 3:(g + 1) * 3].T) for m in maps), f"mips input group {g}"
    else:
        assert _has_line(fig, np.arange(len(x)), x[:, 0]), "the input signal"
    assert "position" in fig.axes[-1].get_xlabel() or any("position" in ax.get_xlabel() for ax in fig.axes)
    titles = " ".join(ax.get_title(loc="left") for ax in fig.axes) + fig.get_suptitle()
    assert "cos, sin" in titles, "the title says the positional channels are left out"


def test_shift_names_each_shift_and_mips_each_value_channel():
    task = lrbench.get_task("shift", length=64)
    fig = show.signal_figure(task, task.sample(0, "test"))
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    from lrbench.generators.atomic import shift_offsets

    for s in shift_offsets(64, 8):
        assert any(f"shifted by {s}" in t for t in titles), (s, titles)


def test_many_target_channels_say_which_are_shown():
    task = lrbench.get_task("mips", length=32, dim=12)
    fig = show.signal_figure(task, task.sample(0, "test"))
    assert "channels 0-7 of 12" in fig.get_suptitle()
    assert len([ax for ax in fig.axes if ax.get_title(loc="left").startswith("y")]) == 8


def test_select_marks_are_drawn_where_the_marker_is_set():
    task = lrbench.get_task("select", length=48, num_selected=5)
    sample = task.sample(3, "test")
    marked = np.flatnonzero(sample["inputs"][:, 1])
    fig = show.signal_figure(task, sample)
    spans = [c for ax in fig.axes for c in ax.collections if c.get_label() == "marked"]
    assert spans, "no 'marked' collection"
    xs = sorted({float(seg[0][0]) for seg in spans[0].get_segments()})
    assert xs == marked.astype(float).tolist()
    # and the marked values themselves, picked out on the signal
    assert _has_line(fig, marked.astype(float), sample["inputs"][marked, 0])


def test_a_toy_regression_task_without_channel_names_still_draws():
    from lrbench.registry import Feature, TaskSpec

    def features(c):
        return {"inputs": Feature("float32", (20, 2)), "targets": Feature("float32", (5, 3))}

    spec = TaskSpec(name="toy-pic", id=9_999, config=lrbench.get_task("cumsum").config.__class__,
                    generate=None, features=features, kind="regression", metrics=("r2",), view="signal",
                    default_splits={"test": 1}, finite_splits=("test",), dir_label=str, tiny={})
    task = lrbench.Task(spec, lrbench.get_task("cumsum").config)
    rng = np.random.default_rng(0)
    sample = {"inputs": rng.standard_normal((20, 2)).astype("f4"), "targets": rng.standard_normal((5, 3)).astype("f4")}
    fig = show.signal_figure(task, sample)
    for j in range(3):
        assert _has_line(fig, np.arange(15, 20), sample["targets"][:, j])
    assert _has_line(fig, np.arange(20), sample["inputs"][:, 1])


# -- PNG files ------------------------------------------------------------------------------------


PICTURES = [
    ("shift", ["--length", "256"]),
    ("select", ["--length", "256"]),
    ("mips", ["--length", "256"]),
    ("reverse", ["--length", "256"]),
    ("pathfinder-seg", ["--size", "128"]),
    ("pathfinder", ["--size", "32"]),
    ("listops-subtrees", ["--set", "max_depth=6", "--set", "min_length=16", "--set", "max_length=64"]),
    ("listops", ["--set", "max_depth=6", "--set", "min_length=16", "--set", "max_length=64"]),
]


@pytest.mark.parametrize("name,args", PICTURES)
def test_png_is_a_readable_picture(name, args, tmp_path, capsys):
    png = tmp_path / "p.png"
    code, out, err = run_main(["show", name, *args, "-o", png], capsys)
    assert code == 0 and err == "" and out.strip() == f"wrote {png}"
    assert png.stat().st_size < 300_000
    with Image.open(png) as img:
        assert img.format == "PNG" and 500 <= img.width <= 2400 and 200 <= img.height <= 2400, img.size
        grey = np.asarray(img.convert("L"))
    assert np.ptp(grey) > 100 and (grey < 128).mean() > 0.01 and (grey > 128).mean() > 0.01, "a blank picture"
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"], "no temporary file is left"


def test_pathfinder_is_enlarged_crisply_with_a_legend():
    task = lrbench.get_task("pathfinder-seg", size=128)
    sample = task.sample(5, "test")
    img, (left, top), k = show.framed_image(task, sample)
    assert k >= 4, "a 128-pixel image is enlarged to at least 512 screen pixels"
    pic = task.spec.picture(sample, task.config)
    crop = np.asarray(img.convert("RGB"))[top: top + 128 * k, left: left + 256 * k]
    assert np.array_equal(crop, np.kron(pic, np.ones((k, k, 1), dtype=np.uint8))), "nearest-neighbour, whole pixels"
    legend = task.spec.legend
    assert len(legend) == 3 and {"2", "1", "0"} <= set("".join(n for n, _ in legend))
    below = np.asarray(img.convert("RGB"))[top + 128 * k:]
    for _, colour in legend:  # each class has a swatch under the picture
        assert (below == colour).all(axis=2).sum() >= 100, colour


def test_lra_pathfinder_keeps_its_pixels_square_and_states_the_label():
    task = lrbench.get_task("pathfinder", size=32)
    sample = task.sample(0, "test")
    img, (left, top), k = show.framed_image(task, sample)
    pic = task.spec.picture(sample, task.config)
    crop = np.asarray(img.convert("RGB"))[top: top + pic.shape[0] * k, left: left + pic.shape[1] * k]
    assert np.array_equal(crop, np.kron(pic, np.ones((k, k, 1), dtype=np.uint8)))
    assert img.height >= 512


def test_listops_cells_put_each_target_under_its_close_bracket():
    task = lrbench.get_task("listops-subtrees", max_depth=6, min_length=16, max_length=64)
    sample = task.sample(0, "test")
    names, values, total = show.token_cells(task, sample, limit=40)
    tokens, targets = sample["inputs"], sample["targets"]
    n = min(40, len(tokens))
    assert total == len(tokens) and len(names) == len(values) == n
    token_names = task.spec.token_names
    for i in range(n):
        assert names[i] == token_names[tokens[i]]
        assert values[i] == ("" if targets[i] == -100 else str(int(targets[i])))
    assert any(v for v in values), "some ']' among the first 40 tokens"


# -- matplotlib missing -----------------------------------------------------------------------


@pytest.fixture
def no_matplotlib(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


@pytest.mark.parametrize("name,args", [("shift", ["--length", "32"]), PICTURES[-2]])
def test_without_matplotlib_a_plot_is_one_line_and_exit_1(name, args, no_matplotlib, tmp_path, capsys):
    png = tmp_path / "p.png"
    png.write_bytes(b"earlier")
    code, out, err = run_main(["show", name, *args, "-o", png], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("lrbench: error: ")
    assert "needs matplotlib: pip install 'lrbench-synth[plot]'" in err
    assert png.read_bytes() == b"earlier", "nothing already written is lost"


def test_without_matplotlib_pathfinder_still_draws(no_matplotlib, tmp_path, capsys):
    png = tmp_path / "p.png"
    code, out, err = run_main(["show", "pathfinder", "--size", "32", "-o", png], capsys)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
