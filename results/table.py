"""Print results/README.md's tables from the stored runs (results/*/results.json, job.json, log.jsonl).

    python results/table.py            # Markdown on stdout

Reads only the files in this directory; no torch needed.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CURVE_STEPS = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000)

# Issue 16's GPU cells: Table 1 (columns "DLR 6 layers, L=2^9" and "ATTENTION 2 layers, L=2^9"),
# Table 4 rows "DLR | 2^9 | 6 | 2^7 | 2^12 | 1e-5 | 1e-5 | 5e-5 | 64 | 11K" and
# "ATTENTION | 2^9 | 2 | 2^7 | | | | 1e-3 | 64 | 11K".
GPU_CELLS = [
    ("dlr", 6, "select", 0.86), ("dlr", 6, "solve", 0.95), ("dlr", 6, "reverse", 0.95),
    ("dlr", 6, "select-fixed", 1.0), ("attention", 2, "select", 0.97), ("attention", 2, "mips", 0.97),
]


def _g(v, fmt="{:.3f}"):
    return "–" if v is None else fmt.format(v)


def _lr(v):
    return "same" if v is None else f"{v:g}"


def runs():
    """(name, row, job, log records with a val) for every stored run, sorted by name."""
    out = []
    for res in sorted(HERE.glob("*/results.json")):
        run = res.parent
        for row in json.loads(res.read_text())["rows"]:
            job = json.loads((run / row["job"] / "job.json").read_text())
            log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
            curve = {r["step"]: r["val"] for r in log if r.get("job") == row["job"] and r.get("val") is not None}
            out.append((run.name, row, job, curve))
    return out


def main():
    rows = runs()
    print("| run | L | H | N | layers | Δ range | LR | kernel LR | batch | seed | R² | steps | best step "
          "| val R² | test R² | last val R² | seconds | ms/step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row, job, curve in rows:
        m, t = job["model_config"], job["train"]
        dt = f"{m['dt_min']:g}" if m["dt_min"] == m["dt_max"] else f"{m['dt_min']:g}–{m['dt_max']:g}"
        last = curve[max(curve)] if curve else None
        print(f"| {name} | {job['task_config']['length']} | {m['d_model']} | {m['d_state']} | {m['n_layers']} "
              f"| {dt} | {t['lr']:g} | {_lr(t['kernel_lr'])} | {t['batch_size']} | {job['seed']} "
              f"| {'per-batch' if t['per_batch'] else 'exact'} | {row['steps']} | {row['best_step']} "
              f"| {_g(row['val'])} | {_g(row['test'])} | {_g(last)} | {row['seconds']:.0f} "
              f"| {row['ms_per_step']:.0f} |")
    print()
    print("Validation R² during training (evaluated every `eval_every` steps; constant LR, so the value at "
          "step s is what a run stopped at s would have seen):")
    print()
    steps = [s for s in CURVE_STEPS if any(s in c for _, _, _, c in rows)]
    print("| run | " + " | ".join(f"{s}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for name, _, _, curve in rows:
        print(f"| {name} | " + " | ".join(_g(curve.get(s)) for s in steps) + " |")
    print()
    print("Issue 16's GPU cells (L = 512, 11K steps, batch 64, Table 4's L = 2^9 rows):")
    print()
    print("| model | layers | task | paper (Table 1) | ours | status |")
    print("|---|---|---|---|---|---|")
    for model, layers, task, paper in GPU_CELLS:
        print(f"| {model} | {layers} | {task} | {paper:g} | – | not run: no GPU in this session |")


if __name__ == "__main__":
    main()
