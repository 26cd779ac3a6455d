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

from lrbench.errors import RUNTIME, LrbenchError
from lrbench.evaluate.summary import config_label, summarize, summary_markdown
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


def versions(torch, device) -> dict:
    """What a run ran with: lrbench, torch, Python, numpy, CUDA (torch's build) and the GPU."""
    import platform

    import numpy

    from lrbench import __version__

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"lrbench": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "cuda": torch.version.cuda, "gpu": gpu}


def check_run(out: Path, info: dict, resume: bool, main: bool, env: dict | None = None) -> bool:
    """Validate or create RUNDIR/run.json (`info`, and the versions `env`, which a resumed run may
    change); True when the directory holds this run already."""
    path = out / "run.json"
    if path.exists():
        old = read_json(path)
        diff = [k for k in (*info, "set") if old.get(k) != info.get(k)]  # "set" only when given
        if diff:
            k = diff[0]
            raise LrbenchError(f"{out} holds a run with {k}={old.get(k)!r}, not {info.get(k)!r}; "
                               "use another --out (or delete it)")
        return True
    if resume:
        raise LrbenchError(f"--resume: {out} holds no run to resume")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, {**info, "versions": env} if env else info)
    return False


def check_job(jobdir: Path, description: dict, main: bool, env: dict | None = None) -> None:
    """Validate or create <job>/job.json: a resumed job must have the settings it started with (the
    versions it records may differ)."""
    path = jobdir / "job.json"
    if path.exists():
        old = read_json(path)
        old.pop("versions", None)
        if old != description:
            diff = sorted(k for k in description if old.get(k) != description[k])
            raise LrbenchError(f"{jobdir} was started with other settings ({', '.join(diff)} differ); "
                               "use another --out (or delete it)")
    elif main:
        jobdir.mkdir(parents=True, exist_ok=True)
        write_json(path, {**description, "versions": env} if env else description)


SINKS = ("tensorboard",)  # where else the log goes, beside log.jsonl (`--log`)


class TensorBoardSink:
    """`--log tensorboard`: each job's loss, LR, steps/s and validation metric as TensorBoard scalars
    in RUNDIR/tensorboard/<job>/ (`pip install 'lrbench-synth[tensorboard]'`). A resumed job's
    events past its checkpoint are purged, as its log.jsonl lines are."""

    def __init__(self, root: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LrbenchError("--log tensorboard needs tensorboard: pip install 'lrbench-synth[tensorboard]'",
                               RUNTIME) from None
        self.writer_class, self.root = SummaryWriter, root
        self.writers: dict = {}
        self.purge: dict[str, int] = {}

    def resume(self, job: str, after_step: int) -> None:
        self.purge[job] = after_step + 1

    def write(self, record: dict) -> None:
        job, step = record["job"], record["step"]
        if job not in self.writers:
            self.writers[job] = self.writer_class(str(self.root / job), purge_step=self.purge.get(job))
        w = self.writers[job]
        w.add_scalar("train/loss", record["loss"], step)
        w.add_scalar("train/lr", record["lr"], step)
        w.add_scalar("train/steps_per_s", record["steps_per_s"], step)
        if record["val"] is not None:
            w.add_scalar(f"val/{record['metric']}", record["val"], step)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


class RunLog:
    """log.jsonl: one JSON record per logged step of every job (task, model, step, loss, lr,
    steps_per_s, metric, val), and the same records to each of `sinks` (SINKS); only rank 0 writes."""

    def __init__(self, path: Path, main: bool, sinks: tuple[str, ...] = ()):
        self.path, self.main = path, main
        unknown = [s for s in sinks if s not in SINKS]
        if unknown:
            raise LrbenchError(f"--log {unknown[0]}: unknown; valid: {', '.join(SINKS)}")
        self.sinks = [TensorBoardSink(path.parent / "tensorboard") for s in sinks if s == "tensorboard"] \
            if main else []

    def append(self, record: dict) -> None:
        if self.main:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            for sink in self.sinks:
                sink.write(record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def trim(self, job: str, after_step: int) -> None:
        """Drop a job's lines past the checkpoint a resumed run restarts from."""
        for sink in self.sinks:
            sink.resume(job, after_step)
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
    lines = ["| task | config | model | preset | metric | test | paper | val | best step | steps | ms/step | seconds | seed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
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
                     f"{r.get('ms_per_step', '')} | {r['seconds']:.0f} | {r.get('seed', '')} |")
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
    atomic_write_bytes(out / "results.md", (results_markdown(every) + _versions_line(every)).encode())


def write_seeds(out: Path, rows: list[dict]) -> None:
    """results.json and results.md of a run over several seeds: the cells' mean ± std and failed seeds
    (lrbench.evaluate.summary), then every seed's rows."""
    cells = summarize(rows)
    write_json(out / "results.json", {"summary": cells, "rows": rows})
    text = summary_markdown(cells) + "\n" + results_markdown(rows) + _versions_line(rows)
    atomic_write_bytes(out / "results.md", text.encode())


def _versions_line(rows: list[dict]) -> str:
    env = next((r["versions"] for r in rows if isinstance(r.get("versions"), dict)), None)
    if not env:
        return ""
    return "\n" + ", ".join(f"{k} {v}" for k, v in env.items() if v is not None) + "\n"
