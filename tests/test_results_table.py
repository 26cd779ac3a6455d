"""results/table.py builds results/README.md's tables from the stored runs, and nothing else."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "results"
_spec = importlib.util.spec_from_file_location("results_table", RESULTS / "table.py")
table = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = table  # dataclasses looks its module up there
_spec.loader.exec_module(table)


def _rows(markdown: str, header: str) -> dict[str, list[str]]:
    """The body rows of the Markdown table whose header line starts with `header`, by first cell."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    out = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0] if header.startswith("| run") else (cells[0], cells[2])] = cells
    return out


def test_cpu_rows_match_the_stored_results():
    stored = {}
    for path in RESULTS.glob("*/results.json"):
        for row in json.loads(path.read_text())["rows"]:
            if row["preset"].startswith("cpu-"):
                stored[path.parent.name] = row
    assert stored, "no stored CPU runs under results/"
    rendered = _rows(table.render(RESULTS), "| run | changed from quick")
    assert set(rendered) == set(stored)
    for name, row in stored.items():
        _, _, steps, best, val, test, paper, diff, *_ = rendered[name]
        assert (int(steps), int(best)) == (row["steps"], row["best_step"])
        assert (float(val), float(test)) == pytest.approx((row["val"], row["test"]), abs=5e-4)
        assert float(paper) == row["paper"]
        assert float(diff) == pytest.approx(row["val"] - row["paper"], abs=5e-3)


def test_curve_rows_match_the_stored_logs():
    rendered = _rows(table.render(RESULTS), "| run | 250 |")
    header = next(line for line in table.render(RESULTS).splitlines() if line.startswith("| run | 250 |"))
    steps = [int(s) for s in header.strip("|").split("|")[1:]]
    for name, cells in rendered.items():
        log = [json.loads(line) for line in (RESULTS / name / "log.jsonl").read_text().splitlines()]
        val = {r["step"]: r["val"] for r in log if r.get("val") is not None}
        for step, cell in zip(steps, cells[1:]):
            assert cell == "–" if step not in val else float(cell) == pytest.approx(val[step], abs=5e-4)


def test_readme_holds_the_current_tables():
    text = (RESULTS / "README.md").read_text(encoding="utf-8")
    block = text.partition(table.BEGIN)[2].partition(table.END)[0]
    assert block == "\n" + table.render(RESULTS), "rerun: python results/table.py --write"


def _store(root: Path, name: str, row: dict, with_results: bool = True):
    run = root / name
    (run / row["job"]).mkdir(parents=True)
    (run / row["job"] / "job.json").write_text(json.dumps({"model_config": {}, "train": {}, "task_config": {}}))
    (run / "log.jsonl").write_text(json.dumps({"job": row["job"], "step": row["steps"], "val": row["val"]}) + "\n")
    if with_results:
        (run / "results.json").write_text(json.dumps({"rows": [row]}))


def test_gpu_cells_fill_in_from_stored_runs_at_full_length(tmp_path):
    base = dict(preset="paper-l512", model="dlr", task_config={"length": 512}, device="cuda", seconds=600.0,
                val=0.9, best_step=11000, paper=None, ms_per_step=50.0)
    _store(tmp_path, "gpu-select", dict(base, task="select", job="select-L512", steps=11000, test=0.8))
    _store(tmp_path, "gpu-solve-short", dict(base, task="solve", job="solve-L512", steps=100, test=0.1))
    _store(tmp_path, "gpu-reverse-running", dict(base, task="reverse", job="reverse-L512", steps=11000, test=0.9),
           with_results=False)
    rows = _rows(table.render(tmp_path), "| model | layers | task")
    assert rows[("dlr", "select")][3:7] == ["0.86", "0.900", "+0.04", "0.800"]
    assert rows[("dlr", "select")][7].startswith("run `gpu-select`")
    assert rows[("dlr", "solve")][4] == "–" and "stopped at 100 steps" in rows[("dlr", "solve")][7]
    for cell in [("dlr", "reverse"), ("dlr", "select-fixed"), ("attention", "select"), ("attention", "mips")]:
        assert rows[cell][4] == "–" and rows[cell][7].startswith("not yet run")


def test_lra_report_is_the_stored_runs():
    """results/lra/report.md is `lrbench report results/lra` today, and shows each run's test accuracy
    and the published one beside it."""
    from lrbench.report import build

    lra = RESULTS / "lra"
    stored = (lra / "report.md").read_text()
    assert build([lra], plots=False).table == stored
    rows = [json.loads(p.read_text())["rows"][0] for p in sorted(lra.glob("*/results.json"))]
    assert {r["task"] for r in rows} == {"listops", "pathfinder"}
    lines = {line.split("|")[1].strip(): line for line in stored.splitlines() if line.startswith("| ")}
    for r in rows:
        assert f"{r['test']:.3f} (1" in lines[r["task"]] and f"{r['paper']:.3f}" in lines[r["task"]]
