"""Train a baseline (or your own model) on a task, select it on validation, report its test metric.

    from lrbench.evaluate import evaluate
    rows = evaluate("dlr", tasks=["shift"], preset="quick", out="runs/dlr-quick")

Protocol (SPEC §9; paper §3.3, §3.4, §A.5):
  train   one fresh batch per step. Step s of a global batch B uses the train samples
          s·B ... s·B + B - 1: for the atomic tasks the endless stream task.sample(i, "train", seed);
          for ListOps-Subtrees / Pathfinder-Segmentation their finite train split (on disk with
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
  run.json             model, preset and seed; a rerun with other values is refused
  log.jsonl            one line per logged step: task, model, step, loss, lr, steps_per_s, val
  <job>/job.json       the job's full setting (must match on resume)
  <job>/last.pt        model, optimizer, step, best metric, RNG state (torch.save of tensors and
                       plain values; loaded with weights_only=True)
  <job>/best.pt        the best-validation weights;  <job>/row.json once the job is done
  results.json         {"rows": [{task, model, preset, metric, val, test, paper, steps, seconds, ...}]}
  results.md           the same rows as a Markdown table, the paper's numbers beside ours
A rerun with the same `out` skips finished jobs and resumes the others from their last checkpoint.

Multi-GPU: run under `torchrun`; WORLD_SIZE/RANK/LOCAL_RANK select DDP (NCCL on CUDA, gloo on
CPU). Rank 0 writes files; metrics are merged over ranks from their accumulators' sums.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lrbench import metrics as M
from lrbench.errors import RUNTIME, LrbenchError
from lrbench.presets import Preset, Setting, get_preset
from lrbench.registry import REGISTRY, Task, canonical_name, config_dict, get_task
from lrbench.storage import atomic_write_bytes

TORCH_HINT = "lrbench evaluate needs PyTorch: pip install 'lrbench-synth[torch]'"
CHECKPOINT_FORMAT = 1


def _torch():
    try:
        import torch
    except ImportError:
        raise LrbenchError(TORCH_HINT, RUNTIME) from None
    return torch


# ---------------------------------------------------------------------------------------------
# what is trained: models, tasks, devices


@dataclass(frozen=True)
class ModelSpec:
    name: str  # "dlr", or "package.module:factory"
    factory: Callable | None = None  # a custom model's factory(d_input, d_output, task)

    @property
    def label(self) -> str:
        """A file-name-safe name."""
        return self.name.replace(":", "-").replace("/", "-")


def resolve_model(name: str) -> ModelSpec:
    """A baseline name, or `package.module:factory` imported (the working directory is importable)."""
    if ":" not in name:
        from lrbench.baselines import MODELS

        if name not in MODELS:
            raise LrbenchError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}, "
                               "or package.module:factory for your own")
        return ModelSpec(name)
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise LrbenchError(f"--model {name!r}: a custom model is written package.module:factory")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any import failure is bad input
        raise LrbenchError(f"cannot import {module_name!r} for --model {name}: {type(exc).__name__}: {exc}") from None
    except SystemExit as exc:  # not a reason to end the evaluation as if it had succeeded
        raise LrbenchError(f"importing {module_name!r} for --model {name} called sys.exit({exc.code!r})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise LrbenchError(f"--model {name}: module {module_name} has no callable {attr!r}")
    return ModelSpec(name, factory)


@dataclass(frozen=True)
class View:
    """How a task's samples meet a model. mode: "signal" (float [B, T, C]), "tokens" (ids [B, T])
    or "image" (uint8 [B, M, M] read row-major as [B, M², 1], scaled to [0, 1])."""

    mode: str
    d_input: int  # channels, or the vocabulary size for tokens
    d_output: int  # target channels, or classes
    t_out: int | None  # the targets cover the last t_out positions (None: all of them)
    num_classes: int | None


def task_view(task: Task) -> View:
    """The task's own facts (lrbench.registry), as the harness uses them."""
    d_input = task.vocab_size if task.view == "tokens" else task.d_input
    return View(task.view, d_input, task.d_output, task.t_out, task.num_classes)


def resolve_device(torch, device: str | None, local_rank: int = 0):
    if device is None:
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise LrbenchError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if d.type == "cpu":
        return d
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise LrbenchError(f"--device {device}: CUDA is not available here (use --device cpu)")
        index = local_rank if d.index is None or _env_int("WORLD_SIZE", 1) > 1 else d.index
        if index >= torch.cuda.device_count():
            raise LrbenchError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if d.type == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return d
    raise LrbenchError(f"--device {device}: not available here; use cpu or cuda")


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: Any = None
    owns_group: bool = False  # we initialised the process group (and destroy it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    """An integer from the environment (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise LrbenchError(f"{name} must be an integer (got {text!r})") from None


def _init_dist(torch, device: str | None) -> Dist:
    world, rank, local = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise LrbenchError(f"WORLD_SIZE={world}, RANK={rank}, LOCAL_RANK={local}: need WORLD_SIZE >= 1, "
                            "0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0")
    dev = resolve_device(torch, device, local)
    ctx = Dist(rank, world, dev)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
            ctx.owns_group = True
    return ctx


# ---------------------------------------------------------------------------------------------
# data: the step-addressed batches of lrbench.torch_data, on the device


def _prepare(torch, view: View, batch: dict, device):
    """Model inputs and targets on `device` from a batch of tensors in their stored dtypes."""
    x, y = batch["inputs"], batch["targets"]
    if view.mode == "tokens":
        x, y = x.long(), y.long()
    elif view.mode == "image":
        x = x.reshape(x.shape[0], -1, 1).float() / 255.0  # row-major: [B, M², 1]
        y = y.reshape(y.shape[0], -1).long()  # [B, M²]
    else:
        x, y = x.float(), y.float()
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


# ---------------------------------------------------------------------------------------------
# metrics over ranks


def _accumulators(task: Task, view: View, per_batch: int | None) -> dict[str, Any]:
    kw = {} if task.kind == "regression" else {"num_classes": view.num_classes}
    return {m: M.make_accumulator(m, per_batch, **kw) for m in task.metrics}


def _merge_ranks(torch, ctx: Dist, accs: dict[str, Any]) -> None:
    if ctx.world == 1:
        return
    import torch.distributed as dist

    for acc in accs.values():
        local = torch.from_numpy(acc.pack()).to(ctx.device)
        parts = [torch.empty_like(local) for _ in range(ctx.world)]
        dist.all_gather(parts, local)
        acc.merge_packed([p.cpu().numpy() for p in parts])


# ---------------------------------------------------------------------------------------------
# jobs


@dataclass
class Job:
    """One (task, model) run of a preset."""

    setting: Setting
    model: ModelSpec
    task: Task
    view: View
    data_seed: int
    train_path: str | None
    val_path: str | None
    test_path: str | None

    @property
    def key(self) -> str:
        return self.task.dir_name(self.data_seed)

    def description(self, preset: str, seed: int) -> dict:
        """Everything that determines the job's results (compared on resume)."""
        return {
            "task": self.task.name, "task_config": config_dict(self.task.config), "model": self.model.name,
            "model_config": self.setting.model, "train": dataclasses.asdict(self.setting.train),
            "preset": preset, "seed": seed, "data_seed": self.data_seed,
            "data": {"train": self.train_path, "val": self.val_path, "test": self.test_path},
        }


def _data_for(data: Path | None, task: Task, seed: int):
    """(dataset dir or None, data seed, task) for one job: `data` is one dataset directory or a
    root holding them under their `lrbench generate` names."""
    if data is None:
        return None, seed, task
    if (data / "manifest.json").exists():
        from lrbench.dataset import open_dataset

        ds = open_dataset(data)
        if ds.task.name != task.name:
            return None, seed, task
        return data, ds.seed, ds.task  # the dataset defines the task's parameters
    candidate = data / task.dir_name(seed)
    return (candidate, seed, task) if (candidate / "manifest.json").exists() else (None, seed, task)


def plan(model: str, tasks: list[str] | None, preset: Preset, seed: int = 0, data: Path | None = None,
         steps: int | None = None) -> list[Job]:
    """The jobs of one evaluation, validated (LrbenchError code 2 on bad input)."""
    spec = resolve_model(model)
    if data is not None and not data.is_dir():
        raise LrbenchError(f"--data {data} is not a directory")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise LrbenchError(f"--steps must be a positive integer (got {steps})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LrbenchError(f"--seed must be a non-negative integer (got {seed})")
    seed, steps = int(seed), None if steps is None else int(steps)
    if tasks:
        try:
            names = list(dict.fromkeys(canonical_name(t) for t in tasks))
        except ValueError as exc:
            raise LrbenchError(str(exc)) from None
        entries = [(name, params) for name in names for params in preset.entries(name)]
    else:
        entries = [(name, params) for name, params in preset.suite if name in REGISTRY]
        if data is not None and (data / "manifest.json").exists():  # one dataset: run its task only
            from lrbench.dataset import open_dataset

            name = open_dataset(data).task.name
            entries = [(name, params) for name, params in preset.entries(name)]
    jobs = []
    for name, params in entries:
        try:
            setting = preset.setting(name, params, spec.name)
            task = get_task(name, **setting.task_params)
        except ValueError as exc:  # the preset's, or the task's parameters
            raise LrbenchError(str(exc)) from None
        if steps is not None:
            setting = dataclasses.replace(setting, train=setting.train.with_steps(steps))
        path, data_seed, task = _data_for(data, task, seed)
        splits = {}
        if path is not None:
            from lrbench.dataset import open_dataset

            ds = open_dataset(path)
            splits = {s: str(path) if s in ds.splits else None for s in ("train", "val", "test")}
            if "train" not in task.finite_splits:
                splits["train"] = None  # a task whose train split is a stream always trains on the stream
            for split in (s for s, p in splits.items() if p):  # here, not in a loader worker hours later
                ds[split].check_shards()
            ds.close()
        jobs.append(Job(setting, spec, task, task_view(task), data_seed,
                        splits.get("train"), splits.get("val"), splits.get("test")))
    if not jobs:
        raise LrbenchError(f"preset {preset.name} has no task registered here")
    return jobs


# ---------------------------------------------------------------------------------------------
# one job


def _after(step, after_step: int) -> bool:
    return isinstance(step, (int, float)) and step > after_step


def _lr_factor(train, step: int) -> float:
    """LR multiplier for the 0-based step `step`."""
    if train.schedule == "constant":
        return 1.0
    if step < train.warmup:
        return (step + 1) / train.warmup
    progress = (step - train.warmup) / max(1, train.steps - train.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _save(torch, path: Path, obj: dict) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load(torch, path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise LrbenchError(f"cannot load checkpoint {path}: {exc}", RUNTIME) from None
    if not isinstance(ckpt, dict):
        raise LrbenchError(f"{path}: not a checkpoint of this job (it holds a {type(ckpt).__name__}); "
                            "delete it to restart the job", RUNTIME)
    return ckpt


@contextmanager
def _restoring(path: Path):
    """A checkpoint that loads but does not fit this job (missing keys, other shapes): one line."""
    try:
        yield
    except KeyError as exc:
        raise LrbenchError(f"{path}: not a checkpoint of this job (it lacks {exc.args[0]!r}); "
                            "delete it to restart the job", RUNTIME) from None
    except (RuntimeError, ValueError, TypeError) as exc:
        raise LrbenchError(f"{path}: not a checkpoint of this job ({' '.join(str(exc).split())}); "
                            "delete it to restart the job", RUNTIME) from None


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def _build_model(torch, job: Job, seed: int):
    view = job.view
    torch.manual_seed(seed)
    if job.model.factory is not None:
        call = f"{job.model.name}({view.d_input}, {view.d_output}, task)"
        try:
            net = job.model.factory(view.d_input, view.d_output, job.task)
        except Exception as exc:
            raise LrbenchError(f"{call} failed: {type(exc).__name__}: {exc}", RUNTIME) from None
        except SystemExit as exc:
            raise LrbenchError(f"{call} called sys.exit({exc.code!r})", RUNTIME) from None
        if not isinstance(net, torch.nn.Module):
            raise LrbenchError(f"{job.model.name} returned {type(net).__name__}, not a torch.nn.Module", RUNTIME)
        if not any(p.requires_grad for p in net.parameters()):
            raise LrbenchError(f"{call} has no trainable parameters: there is nothing to train", RUNTIME)
        return net
    from lrbench.baselines import build

    cfg = dict(job.setting.model)
    if view.mode == "tokens":
        cfg["vocab_size"] = view.d_input
    try:
        return build(job.model.name, view.d_input, view.d_output, **cfg)
    except ValueError as exc:
        raise LrbenchError(f"{job.model.name} on {job.task.name}: {exc}") from None


class _Runner:
    """Trains, validates and tests one job; `run()` returns its results row."""

    def __init__(self, torch, job: Job, ctx: Dist, jobdir: Path, log_path: Path, preset: str, seed: int,
                 workers: int, emit: Callable[[dict], None]):
        self.torch, self.job, self.ctx, self.dir, self.log_path = torch, job, ctx, jobdir, log_path
        self.preset, self.seed, self.workers, self.emit = preset, seed, workers, emit
        self.train = job.setting.train
        self.view = job.view
        self.custom = job.model.factory is not None
        self.pin = ctx.device.type == "cuda"
        if self.train.batch_size % ctx.world:
            raise LrbenchError(f"batch size {self.train.batch_size} does not split over {ctx.world} processes")
        self.per_rank = self.train.batch_size // ctx.world
        self.eval_batch = self.train.eval_batch or self.train.batch_size

    # -- pieces ------------------------------------------------------------------------------

    def source(self, split: str, path: str | None):
        from lrbench.dataset import open_dataset
        from lrbench.torch_data import Source

        task = self.job.task
        view = open_dataset(path)[split] if path is not None else None
        epoch = None
        if split == "train" and "train" in task.finite_splits:  # a finite train split, as in the paper
            epoch = len(view) if view is not None else task.default_splits["train"]
        return Source(task, split, self.job.data_seed, view, epoch)

    def eval_batches(self, split: str, path: str | None, wanted: int):
        from lrbench.torch_data import evaluation_batches

        source = self.source(split, path)
        n = wanted if source.view is None else min(wanted, len(source.view))
        return evaluation_batches(source, self.eval_batch, n, self.ctx.rank, self.ctx.world)

    def forward(self, net, x):
        if self.custom:
            y = net(x)
            self.check_tensor(y)
            if self.view.t_out is not None:
                y = y[:, y.shape[1] - self.view.t_out:]
            return y
        return net(x, t_out=self.view.t_out)

    def check_tensor(self, y) -> None:
        where = f"{self.job.model.name} on {self.job.task.name}"
        if not isinstance(y, self.torch.Tensor):
            raise LrbenchError(f"{where}: the model returned a {type(y).__name__}, not a tensor "
                                "[B, T, d_output]", RUNTIME)
        if not y.is_floating_point():
            raise LrbenchError(f"{where}: the model returned a {y.dtype} tensor; it must return floating-point "
                                "values (regression values or logits)", RUNTIME)

    def check_output(self, y, target):
        self.check_tensor(y)
        if self.torch.is_grad_enabled() and not y.requires_grad:
            raise LrbenchError(f"{self.job.model.name} on {self.job.task.name}: the output does not depend on the "
                                "model's parameters (no gradient to train with)", RUNTIME)
        want = tuple(target.shape) + (() if self.view.mode == "signal" else (self.view.d_output,))
        if tuple(y.shape) != want:
            raise LrbenchError(f"{self.job.model.name} on {self.job.task.name}: output shape {tuple(y.shape)}, "
                                f"expected {want} ([B, T, d_output] with the targets on the last positions)", RUNTIME)

    def loss(self, y, target):
        F = self.torch.nn.functional
        if self.view.mode == "signal":
            return F.mse_loss(y.float(), target)
        logits = y.float().reshape(-1, y.shape[-1])
        flat = target.reshape(-1)
        total = F.cross_entropy(logits, flat, ignore_index=M.IGNORE_INDEX, reduction="sum")
        count = (flat != M.IGNORE_INDEX).sum().float()
        if self.ctx.world > 1:  # mean over the global batch's tokens, whatever each rank holds
            import torch.distributed as dist

            dist.all_reduce(count)
        return total * self.ctx.world / count.clamp_min(1.0)

    def mean_over_ranks(self, value) -> float:
        value = value.detach()
        if self.ctx.world > 1:
            import torch.distributed as dist

            value = value.clone()
            dist.all_reduce(value)
            value /= self.ctx.world
        return float(value)

    def measure(self, net, batches) -> dict[str, float]:
        torch = self.torch
        per_batch = self.eval_batch if self.train.per_batch else None
        accs = _accumulators(self.job.task, self.view, per_batch)
        net.eval()
        with torch.no_grad():
            for batch in batches:
                x, y = _prepare(torch, self.view, batch, self.ctx.device)
                out = self.forward(net, x)
                self.check_output(out, y)
                pred = out.argmax(-1) if self.view.mode != "signal" else out.float()
                pred, target = pred.cpu().numpy(), y.cpu().numpy()
                for acc in accs.values():
                    try:
                        acc.update(pred, target)
                    except ValueError as exc:  # NaN/inf predictions
                        raise LrbenchError(f"{self.job.task.name}/{self.job.model.name}: {exc}", RUNTIME) from None
        net.train()
        _merge_ranks(torch, self.ctx, accs)
        try:
            return {name: float(acc.result()) for name, acc in accs.items()}
        except ValueError as exc:
            raise LrbenchError(f"{self.job.task.name}/{self.job.model.name}: {exc}", RUNTIME) from None

    def log(self, record: dict) -> None:
        if self.ctx.main:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def trim_log(self, after_step: int) -> None:
        """Drop this job's log lines past the checkpoint a resumed run restarts from."""
        if not (self.ctx.main and self.log_path.exists()):
            return
        keep = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # not a record of this job: not ours to drop
                rec = None
            if not (isinstance(rec, dict) and rec.get("job") == self.job.key and _after(rec.get("step"), after_step)):
                keep.append(line)
        atomic_write_bytes(self.log_path, ("\n".join(keep) + "\n" if keep else "").encode())

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        torch, ctx, job, train = self.torch, self.ctx, self.job, self.train
        metric = job.task.metric
        net = _build_model(torch, job, self.seed).to(ctx.device)
        from lrbench.baselines import param_groups

        groups = param_groups(net, lr=train.lr, kernel_lr=train.kernel_lr, weight_decay=train.weight_decay)
        opt = torch.optim.AdamW(groups, lr=train.lr)
        base_lrs = [g["lr"] for g in opt.param_groups]
        model = net
        if ctx.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

        state = {"step": 0, "best": None, "best_step": 0, "elapsed": 0.0, "train_seconds": 0.0, "trained": 0}
        best_weights = None
        last, best_path = self.dir / "last.pt", self.dir / "best.pt"
        resumed = None
        if last.exists():
            ckpt = _load(torch, last)
            if ckpt.get("format") != CHECKPOINT_FORMAT:
                raise LrbenchError(f"{last}: unknown checkpoint format {ckpt.get('format')!r}", RUNTIME)
            with _restoring(last):
                net.load_state_dict(ckpt["model"])
                opt.load_state_dict(ckpt["optimizer"])
                torch.set_rng_state(ckpt["rng"]["torch"])
                if ctx.device.type == "cuda" and "cuda" in ckpt["rng"]:
                    torch.cuda.set_rng_state(ckpt["rng"]["cuda"], ctx.device)
                state.update({k: ckpt[k] for k in state})
            if best_path.exists():
                with _restoring(best_path):
                    best_weights = _load(torch, best_path)["model"]
            resumed = state["step"]
            self.trim_log(resumed)
        self.emit({"event": "start", "job": job.key, "task": job.task.name, "model": job.model.name,
                   "steps": train.steps, "resume_step": resumed, "checkpoint": str(last) if resumed is not None else None,
                   "data": {"train": job.train_path or "stream", "val": job.val_path or "generated",
                            "test": job.test_path or "generated"}})

        from lrbench.torch_data import StreamDataset, loader

        val_set = list(loader(self.eval_batches("val", job.val_path, train.val_samples), self.workers, self.pin))
        start = state["step"]
        batches = StreamDataset(source=self.source("train", job.train_path), batch_size=train.batch_size,
                                start=start, stop=train.steps, rank=ctx.rank, world_size=ctx.world)
        latest_val = state["best"]
        seg_start, seg_steps, seg_train = time.perf_counter(), 0, 0.0
        tick = time.perf_counter()
        loss = None
        for batch in loader(batches, self.workers, self.pin):
            step = batch["step"]
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * _lr_factor(train, step)
            x, y = _prepare(torch, self.view, batch, ctx.device)
            out = self.forward(model, x)
            if step == start:
                self.check_output(out, y)
            loss = self.loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
            is_eval = done % train.eval_every == 0 or done == train.steps
            if done % train.log_every == 0 or is_eval:
                value = self.mean_over_ranks(loss)  # also waits for the device: timings are honest
                if not math.isfinite(value):
                    raise LrbenchError(f"{job.task.name}/{job.model.name}: training diverged "
                                        f"(loss {value} at step {done})", RUNTIME)
            now = time.perf_counter()
            seg_train += now - tick
            seg_steps += 1
            rate = seg_steps / max(seg_train, 1e-9)
            record = None
            if done % train.log_every == 0 or is_eval:
                record = {"job": job.key, "task": job.task.name, "model": job.model.name, "step": done,
                          "loss": value, "lr": opt.param_groups[0]["lr"], "steps_per_s": round(rate, 3),
                          "metric": metric, "val": None}
            if is_eval:
                val = self.measure(net, val_set)[metric]
                latest_val = val
                record["val"] = val
                if state["best"] is None or val > state["best"] or not math.isfinite(state["best"]):
                    state["best"], state["best_step"] = val, done
                    best_weights = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                    if ctx.main:
                        _save(torch, best_path, {"format": CHECKPOINT_FORMAT, "step": done, "metric": val,
                                                 "model": best_weights})
                state["step"] = done
                state["train_seconds"] += seg_train
                state["trained"] += seg_steps
                state["elapsed"] += time.perf_counter() - seg_start
                seg_start, seg_steps, seg_train = time.perf_counter(), 0, 0.0
                if ctx.main:
                    rng = {"torch": torch.get_rng_state()}
                    if ctx.device.type == "cuda":
                        rng["cuda"] = torch.cuda.get_rng_state(ctx.device)
                    _save(torch, last, {"format": CHECKPOINT_FORMAT, **state, "model": net.state_dict(),
                                        "optimizer": opt.state_dict(), "rng": rng,
                                        "schedule": {"name": train.schedule, "warmup": train.warmup,
                                                     "steps": train.steps}})
            if record is not None:
                self.log(record)
            self.emit({"event": "step", "job": job.key, "step": done, "steps": train.steps, "steps_per_s": rate,
                       "metric": metric, "val": latest_val})
            tick = time.perf_counter()
        if best_weights is None:
            raise LrbenchError(f"{self.dir}: no best checkpoint to test", RUNTIME)

        net.load_state_dict(best_weights)
        test_set = loader(self.eval_batches("test", job.test_path, train.test_samples), self.workers, self.pin)
        test = self.measure(net, test_set)
        state["elapsed"] += time.perf_counter() - seg_start
        n_params = sum(p.numel() for p in net.parameters())
        row = {
            "task": job.task.name, "model": job.model.name, "preset": self.preset, "metric": metric,
            "val": state["best"], "test": test[metric], "paper": job.setting.paper, "steps": train.steps,
            "seconds": round(state["elapsed"], 2),
            # beyond the required columns
            "test_metrics": test, "best_step": state["best_step"], "paper_source": job.setting.paper_source,
            "task_config": config_dict(job.task.config), "params": n_params,
            "ms_per_step": round(1000 * state["train_seconds"] / max(1, state["trained"]), 3),
            "batch_size": train.batch_size, "per_batch": self.eval_batch if train.per_batch else None,
            "device": str(ctx.device), "world_size": ctx.world, "seed": self.seed, "job": job.key,
        }
        return row


# ---------------------------------------------------------------------------------------------
# the whole evaluation


def default_preset(device) -> tuple[str, str]:
    """(preset, why): paper on CUDA, quick elsewhere."""
    if device.type == "cuda":
        return "paper", "default on CUDA"
    return "quick", f"default on {device.type}"


def _check_run(out: Path, info: dict, resume: bool, main: bool) -> bool:
    """Validate or create RUNDIR/run.json; True when the directory holds this run already."""
    path = out / "run.json"
    if path.exists():
        old = _read_json(path)
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
        _write_json(path, info)
    return False


def _check_job(jobdir: Path, description: dict, main: bool) -> None:
    path = jobdir / "job.json"
    if path.exists():
        old = _read_json(path)
        if old != description:
            diff = sorted(k for k in description if old.get(k) != description[k])
            raise LrbenchError(f"{jobdir} was started with other settings ({', '.join(diff)} differ); "
                                "use another --out (or delete it)")
    elif main:
        jobdir.mkdir(parents=True, exist_ok=True)
        _write_json(path, description)


def _read_json(path: Path) -> dict:
    """A JSON object this harness wrote into the run directory; LrbenchError (2) when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LrbenchError(f"{path} is unreadable ({exc}); use another --out (or delete it)") from None
    if not isinstance(data, dict):
        raise LrbenchError(f"{path} is unreadable (not a JSON object); use another --out (or delete it)")
    return data


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def results_markdown(rows: list[dict]) -> str:
    """A Markdown table of result rows, the paper's number beside ours."""
    lines = ["| task | config | model | preset | metric | test | paper | val | best step | steps | ms/step | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sources = []
    for r in rows:
        cfg = r.get("task_config") or {}
        size = next((f"{k}={cfg[k]}" for k in ("length", "size", "max_length") if k in cfg), "")
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


def evaluate(model: str, tasks: list[str] | None = None, preset: str | Preset | None = None, *,
             device: str | None = None, data: str | Path | None = None, out: str | Path | None = None,
             steps: int | None = None, seed: int = 0, resume: bool = False, workers: int | None = None,
             on_event: Callable[[dict], None] | None = None) -> list[dict]:
    """Run the evaluation and return its result rows (see the module docstring).

    `on_event(dict)` receives progress: {"event": "plan" | "start" | "step" | "skip" | "done", ...}.
    Raises LrbenchError (code 2: bad input; 1: runtime failure).
    """
    torch = _torch()
    emit = on_event or (lambda e: None)
    ctx = _init_dist(torch, device)
    try:
        if preset is None:
            name, why = default_preset(ctx.device)
        else:
            name, why = (preset.name, "given") if isinstance(preset, Preset) else (preset, "given")
        chosen = preset if isinstance(preset, Preset) else get_preset(name)
        jobs = plan(model, tasks, chosen, seed, Path(data) if data is not None else None, steps)
        seed, steps = int(seed), None if steps is None else int(steps)  # numpy integers included (checked)
        if workers is None:
            workers = 0 if ctx.device.type != "cuda" else max(0, min(8, (os.cpu_count() or 1) // ctx.world - 1))
        if workers < 0:
            raise LrbenchError(f"--workers must be >= 0 (got {workers})")
        out = Path(out) if out is not None else Path("runs") / f"{jobs[0].model.label}-{chosen.name}"
        info = {"model": jobs[0].model.name, "preset": chosen.name, "seed": seed, "steps": steps}
        existing = _check_run(out, info, resume, ctx.main)
        emit({"event": "plan", "preset": chosen.name, "preset_reason": why, "description": chosen.description,
              "device": str(ctx.device), "world_size": ctx.world, "out": str(out), "jobs": [j.key for j in jobs],
              "resuming": existing})
        rows = []
        for i, job in enumerate(jobs):
            jobdir = out / job.key
            _check_job(jobdir, job.description(chosen.name, seed), ctx.main)
            done = jobdir / "row.json"
            if done.exists():
                row = _read_json(done)
                emit({"event": "skip", "job": job.key, "index": i, "total": len(jobs), "row": row})
            else:
                runner = _Runner(torch, job, ctx, jobdir, out / "log.jsonl", chosen.name, seed, workers,
                                 lambda e, i=i: emit({**e, "index": i, "total": len(jobs)}))
                row = runner.run()
                if ctx.main:
                    _write_json(done, row)
                emit({"event": "done", "job": job.key, "index": i, "total": len(jobs), "row": row})
            rows.append(row)
            if ctx.main:
                _write_results(out, rows)
        return rows
    finally:
        if ctx.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _write_results(out: Path, rows: list[dict]) -> None:
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
    _write_json(out / "results.json", {"rows": every})
    atomic_write_bytes(out / "results.md", results_markdown(every).encode())
