"""`lrbench report RUN...`: runs of `lrbench evaluate` merged into one comparison table, one figure,
and a picture of each run's learning curves.

    rep = build(["runs/dlr", "runs/attention"], out=Path("report.md"))
    print(rep.table)        # Markdown: rows (task, config), columns models, mean ± std (seeds)
    write(rep)              # report.md, report.png, report-curves/<run>.png

Where the rows come from. A RUN is any directory `evaluate` wrote, or one above such directories (a
`--seeds` parent holding seed-<k>/ runs, or a folder of runs): every results.json at RUN or below
is read. The same result is often in two of them (a seeds parent repeats its children's rows, and a
run may be named twice), so a row counts once per (task, config, model, preset, seed). Two rows
with that key but different results come from runs that differ in something the key does not name
(a learning rate, say): that is refused, as averaging or dropping either would mislead.

The table. One line per (task, config); one column per model (model and preset when a model comes
with several presets), each cell "mean ± std (seeds)" of the test metric over seeds, with the
seeds that failed to learn counted beside (lrbench.evaluate.summary). The paper's numbers go in
one last column, "paper (dlr / attention)", rather than in each cell: ours then stay short enough
to compare down a column, and the paper's sit together as in the README's tables. The paper's
number belongs to a model, not to a preset, so that column has one entry per model the paper
reports (several presets of one model share it); it is left out when no cell has a paper number
(the smoke and custom presets), and its sources are listed under the table.

Figures need matplotlib (the `plot` extra) and are drawn only for `--out`, so the table prints on
a machine without it. They are drawn with the Agg canvas on matplotlib's object API (no pyplot: no
global backend is switched in a user's process) and saved to bytes first. `build` renders every
file in memory before `write` writes any, each atomically: a failure leaves nothing half-written.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from lrbench.errors import LrbenchError
from lrbench.figures import figure
from lrbench.evaluate.summary import config_label, summarize
from lrbench.storage import atomic_write_bytes

PLOT_HINT = "lrbench report needs matplotlib for figures: pip install 'lrbench-synth[plot]'"
ROW_KEYS = ("task", "model", "preset", "metric", "test")  # what a results row must hold to be reported


# ---------------------------------------------------------------------------------------------
# rows


def results_files(run: Path) -> list[Path]:
    """Every results.json at `run` or below; LrbenchError (2) when there is none."""
    if not run.exists():
        raise LrbenchError(f"{run} does not exist; name run directories of lrbench evaluate")
    if not run.is_dir():
        raise LrbenchError(f"{run} is not a directory; name run directories of lrbench evaluate")
    found = sorted(run.rglob("results.json"))
    if not found:
        raise LrbenchError(f"{run} holds no results.json (not a run directory of lrbench evaluate)")
    return found


def read_rows(path: Path) -> list[dict]:
    """The rows of one results.json, each checked for the keys a report needs."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LrbenchError(f"{path} is unreadable ({exc})") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise LrbenchError(f"{path} is not a results file of lrbench evaluate (no list of rows)")
    for i, row in enumerate(rows):
        missing = [k for k in ROW_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise LrbenchError(f"{path}: row {i} lacks {', '.join(missing)}")
    return rows


def row_key(row: dict) -> tuple:
    """What names a result: task, its config, model, preset and seed."""
    return row["task"], config_label(row), row["model"], row["preset"], row.get("seed")


def collect_rows(runs: list[Path]) -> list[dict]:
    """The result rows of `runs`, each (task, config, model, preset, seed) once (module docstring)."""
    kept: dict[tuple, tuple[Path, dict]] = {}
    paths = dict.fromkeys(p.resolve() for run in runs for p in results_files(Path(run)))
    for path in paths:
        for row in read_rows(path):
            key = row_key(row)
            if key not in kept:
                kept[key] = (path, row)
            elif _outcome(kept[key][1]) != _outcome(row):
                task, config, model, preset, seed = key
                raise LrbenchError(f"{kept[key][0]} and {path} both hold {model} on {task} {config} (preset {preset}, "
                                   f"seed {seed}) with different results; report those runs separately")
    return [row for _, row in kept.values()]


def _outcome(row: dict) -> str:
    # as JSON text, so that two NaN results compare equal
    return json.dumps([row.get("test"), row.get("val")])


# ---------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Grid:
    """Summarized cells laid out as the table shows them: lines (task, config) x model columns."""

    lines: list[tuple[str, str]]
    columns: list[str]
    cells: dict[tuple[str, str, str], dict]  # (task, config, column) -> cell

    def get(self, line: tuple[str, str], column: str) -> dict | None:
        return self.cells.get((*line, column))


def grid(cells: list[dict]) -> Grid:
    """Cells of `summarize` by line and column; a model's column names its preset when it has several."""
    presets: dict[str, set] = {}
    for c in cells:
        presets.setdefault(c["model"], set()).add(c["preset"])

    def column(c):
        return c["model"] if len(presets[c["model"]]) == 1 else f"{c['model']} ({c['preset']})"

    lines = list(dict.fromkeys((c["task"], c["config"]) for c in cells))
    columns = list(dict.fromkeys(column(c) for c in cells))
    return Grid(lines, columns, {(c["task"], c["config"], column(c)): c for c in cells})


def cell_text(cell: dict | None) -> str:
    """mean ± std (seeds), and how many seeds failed to learn when any did."""
    if cell is None:
        return "–"
    failed = f", {cell['failed']} failed" if cell["failed"] else ""
    if cell["mean"] is None:
        return f"– ({cell['n']}{failed})"
    spread = f" ± {cell['std']:.3f}" if cell["n"] > 1 else ""
    return f"{cell['mean']:.3f}{spread} ({cell['n']}{failed})"


def comparison_markdown(cells: list[dict]) -> str:
    """The comparison table (module docstring) with a line on how to read it, and the paper's sources."""
    g = grid(cells)
    sources = paper_sources(cells)  # the models the paper has numbers for
    head = ["task", "config", "metric", *g.columns] + ([f"paper ({' / '.join(sources)})"] if sources else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for line in g.lines:
        row = [g.get(line, col) for col in g.columns]
        metric = next(c["metric"] for c in row if c is not None)
        texts = [*line, metric, *map(cell_text, row)]
        if sources:
            texts.append(" / ".join(paper_text([c for c in row if c is not None and c["model"] == m]) for m in sources))
        out.append("| " + " | ".join(texts) + " |")
    presets = ", ".join(dict.fromkeys(c["preset"] for c in cells))
    out += ["", "Test metric of each seed's best-validation checkpoint: mean ± sample std (seeds); "
            f"'failed': seeds that did not learn (lrbench.evaluate.summary). Presets: {presets}."]
    out += [f"Paper, {model}: {text}" for model, text in sources.items() if text]
    return "\n".join(out) + "\n"


def paper_text(cells: list[dict]) -> str:
    """The paper's number(s) for one model on one line: one, or each distinct one (two presets may cite
    different tables), or '–'."""
    values = dict.fromkeys(c["paper"] for c in cells if c["paper"] is not None)
    return ", ".join(f"{v:.3f}" for v in values) or "–"


def paper_sources(cells: list[dict]) -> dict[str, str]:
    """Each model the paper has a number for, with where the numbers come from ('' if unsaid)."""
    found: dict[str, dict] = {}
    for c in cells:
        if c["paper"] is not None:
            found.setdefault(c["model"], {})[c.get("paper_source") or ""] = None
    return {model: "; ".join(s for s in srcs if s) for model, srcs in found.items()}


# ---------------------------------------------------------------------------------------------
# learning curves (log.jsonl)


@dataclass(frozen=True)
class Curve:
    """One job's logged training: loss at every logged step, the validation metric where evaluated."""

    job: str
    model: str
    metric: str
    steps: list[int]
    losses: list[float]
    val_steps: list[int]
    vals: list[float]


def log_dirs(runs: list[Path]) -> list[Path]:
    """The directories holding a log.jsonl at or below `runs`, each once, in path order."""
    found = {p.parent.resolve() for run in runs for p in Path(run).rglob("log.jsonl")}
    return sorted(found)


def read_curves(run: Path) -> list[Curve]:
    """The learning curves in `run`/log.jsonl, one per job in the order the log first names them.
    Lines that are not complete records (a job still appending) are skipped."""
    records: dict[str, list[dict]] = {}
    for line in (run / "log.jsonl").read_text(encoding="utf-8").splitlines():
        rec = _record(line)
        if rec is not None:
            records.setdefault(rec["job"], []).append(rec)
    return [_curve(job, recs) for job, recs in records.items()]


def _record(line: str) -> dict | None:
    """A complete log record, or None (a torn line of a job still appending; something not ours)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    whole = isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)) and all(
        k in rec for k in ("job", "model", "loss"))
    return rec if whole else None


def _curve(job: str, recs: list[dict]) -> Curve:
    recs = sorted(recs, key=lambda r: r["step"])
    evals = [r for r in recs if r.get("val") is not None]
    return Curve(job, recs[0]["model"], recs[0].get("metric") or "metric", [r["step"] for r in recs],
                 [r["loss"] for r in recs], [r["step"] for r in evals], [r["val"] for r in evals])


def curve_names(dirs: list[Path]) -> list[str]:
    """A file name for each run directory: its path below what the runs share, '/' as '-'
    (runs/dlr/seed-0 and runs/lru/seed-0 become dlr-seed-0 and lru-seed-0)."""
    if not dirs:
        return []
    base = os.path.commonpath([d.parent for d in dirs])
    return [os.path.relpath(d, base).replace(os.sep, "-") for d in dirs]


# ---------------------------------------------------------------------------------------------
# figures


def _colors(n: int) -> list:
    """n distinguishable colours: matplotlib's default cycle, tab20 past 10, a sampled map past 20."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    from matplotlib import colormaps

    cmap = colormaps["tab20"] if n <= 20 else colormaps["turbo"].resampled(n)
    return [cmap(i) for i in range(n)]


def comparison_figure(cells: list[dict]):
    """Grouped bars: one group per (task, config), one bar per model at its mean with the std as error
    bar (none for a single seed); the paper's numbers as black diamonds on the bars they belong to."""
    g = grid(cells)
    fig = figure(PLOT_HINT, figsize=(max(7.0, 2.5 + 0.4 * len(g.lines) * (len(g.columns) + 1)), 4.5))
    ax = fig.subplots()
    width, colors = 0.8 / len(g.columns), _colors(len(g.columns))
    paper_x, paper_y = [], []
    for j, col in enumerate(g.columns):
        xs = [i + (j - (len(g.columns) - 1) / 2) * width for i in range(len(g.lines))]
        shown = [(x, g.get(line, col)) for x, line in zip(xs, g.lines)]
        bars = [(x, c) for x, c in shown if c is not None and c["mean"] is not None]
        spread = [c["std"] if c["n"] > 1 else math.nan for _, c in bars]  # no error bar for one seed
        ax.bar([x for x, _ in bars], [c["mean"] for _, c in bars], width, yerr=spread, capsize=3, color=colors[j],
               label=col)
        paper = [(x, c["paper"]) for x, c in shown if c is not None and c["paper"] is not None]
        paper_x += [x for x, _ in paper]
        paper_y += [p for _, p in paper]
    if paper_x:
        ax.scatter(paper_x, paper_y, marker="D", color="black", zorder=3, label="paper")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(g.lines)), [f"{task}\n{config}" for task, config in g.lines])
    ax.set_xlabel("task")
    ax.set_ylabel(f"test {' / '.join(dict.fromkeys(c['metric'] for c in cells))}")
    ax.set_title("Test metric over seeds: mean ± sample std")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def curves_figure(name: str, curves: list[Curve]):
    """A run's learning curves: training loss (log scale) and validation metric against step, a line per job."""
    fig = figure(PLOT_HINT, figsize=(11, 4.2))
    from matplotlib.ticker import MaxNLocator  # matplotlib is there: figure checked
    loss_ax, val_ax = fig.subplots(1, 2)
    for c, color in zip(curves, _colors(len(curves))):
        positive = [(s, v) for s, v in zip(c.steps, c.losses) if v is not None and math.isfinite(v) and v > 0]
        loss_ax.plot([s for s, _ in positive], [v for _, v in positive], color=color, label=c.job)
        val_ax.plot(c.val_steps, c.vals, marker="o", color=color, label=c.job)
    loss_ax.set_yscale("log")
    loss_ax.set(xlabel="step", ylabel="training loss (log scale)", title="training loss")
    val_ax.set(xlabel="step", ylabel=f"validation {' / '.join(dict.fromkeys(c.metric for c in curves))}",
               title="validation metric")
    for ax in (loss_ax, val_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    fig.suptitle(f"{name}: {', '.join(dict.fromkeys(c.model for c in curves))}")
    return fig


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class Report:
    """The table, and every file `--out` writes (path -> bytes), rendered before any is written."""

    table: str
    files: dict[Path, bytes]


def build(runs: list[str | Path], out: Path | None = None, plots: bool = True) -> Report:
    """The report of `runs`: the table, and with `out` (FILE.md) the files to write: FILE.md and, unless
    `plots` is False, the figure FILE.png and learning curves FILE-curves/<run>.png (one per run
    directory holding a log.jsonl)."""
    if not runs:
        raise LrbenchError("name at least one run directory")
    runs = [Path(r) for r in runs]
    if out is not None and (out.suffix != ".md" or out.is_dir()):
        raise LrbenchError(f"--out must name a .md file (got {out})")
    cells = summarize(collect_rows(runs))
    table = comparison_markdown(cells)
    files = {} if out is None else {out: table.encode()}
    if out is not None and plots:
        files[out.with_suffix(".png")] = png_bytes(comparison_figure(cells))
        dirs = log_dirs(runs)
        for name, d in zip(curve_names(dirs), dirs):
            curves = read_curves(d)
            if curves:
                files[out.parent / f"{out.stem}-curves" / f"{name}.png"] = png_bytes(curves_figure(name, curves))
    return Report(table, files)


def write(report: Report) -> list[Path]:
    """Write the report's files, each atomically; returns their paths."""
    for path, data in report.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return list(report.files)
