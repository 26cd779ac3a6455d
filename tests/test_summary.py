"""Results over seeds (lrbench.evaluate.summary): mean ± std and failed seeds, computed by hand here."""

import math

import pytest

from lrbench.evaluate.summary import chance, failed_seeds, summarize, summary_markdown


def row(task, model, seed, test, metric="r2", **extra):
    return {"task": task, "model": model, "preset": "quick", "metric": metric, "test": test, "seed": seed,
            "paper": extra.pop("paper", None), "task_config": extra.pop("task_config", {"length": 512}), **extra}


def test_mean_and_sample_std_over_seeds():
    rows = [row("shift", "dlr", s, v) for s, v in enumerate([0.9, 0.95, 1.0])] + [row("shift", "lru", 0, 0.5)]
    cells = summarize(rows)
    assert [(c["model"], c["n"]) for c in cells] == [("dlr", 3), ("lru", 1)]
    dlr = cells[0]
    assert dlr["mean"] == pytest.approx(0.95)
    assert dlr["std"] == pytest.approx(math.sqrt(((0.05) ** 2 + 0 + 0.05 ** 2) / 2))  # ddof 1
    assert cells[1]["std"] == 0.0 and cells[1]["config"] == "length=512"


def test_a_seed_met_twice_counts_once_and_configs_are_separate_cells():
    rows = [row("shift", "dlr", 0, 0.9), row("shift", "dlr", 0, 0.1), row("shift", "dlr", 0, 0.5,
                                                                         task_config={"length": 128})]
    cells = summarize(rows)
    assert [(c["config"], c["scores"]) for c in cells] == [("length=512", [0.9]), ("length=128", [0.5])]


def test_failed_seeds_against_chance():
    # R²: chance 0; the best gains 0.9, so a seed under 0.45 failed
    assert failed_seeds([0.9, 0.5, 0.44, -0.1], 0.0) == [False, False, True, True]
    # nothing learned: every seed failed
    assert failed_seeds([0.02, 0.01], 0.0) == [True, True]
    # accuracy over 10 classes: chance 0.1; 0.2 gains 0.1 < half of 0.5
    assert chance("accuracy", "listops") == pytest.approx(0.1)
    assert chance("macro_f1", "pathfinder-seg") == pytest.approx(1 / 3)
    assert chance("r2", "shift") == 0.0
    assert failed_seeds([0.6, 0.2, float("nan")], 0.1) == [False, True, True]
    cells = summarize([row("listops", "dlr", s, v, metric="accuracy") for s, v in enumerate([0.6, 0.2, 0.55])])
    assert cells[0]["failed"] == 1


def test_markdown_table():
    text = summary_markdown(summarize([row("shift", "dlr", s, v, paper=1.0) for s, v in enumerate([0.9, 1.0])]))
    lines = text.splitlines()
    assert lines[0].startswith("| task |") and len(lines) == 3
    assert "| 0.950 ± 0.071 | 2 | 0 | 1.000 |" in lines[2]
