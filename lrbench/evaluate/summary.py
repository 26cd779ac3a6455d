"""Results over seeds: one line per (task, its config, model, preset) with mean ± std of the test
metric and how many seeds failed to learn. Used by `lrbench evaluate --seeds` and `lrbench report`.

    cells = summarize(rows)          # rows: results rows of any runs (each carries its seed)
    print(summary_markdown(cells))

A seed *failed to learn* when its test metric gained less than half of what the best seed gained
over the chance level (R²: 0; an accuracy or macro-F1 over C classes: 1/C), or, when even the best
seed gained less than FLOOR over chance, every seed failed. The rule is ours: it names the runs a
reader should not average blindly (a bimodal set of seeds), without a threshold per task.

Torch is not needed here.
"""

from __future__ import annotations

import math

FLOOR = 0.05  # the least gain over chance that counts as learning at all
HALF = 0.5  # a seed below this share of the best seed's gain over chance failed


def chance(metric: str, task: str) -> float:
    """The metric of a predictor that knows nothing: 0 for R², 1/C for a metric over C classes."""
    if metric == "r2":
        return 0.0
    from lrbench.registry import spec_of

    try:
        classes = spec_of(task).num_classes
    except (ValueError, KeyError):  # a task not registered in this process: no level to compare with
        return 0.0
    return 1.0 / classes if classes else 0.0


def failed_seeds(scores: list[float], level: float) -> list[bool]:
    """Which of `scores` (one per seed) failed to learn, against chance `level` (module docstring)."""
    gains = [s - level if s is not None and math.isfinite(s) else -math.inf for s in scores]
    best = max(gains, default=-math.inf)
    if best < FLOOR:
        return [True] * len(scores)
    return [g < HALF * best for g in gains]


def config_label(row: dict) -> str:
    """The task's size parameter as a short label (length=512, size=32), or ''."""
    cfg = row.get("task_config") or {}
    return next((f"{k}={cfg[k]}" for k in ("length", "size", "max_length") if k in cfg), "")


def summarize(rows: list[dict]) -> list[dict]:
    """One cell per (task, config label, model, preset), in the order rows first name them:
    {task, config, model, preset, metric, seeds, scores, n, mean, std, failed, paper, paper_source}.
    std is the sample standard deviation (0 for one seed). A seed met twice keeps its first row."""
    cells: dict[tuple, dict] = {}
    for r in rows:
        key = (r["task"], config_label(r), r["model"], r["preset"])
        cell = cells.setdefault(key, {"task": r["task"], "config": key[1], "model": r["model"], "preset": r["preset"],
                                      "metric": r["metric"], "seeds": [], "scores": [], "paper": r.get("paper"),
                                      "paper_source": r.get("paper_source")})
        seed = r.get("seed")
        if seed in cell["seeds"]:
            continue
        cell["seeds"].append(seed)
        cell["scores"].append(r["test"])
    for cell in cells.values():
        scores = [s for s in cell["scores"] if s is not None and math.isfinite(s)]
        n = len(scores)
        cell["n"] = len(cell["scores"])
        cell["mean"] = sum(scores) / n if n else None
        cell["std"] = (math.sqrt(sum((s - cell["mean"]) ** 2 for s in scores) / (n - 1)) if n > 1 else 0.0) \
            if n else None
        cell["failed"] = sum(failed_seeds(cell["scores"], chance(cell["metric"], cell["task"])))
    return list(cells.values())


def _pm(cell: dict) -> str:
    if cell["mean"] is None:
        return "–"
    return f"{cell['mean']:.3f} ± {cell['std']:.3f}" if cell["n"] > 1 else f"{cell['mean']:.3f}"


def summary_markdown(cells: list[dict]) -> str:
    """A Markdown table of summarized cells: mean ± std over seeds, failed seeds, the paper's number."""
    lines = ["| task | config | model | preset | metric | test (mean ± std) | seeds | failed | paper |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        paper = "–" if c["paper"] is None else f"{c['paper']:.3f}"
        lines.append(f"| {c['task']} | {c['config']} | {c['model']} | {c['preset']} | {c['metric']} | {_pm(c)} | "
                     f"{c['n']} | {c['failed']} | {paper} |")
    return "\n".join(lines) + "\n"
