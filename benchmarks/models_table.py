"""Every baseline on Shift, CumSum, Select and MIPS with the `quick` preset's cells, shrunk to what
a 2-core CPU runs in well under an hour: one table of test R² (models × tasks).

Each cell is `lrbench.presets.get_preset("quick").setting(task, {}, model)` with, stated in the
table's header, a shorter sequence (--length), a state size capped at --d-state, --steps steps of
batch --batch, and smaller validation/test sets; everything else (width, layers, LR, Δ ranges,
the models' own keys) is quick's. Runs go through `lrbench.evaluate.evaluate` (the library's
harness and protocol); checkpoints are deleted afterwards.

    OMP_NUM_THREADS=1 python benchmarks/models_table.py --out runs/models-table
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from lrbench.baselines import DEFAULTS, MODELS
from lrbench.evaluate import evaluate
from lrbench.presets import Preset, get_preset

TASKS = ("shift", "cumsum", "select", "mips")


def shrunk(args):
    quick = get_preset("quick")

    def cell(task, params, model):
        s = quick.setting(task, params, model)
        model_cfg = dict(s.model)
        n = model_cfg.get("d_state", DEFAULTS[model].get("d_state"))  # the families' own N is their default
        if n is not None:
            model_cfg["d_state"] = min(n, args.d_state)
        train = dataclasses.replace(s.train, steps=args.steps, batch_size=args.batch, eval_every=args.steps // 2,
                                    log_every=min(50, args.steps), val_samples=args.val, test_samples=args.test)
        return dataclasses.replace(s, task_params=dict(s.task_params, length=args.length), model=model_cfg,
                                   train=train)

    return Preset("quick-cpu", f"quick's cells at L={args.length}, N<={args.d_state}, {args.steps} steps of "
                  f"{args.batch}", tuple((t, {}) for t in TASKS), cell)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/models-table")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--d-state", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--val", type=int, default=128)
    ap.add_argument("--test", type=int, default=512)
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    preset = shrunk(a)
    table = {}
    for model in a.models.split(","):
        t0 = time.time()
        rows = evaluate(model, list(TASKS), preset, device="cpu", out=out / model, workers=0)
        for pt in (out / model).rglob("*.pt"):
            pt.unlink()
        table[model] = {r["task"]: (r["test"], r.get("ms_per_step")) for r in rows}
        print(f"{model}: " + ", ".join(f"{t} {v[0]:.3f}" for t, v in table[model].items())
              + f" ({time.time() - t0:.0f} s)", flush=True)
    head = f"test R², {preset.description} (one CPU thread; ms per step in parentheses)"
    lines = [head, "", "| model | " + " | ".join(TASKS) + " |", "|---|" + "---|" * len(TASKS)]
    for model, cells in table.items():
        lines.append(f"| {model} | " + " | ".join(
            f"{cells[t][0]:.3f} ({cells[t][1]:.0f})" if t in cells else "–" for t in TASKS) + " |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps({"settings": vars(a), "cells": table}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
