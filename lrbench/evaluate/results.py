"""The run directory: what it holds, checked on every rerun, and the tables written into it.

  run.json      model, preset, seed and steps; a rerun with other values is refused
  log.jsonl     one line per logged step (RunLog)
  <job>/job.json, <job>/row.json    a job's full setting (must match on resume); its results row
  results.json  {"rows": [...]}: this evaluation's rows, then the other jobs found in the directory
  results.md    the same rows as a Markdown table, the paper's numbers beside ours

Only rank 0 writes (`main`); every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from lrbench.errors import LrbenchError
from lrbench.evaluate.summary import config_label
from lrbench.storage import atomic_write_bytes


def read_json(path: Path) -> dict:
    """A JSON object this harness wrote into the run directory; LrbenchError (2) when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LrbenchError(f"{path} is unreadable ({exc}); use another --out (or delete it)") from None
    if not isinstance(data, dict):
        raise LrbenchError(f"{path} is unreadable (not a JSON object); use another --out (or delete it)")
    return data


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def check_run(out: Path, info: dict, resume: bool, main: bool) -> bool:
    """Validate or create RUNDIR/run.json; True when the directory holds this run already."""
    path = out / "run.json"
    if path.exists():
        old = read_json(path)
        diff = [k for k in info if old.get(k) != info[k]]
        if diff:
            k = diff[0]
            raise LrbenchError(f"{out} holds a run with {k}={old.get(k)!r}, not {info[k]!r}; "
                               "use another --out (or delete it)")
        return True
    if resume:
        raise LrbenchError(f"--resume: {out} holds no run to resume")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, info)
    return False


def check_job(jobdir: Path, description: dict, main: bool) -> None:
    """Validate or create <job>/job.json: a resumed job must have the settings it started with."""
    path = jobdir / "job.json"
    if path.exists():
        old = read_json(path)
        if old != description:
            diff = sorted(k for k in description if old.get(k) != description[k])
            raise LrbenchError(f"{jobdir} was started with other settings ({', '.join(diff)} differ); "
                               "use another --out (or delete it)")
    elif main:
        jobdir.mkdir(parents=True, exist_ok=True)
        write_json(path, description)


class RunLog:
    """log.jsonl: one JSON record per logged step of every job (task, model, step, loss, lr,
    steps_per_s, metric, val); only rank 0 writes."""

    def __init__(self, path: Path, main: bool):
        self.path, self.main = path, main

    def append(self, record: dict) -> None:
        if self.main:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def trim(self, job: str, after_step: int) -> None:
        """Drop a job's lines past the checkpoint a resumed run restarts from."""
        if not (self.main and self.path.exists()):
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # not a record of this job: not ours to drop
                rec = None
            step = rec.get("step") if isinstance(rec, dict) else None
            later = isinstance(step, (int, float)) and step > after_step
            if not (isinstance(rec, dict) and rec.get("job") == job and later):
                keep.append(line)
        atomic_write_bytes(self.path, ("\n".join(keep) + "\n" if keep else "").encode())


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def results_markdown(rows: list[dict]) -> str:
    """A Markdown table of result rows, the paper's number beside ours."""
    lines = ["| task | config | model | preset | metric | test | paper | val | best step | steps | ms/step | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sources = []
    for r in rows:
        size = config_label(r)
        mark = ""
        if r.get("paper_source"):
            if r["paper_source"] not in sources:
                sources.append(r["paper_source"])
            mark = f" [{sources.index(r['paper_source']) + 1}]"
        lines.append(f"| {r['task']} | {size} | {r['model']} | {r['preset']} | {r['metric']} | {_fmt(r['test'])} | "
                     f"{_fmt(r['paper'])}{mark} | {_fmt(r['val'])} | {r.get('best_step', '')} | {r['steps']} | "
                     f"{r.get('ms_per_step', '')} | {r['seconds']:.0f} |")
    if sources:
        lines.append("")
        lines += [f"[{i + 1}] {s}" for i, s in enumerate(sources)]
    return "\n".join(lines) + "\n"


def write_results(out: Path, rows: list[dict]) -> None:
    """results.json and results.md: this evaluation's rows, then rows of other jobs found in `out`."""
    keys = {r["job"] for r in rows}
    others = []
    for path in sorted(out.glob("*/row.json")):
        if path.parent.name not in keys:
            try:
                others.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
    every = rows + others
    write_json(out / "results.json", {"rows": every})
    atomic_write_bytes(out / "results.md", results_markdown(every).encode())
