"""Build results/README.md's tables from the stored runs (results/*/results.json, job.json, log.jsonl).

    python results/table.py            # Markdown on stdout
    python results/table.py --write    # replace the tables in results/README.md (between the markers)

Reads only the stored files and lrbench.presets (the paper's numbers and the settings of the `quick`
and `paper-l512` cells live there); no torch needed. A run directory without results.json (still
running, or interrupted) is not shown.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from lrbench.presets import get_preset

HERE = Path(__file__).resolve().parent
CURVE_STEPS = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 6000)
BEGIN, END = "<!-- table.py: begin -->", "<!-- table.py: end -->"

# Issue 16's GPU cells: Table 1's L = 512 columns where depth matters. Their paper numbers and
# settings (Table 4's L = 2^9 rows: 11K steps, batch 64) come from the paper-l512 preset.
GPU_PRESET = "paper-l512"
GPU_CELLS = (("dlr", "select"), ("dlr", "solve"), ("dlr", "reverse"), ("dlr", "select-fixed"),
             ("attention", "select"), ("attention", "mips"))
# The CPU study varies the quick preset's DLR SelectFixed cell; columns say what each run changed.
CPU_BASE = ("quick", "select-fixed", "dlr")
# Training-loop bookkeeping that does not change what is learned: left out of "changed from quick".
_COSMETIC = {"eval_every", "log_every"}
_SHORT = {"length": "L", "d_model": "H", "d_state": "N", "n_layers": "layers", "batch_size": "batch",
          "kernel_lr": "kernel LR", "lr": "LR", "per_batch": "per-batch R²"}


@dataclasses.dataclass(frozen=True)
class Run:
    """One stored job: its results.json row, its job.json and its validation curve {step: R²}."""

    name: str
    row: dict
    job: dict
    curve: dict


def runs(root: Path = HERE) -> list[Run]:
    """Every job of every finished run directory under root (those with a results.json)."""
    out = []
    for res in sorted(root.glob("*/results.json")):
        run = res.parent
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
        for row in json.loads(res.read_text())["rows"]:
            job = json.loads((run / row["job"] / "job.json").read_text())
            curve = {r["step"]: r["val"] for r in log if r.get("job") == row["job"] and r.get("val") is not None}
            out.append(Run(run.name, row, job, curve))
    return out


def _g(v, fmt="{:.3f}"):
    return "–" if v is None else fmt.format(v)


def _diff(ours, paper):
    return "–" if ours is None or paper is None else f"{ours - paper:+.2f}"


def changes(job: dict) -> str:
    """What a CPU-study job changed from the quick preset's cell, e.g. 'L=256, N=256, steps=6000'."""
    task, model = CPU_BASE[1:]
    base = get_preset(CPU_BASE[0]).cell(task, {}, model)
    pairs = [(k, v, base.task_params.get(k)) for k, v in job["task_config"].items() if k in base.task_params]
    pairs += [(k, v, base.model.get(k)) for k, v in job["model_config"].items()]
    dt = (job["model_config"].get("dt_min"), job["model_config"].get("dt_max"))
    if dt != (base.model.get("dt_min"), base.model.get("dt_max")):
        pairs = [p for p in pairs if p[0] not in ("dt_min", "dt_max")] + [("Δ", f"{dt[0]:g}–{dt[1]:g}", None)]
    pairs += [(k, v, b) for k, v in job["train"].items() if k not in _COSMETIC
              for b in [dataclasses.asdict(base.train).get(k)]]
    pairs.append(("seed", job["seed"], 0))
    out = []
    for k, v, b in pairs:
        if v == b:
            continue
        v = "yes" if v is True else f"{v:g}" if isinstance(v, float) else v
        out.append(f"{_SHORT.get(k, k)}={v}")
    return ", ".join(out) or "none (the quick cell)"


def gpu_table(all_runs: list[Run]) -> list[str]:
    preset = get_preset(GPU_PRESET)
    # Table 1 reports validation R² (averaged over batches; paper-l512 scores per batch too), so the
    # difference is taken on ours; the test R² of the same checkpoint is shown beside it.
    lines = ["| model | layers | task | paper (Table 1) | ours: val R² | ours − paper | ours: test R² | status |",
             "|---|---|---|---|---|---|---|---|"]
    for model, task in GPU_CELLS:
        s = preset.cell(task, {}, model)
        done = [r for r in all_runs if (r.row["preset"], r.row["model"], r.row["task"]) == (GPU_PRESET, model, task)
                and r.row["task_config"].get("length") == s.task_params["length"]]
        full = [r for r in done if r.row["steps"] >= s.train.steps]
        if full:
            r = full[-1]
            ours, test = r.row["val"], r.row["test"]
            status = f"run `{r.name}`: {r.row['steps']} steps on {r.row['device']}, {r.row['seconds'] / 60:.0f} min"
        else:
            ours = test = None
            status = f"not yet run: {s.train.steps} steps, batch {s.train.batch_size} need a GPU (none in this session)"
            if done:
                status += f"; `{done[-1].name}` stopped at {done[-1].row['steps']} steps"
        lines.append(f"| {model} | {s.model['n_layers']} | {task} | {s.paper:g} | {_g(ours)} "
                     f"| {_diff(ours, s.paper)} | {_g(test)} | {status} |")
    return lines


def cpu_table(study: list[Run]) -> list[str]:
    lines = ["| run | changed from quick | steps | best step | val R² | test R² | paper (ref.) | val − paper "
             "| minutes | ms/step |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in study:
        lines.append(f"| {r.name} | {changes(r.job)} | {r.row['steps']} | {r.row['best_step']} | {_g(r.row['val'])} "
                     f"| {_g(r.row['test'])} | {_g(r.row['paper'], '{:g}')} | {_diff(r.row['val'], r.row['paper'])} "
                     f"| {r.row['seconds'] / 60:.1f} | {r.row['ms_per_step']:.0f} |")
    return lines


def curve_table(study: list[Run]) -> list[str]:
    steps = [s for s in CURVE_STEPS if any(s in r.curve for r in study)]
    lines = ["| run | " + " | ".join(str(s) for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for r in study:
        lines.append(f"| {r.name} | " + " | ".join(_g(r.curve.get(s)) for s in steps) + " |")
    return lines


def render(root: Path = HERE) -> str:
    """The Markdown that goes between README.md's markers."""
    all_runs = runs(root)
    study = sorted((r for r in all_runs if (r.row["task"], r.row["model"]) == CPU_BASE[1:]
                    and r.row["preset"].startswith("cpu-")),
                   key=lambda r: (-r.row["task_config"]["length"], r.name))
    ref = get_preset("paper").cell(CPU_BASE[1], {}, CPU_BASE[2])  # the cell behind quick's paper number
    m, t = ref.model, ref.train
    envs = {json.dumps({k: e.get(k) for k in ("torch", "cpu_count", "torch_threads")}, sort_keys=True)
            for e in (json.loads(p.read_text()) for p in sorted(root.glob("*/env.json")))}
    machine = "; ".join(", ".join(f"{k} {v}" for k, v in json.loads(e).items()) for e in sorted(envs))
    out = [f"### Issue 16's GPU cells (`{GPU_PRESET}` preset)", "", *gpu_table(all_runs), "",
           f"### CPU study: DLR on SelectFixed, varying the `{CPU_BASE[0]}` cell", "",
           f"Validation and test R² of the best-validation checkpoint; exact R² over each split unless "
           f"`per-batch R²=yes`. "
           f"`paper (ref.)` is the number `{CPU_BASE[0]}` is compared with: {ref.paper_source}, a different "
           f"setting (L={ref.task_params['length']}, H={m['d_model']}, N={m['d_state']}, LR {t.lr:g}, "
           f"batch {t.batch_size}, {t.steps} steps). Machine (env.json): {machine or 'not recorded'}.", "",
           *cpu_table(study), "",
           "Validation R² during training (constant LR, so the value at step s is what a run stopped at s "
           "would have seen; – where the run did not evaluate at s):", "",
           *curve_table(study)]
    return "\n".join(out) + "\n"


def write_readme(root: Path = HERE) -> None:
    """Replace the text between BEGIN and END in root/README.md with render(root)."""
    path = root / "README.md"
    text = path.read_text(encoding="utf-8")
    head, found, rest = text.partition(BEGIN)
    if not found or END not in rest:
        raise SystemExit(f"{path}: markers {BEGIN} ... {END} not found")
    tail = rest.partition(END)[2]
    path.write_text(f"{head}{BEGIN}\n{render(root)}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_readme()
    else:
        sys.stdout.write(render())
