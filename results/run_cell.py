"""Run one DLR SelectFixed cell with settings the CLI cannot override, through lrbench.evaluate.

    OMP_NUM_THREADS=1 python results/run_cell.py NAME [--length 256] [--d-model 64] [--d-state 512]
        [--layers 1] [--lr 2e-3] [--kernel-lr X] [--batch 32] [--steps 1000] [--eval-every 250]
        [--dt-min 1e-5] [--dt-max 1e-5] [--seed 0] [--per-batch] [--val 256] [--test 1024]

Defaults are the `quick` preset's DLR cell (lrbench/presets.py) except --length. The run goes to
results/NAME through `lrbench.evaluate.evaluate(model, [task], Preset)`: the harness, protocol
and files are the library's own; only the Setting differs. Checkpoints (*.pt) are deleted after
the run (results/.gitignore keeps them out of git anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from lrbench.evaluate import evaluate
from lrbench.presets import Preset, Setting, Train

HERE = Path(__file__).resolve().parent


def environment() -> dict:
    """Versions and machine of a run (written beside its results)."""
    import lrbench

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"torch": torch.__version__, "python": platform.python_version(), "lrbench": lrbench.__version__
            if hasattr(lrbench, "__version__") else None, "git_commit": commit, "device": "cpu",
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "loadavg_at_end": os.getloadavg()}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--task", default="select-fixed")
    p.add_argument("--model", default="dlr")
    p.add_argument("--length", type=int, default=512)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--d-state", type=int, default=512)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dt-min", type=float, default=1e-5)
    p.add_argument("--dt-max", type=float, default=1e-5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--kernel-lr", type=float, default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--val", type=int, default=256)
    p.add_argument("--test", type=int, default=1024)
    p.add_argument("--per-batch", action="store_true", help="the paper's per-batch R², averaged")
    p.add_argument("--seed", type=int, default=0, help="model init AND data seed (fixed positions)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    model_cfg = dict(d_model=a.d_model, n_layers=a.layers)
    if a.model != "attention":
        model_cfg.update(d_state=a.d_state, dt_min=a.dt_min, dt_max=a.dt_max)
    else:
        model_cfg.update(n_heads=4)
    train = Train(lr=a.lr, batch_size=a.batch, steps=a.steps, kernel_lr=a.kernel_lr,
                  eval_every=min(a.eval_every, a.steps), log_every=min(50, a.steps),
                  val_samples=a.val, test_samples=a.test, per_batch=a.per_batch)

    def cell(task, params, model):
        return Setting(task, dict(params, length=a.length), dict(model_cfg), train, paper=0.97,
                       paper_source="Table 1 (DLR, 1 layer, L=4096; reference)")

    preset = Preset(f"cpu-{a.name}", "issue 16 CPU study: " + " ".join(sys.argv[2:]),
                    ((a.task, {}),), cell)
    out = HERE / a.name
    t0 = time.time()

    def on_event(e):
        if e.get("event") == "step" and e["step"] % max(a.eval_every, 1) == 0:
            print(f"  step {e['step']}/{e['steps']} val={e['val']} {e['steps_per_s']:.2f} it/s "
                  f"({time.time() - t0:.0f}s)", flush=True)

    rows = evaluate(a.model, [a.task], preset, device="cpu", out=out, seed=a.seed, workers=0,
                    on_event=on_event)
    for pt in out.rglob("*.pt"):
        pt.unlink()
    r = rows[0]
    # the driver's arguments, so the table can show them without parsing job.json
    (out / "args.json").write_text(json.dumps(vars(a), indent=2) + "\n")
    (out / "env.json").write_text(json.dumps(environment(), indent=2) + "\n")
    print(f"{a.name}: val {r['val']:.4f} test {r['test']:.4f} best_step {r['best_step']} "
          f"{r['seconds']:.0f}s {r['ms_per_step']} ms/step")


if __name__ == "__main__":
    main()
