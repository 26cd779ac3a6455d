"""`lrbench report`: real runs of two models on two tasks over three seeds merged into one table whose
numbers are recomputed here from the runs' results.json; rows met twice count once; the figures are
real PNGs with the axes, bars, legend and curves they claim; bad input is one line and exit 2.

The runs are the smoke preset shortened to 12 steps (seconds on one thread), made once per module.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conformance import one_line_error, run_main  # noqa: E402
from lrbench.evaluate import evaluate  # noqa: E402
from lrbench.evaluate.summary import summarize  # noqa: E402
from lrbench.report import PLOT_HINT, collect_rows, comparison_figure, curves_figure, read_curves  # noqa: E402

MODELS, TASKS, SEEDS = ("dlr", "attention"), ("shift", "cumsum"), (0, 1, 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """root/<model>/seed-<k>: one run per model and seed. root/dlr is laid out as `evaluate --seeds`
    leaves it, with a results.json above its seeds holding all their rows; root/attention is a plain
    folder of runs."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for model in MODELS:
            for seed in SEEDS:
                evaluate(model, list(TASKS), "smoke", out=root / model / f"seed-{seed}", seed=seed, steps=12,
                         device="cpu")
    finally:
        torch.set_num_threads(threads)
    rows = [r for seed in SEEDS for r in child_rows(root / "dlr" / f"seed-{seed}")]
    (root / "dlr" / "results.json").write_text(json.dumps({"rows": rows}))
    return root


def child_rows(run):
    return json.loads((run / "results.json").read_text())["rows"]


def parse_table(text):
    """{(task, column): cell text} and the column names, from the Markdown table."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = [h.strip() for h in lines[0].strip("|").split("|")]
    cells = {}
    for line in lines[2:]:
        parts = [p.strip() for p in line.strip("|").split("|")]
        for name, value in zip(head[3:], parts[3:]):
            cells[(parts[0], name)] = value
    return cells, head


# ---------------------------------------------------------------------------------------------
# the table


def test_the_table_is_mean_and_sample_std_of_the_seeds(runs, capsys):
    code, out, err = run_main(["report", runs / "dlr", runs / "attention"], capsys)
    assert code == 0, err
    cells, head = parse_table(out)
    assert head[:5] == ["task", "config", "metric", "dlr", "attention"]
    assert "paper" not in " ".join(head)  # smoke cites no paper numbers
    for model in MODELS:
        rows = [r for s in SEEDS for r in child_rows(runs / model / f"seed-{s}")]
        for task in TASKS:
            scores = [r["test"] for r in rows if r["task"] == task]
            assert len(scores) == 3
            want = f"{statistics.mean(scores):.3f} ± {statistics.stdev(scores):.3f} (3"
            text = cells[(task, model)]
            assert text.startswith(want) and text.endswith(")"), (text, want)


def test_rows_met_twice_count_once(runs, capsys):
    # the seeds parent repeats its children's rows; naming a child again repeats them once more
    assert len(collect_rows([runs])) == len(MODELS) * len(TASKS) * len(SEEDS)
    assert len(collect_rows([runs / "dlr", runs / "dlr" / "seed-0", runs / "dlr"])) == len(TASKS) * len(SEEDS)
    _, once, _ = run_main(["report", runs / "dlr", runs / "attention"], capsys)
    code, twice, err = run_main(["report", runs / "dlr", runs / "dlr" / "seed-1", runs / "attention",
                                runs / "attention" / "seed-2"], capsys)
    assert code == 0, err
    assert twice == once


def test_the_same_seed_with_another_result_is_refused(runs, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(runs / "dlr" / "seed-0", other)
    data = json.loads((other / "results.json").read_text())
    data["rows"][0]["test"] += 0.5
    (other / "results.json").write_text(json.dumps(data))
    one_line_error(*run_main(["report", runs / "dlr", other], capsys), 2, "with different results")


def test_paper_numbers_sit_in_their_own_column(runs, tmp_path, capsys):
    # a copy of the runs whose rows cite the paper: dlr 1.0 on shift, nothing on cumsum
    copy = tmp_path / "cited"
    shutil.copytree(runs / "dlr", copy)
    for path in copy.rglob("results.json"):
        data = json.loads(path.read_text())
        for r in data["rows"]:
            if r["task"] == "shift":
                r["paper"], r["paper_source"] = 1.0, "Table 1 (test)"
        path.write_text(json.dumps(data))
    code, out, err = run_main(["report", copy, runs / "attention"], capsys)
    assert code == 0, err
    cells, head = parse_table(out)
    assert head[-1] == "paper (dlr)"
    assert cells[("shift", "paper (dlr)")] == "1.000" and cells[("cumsum", "paper (dlr)")] == "–"
    assert "Paper, dlr: Table 1 (test)" in out


# ---------------------------------------------------------------------------------------------
# files and figures


def assert_png(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 200
        gray = np.asarray(im.convert("L"), dtype=float)
    assert (gray < 128).mean() > 0.005  # ink: axes, text, bars or lines
    assert (gray > 250).mean() > 0.3  # and a background


def test_out_writes_the_table_the_figure_and_learning_curves(runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "reports" / "cmp.md"
    code, printed, err = run_main(["report", runs, "--out", out], capsys)
    assert code == 0, err
    assert out.read_text() == printed
    assert_png(tmp_path / "reports" / "cmp.png")
    curves = sorted(p.name for p in (tmp_path / "reports" / "cmp-curves").iterdir())
    assert curves == sorted(f"{m}-seed-{s}.png" for m in MODELS for s in SEEDS)  # none for the seeds parent
    for name in curves:
        assert_png(tmp_path / "reports" / "cmp-curves" / name)
    assert not list(tmp_path.rglob("*.tmp*"))


def hand_rows():
    row = dict(preset="p", metric="r2", task_config={"length": 8})
    return ([dict(row, task="shift", model="dlr", seed=s, test=v, paper=1.0) for s, v in enumerate([0.9, 0.7])]
            + [dict(row, task="shift", model="lru", seed=0, test=0.4, paper=None)]
            + [dict(row, task="cumsum", model="dlr", seed=0, test=0.2, paper=0.6)])


def test_the_comparison_figure_draws_means_errors_and_paper_numbers():
    pytest.importorskip("matplotlib")
    fig = comparison_figure(summarize(hand_rows()))
    (ax, *_) = fig.axes
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [0.2, 0.4, 0.8]  # dlr shift (mean of 0.9, 0.7), lru shift, dlr cumsum; no bar for lru cumsum
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) == {"dlr", "lru", "paper"}
    (markers,) = ax.collections[-1:]
    assert sorted(markers.get_offsets()[:, 1]) == [0.6, 1.0]
    segments = [s for c in ax.collections[:-1] for s in c.get_segments() if len(s) and np.isfinite(s).all()]
    (bar,) = segments  # dlr on shift; the single seeds have none
    assert np.allclose(sorted(bar[:, 1]), [0.8 - 0.14142136, 0.8 + 0.14142136])  # mean ± sample std
    assert ax.get_xlabel() and ax.get_ylabel() == "test r2" and ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["shift\nlength=8", "cumsum\nlength=8"]


def test_learning_curves_follow_the_log(runs, tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    shutil.copytree(runs / "dlr" / "seed-1", run)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    with open(run / "log.jsonl", "a") as f:
        f.write('{"job": "shift-L32", "step": 99, "lo')  # a job still appending: a torn last line
    curves = read_curves(run)
    assert [c.job for c in curves] == list(dict.fromkeys(r["job"] for r in records))
    for c in curves:
        mine = [r for r in records if r["job"] == c.job]
        assert c.steps == [r["step"] for r in mine] and c.losses == [r["loss"] for r in mine]
        assert c.val_steps == [r["step"] for r in mine if r["val"] is not None]
        assert c.vals == [r["val"] for r in mine if r["val"] is not None] and len(c.vals) >= 2
    loss_ax, val_ax = curves_figure("run", curves).axes
    assert loss_ax.get_yscale() == "log" and val_ax.get_yscale() == "linear"
    assert [list(line.get_ydata()) for line in loss_ax.lines] == [c.losses for c in curves]
    assert [list(line.get_ydata()) for line in val_ax.lines] == [c.vals for c in curves]
    for ax in (loss_ax, val_ax):
        assert ax.get_xlabel() == "step" and ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [c.job for c in curves]


# ---------------------------------------------------------------------------------------------
# without matplotlib, and bad input


def test_without_matplotlib_the_table_still_prints(runs, tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails, as when it is not installed
    out = tmp_path / "cmp.md"
    one_line_error(*run_main(["report", runs, "--out", out], capsys), 1, PLOT_HINT)
    assert not list(tmp_path.iterdir())  # nothing half-written
    code, printed, _ = run_main(["report", runs], capsys)
    assert code == 0 and "| shift | length=32 | r2 |" in printed
    code, printed, _ = run_main(["report", runs, "--out", out, "--no-plots"], capsys)
    assert code == 0 and out.read_text() == printed and sorted(p.name for p in tmp_path.iterdir()) == ["cmp.md"]


def bad_inputs(tmp, runs) -> dict:
    """Each kind of bad input: the arguments after `report`."""
    (tmp / "file.txt").write_text("x")
    for name, text in [("empty", None), ("torn", '{"rows": ['), ("odd", '{"rows": [{"task": 1}]}')]:
        (tmp / name).mkdir()
        if text is not None:
            (tmp / name / "results.json").write_text(text)
    return {"no run": [], "absent": [tmp / "absent"], "a file": [tmp / "file.txt"], "empty": [tmp / "empty"],
            "torn": [tmp / "torn"], "odd": [tmp / "odd"], "not .md": [runs, "--out", tmp / "table.txt"]}


@pytest.mark.parametrize("case,fragment", [
    ("no run", "Missing argument"),
    ("absent", "does not exist"),
    ("a file", "is not a directory"),
    ("empty", "holds no results.json"),
    ("torn", "is unreadable"),
    ("odd", "row 0 lacks model, preset, metric, test"),
    ("not .md", "--out must name a .md file"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, case, fragment):
    one_line_error(*run_main(["report", *bad_inputs(tmp_path, runs)[case]], capsys), 2, fragment)
