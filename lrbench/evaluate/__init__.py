"""Train a baseline (or your own model) on a task, select it on validation, report its test metric.

    from lrbench.evaluate import evaluate
    rows = evaluate("dlr", tasks=["shift"], preset="quick", out="runs/dlr-quick")

Protocol (SPEC §9; paper §3.3, §3.4, §A.5):
  train   one fresh batch per step. Step s of a global batch B uses the train samples
          s·B ... s·B + B - 1 (lrbench.torch_data, the same batches a user's loop gets): for a task
          whose train split is a stream (the atomic tasks) task.sample(i, "train", seed); for a
          finite train split (ListOps-Subtrees, Pathfinder-Segmentation) its samples (on disk with
          `data`, else generated on the fly: the same samples), in a new order every epoch.
  select  every `eval_every` steps (and at the end) the task's first metric on a fixed validation
          set, val samples 0..n-1; the best weights are kept.
  test    the metrics of the best weights on test samples 0..n-1.
Loss: MSE for regression, cross-entropy with ignore_index -100 for tagging. AdamW over
`lrbench.baselines.param_groups` (no weight decay on kernel parameters); constant LR or cosine
with linear warmup, as the preset says (`lrbench.presets`).

A batch's samples depend on the step alone: not on the DDP world size (rank r of W takes its
B/W slice), the number of loader workers, or restarts. A resumed run on CPU therefore repeats
the uninterrupted one exactly.

Run directory (`out`):
  run.json             model, preset, seed, steps and --set; a rerun with other values is refused;
                       also the versions (lrbench, torch, Python, numpy, CUDA, GPU) it ran with
  log.jsonl            one line per logged step: task, model, step, loss (the mean since the
                       previous line), lr, steps_per_s, val
  <job>/job.json       the job's full setting (must match on resume)
  <job>/last.pt        model, optimizer, step, best metric, RNG state (torch.save of tensors and
                       plain values; loaded with weights_only=True)
  <job>/best.pt        the best-validation weights;  <job>/row.json once the job is done
  results.json         {"rows": [{task, model, preset, metric, val, test, paper, steps, seconds, seed,
                       threads, versions, ...}]}
  results.md           the same rows as a Markdown table, the paper's numbers beside ours
A rerun with the same `out` skips finished jobs and resumes the others from their last checkpoint,
saved at every evaluation and whenever two minutes have passed since the last one.
With seeds > 1, `out` holds seed-<k>/ (one such directory per seed), results.json (every seed's
rows, and "summary": mean ± std and failed seeds per cell, lrbench.evaluate.summary) and results.md.

Multi-GPU: run under `torchrun`; WORLD_SIZE/RANK/LOCAL_RANK select DDP (NCCL on CUDA, gloo on
CPU). Rank 0 writes files; metrics are merged over ranks from their accumulators' sums.

The package, each module readable on its own:
  plan.py      what is trained: the model, the tasks and their data, the device; the jobs
  data.py      a job's batches (lrbench.torch_data) and how they meet the model on the device
  model.py     the job's model: built, called, checked, its loss and metrics
  loop.py      one job: train, validate, checkpoint, test; its results row
  results.py   the run directory: run.json, job.json, log.jsonl, results.json and .md
torch is imported when `evaluate` runs, not when this package is imported.
"""


from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from lrbench.evaluate.plan import (TORCH_HINT, Dist, Job, ModelSpec, default_preset, import_torch, init_dist,
                                   model_spec, plan, resolve_device, resolve_model)
from lrbench.evaluate.results import (RunLog, check_job, check_run, read_json, results_markdown, versions,
                                      write_json, write_results, write_seeds)
from lrbench.errors import LrbenchError
from lrbench.presets import Preset, get_preset

__all__ = ["evaluate", "plan", "results_markdown", "default_preset", "resolve_model", "resolve_device", "Job",
           "ModelSpec", "TORCH_HINT"]


def evaluate(model, tasks: list[str] | None = None, preset: str | Preset | None = None, *,
             device: str | None = None, data: str | Path | None = None, out: str | Path | None = None,
             steps: int | None = None, seed: int = 0, seeds: int = 1, overrides: dict[str, str] | None = None,
             threads: int | None = None, log: tuple[str, ...] = (), resume: bool = False,
             workers: int | None = None, on_event: Callable[[dict], None] | None = None) -> list[dict]:
    """Run the evaluation and return its result rows (see the module docstring).

    `model`: a baseline name, "package.module:factory", a factory callable or a torch module.
    `seeds` > 1 runs seeds seed .. seed + seeds - 1, each into out/seed-<k>, and writes the rows of
    all of them, with their mean ± std, into `out`. `overrides`: {key: value text} as `--set` gives
    them (lrbench.presets.Setting.with_overrides). `threads`: torch's CPU threads during the run.
    `log`: sinks beside log.jsonl, e.g. ("tensorboard",).
    `on_event(dict)` receives progress: {"event": "plan" | "start" | "step" | "skip" | "done", ...}.
    Raises LrbenchError (code 2: bad input; 1: runtime failure).
    """
    torch = import_torch()
    emit = on_event or (lambda e: None)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise LrbenchError(f"--seeds must be a positive integer (got {seeds})")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise LrbenchError(f"--threads must be a positive integer (got {threads})")
    ctx = init_dist(torch, device)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        chosen, why = _preset(preset, ctx)
        spec = model_spec(model)
        jobs = plan(spec, tasks, chosen, seed, Path(data) if data is not None else None, steps, overrides)
        seed, steps = int(seed), None if steps is None else int(steps)  # numpy integers included (checked)
        workers = _workers(workers, ctx)
        out = Path(out) if out is not None else Path("runs") / f"{spec.label}-{chosen.name}"
        env = versions(torch, ctx.device)
        _check_layout(out, seeds)
        dirs = {k: out if seeds == 1 else out / f"seed-{k}" for k in range(seed, seed + seeds)}
        resuming = [check_run(d, _info(spec, chosen, k, steps, overrides), resume, False) for k, d in dirs.items()]
        emit({"event": "plan", "preset": chosen.name, "preset_reason": why, "description": chosen.description,
              "device": str(ctx.device), "world_size": ctx.world, "out": str(out), "jobs": [j.key for j in jobs],
              "seeds": list(range(seed, seed + seeds)), "threads": torch.get_num_threads(),
              "resuming": any(resuming),
              "notes": _plan_notes(jobs[0], chosen)})
        if seeds == 1:
            return _run_seed(torch, spec, jobs, ctx, out, chosen, seed, steps, overrides, resume, workers, env,
                             tuple(log), emit)
        rows = []
        for k in range(seed, seed + seeds):
            if k != seed:  # each seed its own data and initialisation
                jobs = plan(spec, tasks, chosen, k, Path(data) if data is not None else None, steps, overrides)
            rows += _run_seed(torch, spec, jobs, ctx, out / f"seed-{k}", chosen, k, steps, overrides, resume,
                              workers, env, tuple(log), emit)
        if ctx.main:
            write_seeds(out, rows)
        return rows
    finally:
        torch.set_num_threads(before)
        if ctx.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _check_layout(out: Path, seeds: int) -> None:
    """A directory holds one seed's run (run.json) or several (seed-<k>/), not a mix."""
    if seeds > 1 and (out / "run.json").exists():
        raise LrbenchError(f"{out} holds a single-seed run; use another --out for --seeds {seeds}")
    if seeds == 1 and any(out.glob("seed-*/run.json")):
        raise LrbenchError(f"{out} holds a run over several seeds (seed-*/); rerun it with --seeds, or use "
                           "another --out")


def _run_seed(torch, spec: ModelSpec, jobs: list[Job], ctx: Dist, out: Path, chosen: Preset, seed: int,
              steps: int | None, overrides: dict | None, resume: bool, workers: int, env: dict,
              sinks: tuple[str, ...], emit: Callable[[dict], None]) -> list[dict]:
    """One seed's run directory: checked (or created), then its jobs."""
    check_run(out, _info(spec, chosen, seed, steps, overrides), resume, ctx.main, env)
    return _run_jobs(torch, jobs, ctx, out, chosen.name, seed, workers, env, sinks, emit)


def _info(spec: ModelSpec, chosen: Preset, seed: int, steps: int | None, overrides: dict | None) -> dict:
    """run.json's identity of a run: a rerun with other values is refused."""
    info = {"model": spec.name, "preset": chosen.name, "seed": seed, "steps": steps}
    if overrides:
        info["set"] = dict(overrides)
    return info


def _plan_notes(job: Job, chosen: Preset) -> list[str]:
    """What a user should know before the run: a custom model trains with another model's settings."""
    notes = list(job.setting.notes)
    if job.model.factory is not None:
        t = job.setting.train
        notes.append(f"{job.model.name} trains with DLR's settings of preset {chosen.name} (lr {t.lr:g}, batch "
                     f"{t.batch_size}, {t.steps} steps, weight decay {t.weight_decay:g}); change them with --set, "
                     "and pass your model's keys (e.g. --set d_model=128) to its factory the same way")
    return notes


def _preset(preset: str | Preset | None, ctx: Dist) -> tuple[Preset, str]:
    """The preset and why it was chosen: given, or the device's default."""
    if isinstance(preset, Preset):
        return preset, "given"
    if preset is None:
        name, why = default_preset(ctx.device)
    else:
        name, why = preset, "given"
    return get_preset(name), why


def _workers(workers: int | None, ctx: Dist) -> int:
    """Loader processes per rank: up to 8 on CUDA (one core left), none on CPU, unless given."""
    if workers is None:
        return 0 if ctx.device.type != "cuda" else max(0, min(8, (os.cpu_count() or 1) // ctx.world - 1))
    if workers < 0:
        raise LrbenchError(f"--workers must be >= 0 (got {workers})")
    return workers


def _run_jobs(torch, jobs: list[Job], ctx: Dist, out: Path, preset: str, seed: int, workers: int, env: dict,
              sinks: tuple[str, ...], emit: Callable[[dict], None]) -> list[dict]:
    """Each job in turn: skipped when its row exists, else run (resuming from its checkpoint)."""
    from lrbench.evaluate.loop import Runner

    rows, log = [], RunLog(out / "log.jsonl", ctx.main, sinks)
    try:
        for i, job in enumerate(jobs):
            jobdir = out / job.key
            check_job(jobdir, job.description(preset, seed), ctx.main, env)
            done = jobdir / "row.json"
            where = {"job": job.key, "index": i, "total": len(jobs)}
            if done.exists():
                row = read_json(done)
                emit({"event": "skip", **where, "row": row})
            else:
                runner = Runner(torch, job, ctx, jobdir, log, preset, seed, workers,
                                lambda e, i=i: emit({**e, "index": i, "total": len(jobs)}))
                row = dict(runner.run(), threads=torch.get_num_threads(), versions=env)
                if ctx.main:
                    write_json(done, row)
                emit({"event": "done", **where, "row": row})
            rows.append(row)
            if ctx.main:
                write_results(out, rows)
    finally:
        log.close()
    return rows
