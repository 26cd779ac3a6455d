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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lrbench import metrics as M
from lrbench.presets import HIGHER, Preset, PresetError, Setting, get_preset
from lrbench.registry import REGISTRY, Task, canonical_name, config_dict, get_task
from lrbench.storage import atomic_write_bytes

TORCH_HINT = "lrbench evaluate needs PyTorch: pip install 'lrbench-synth[torch]'"
BASELINES = ("dlr", "dlr-prod", "dss", "attention", "local-attention", "lru", "s4d", "s5", "mamba",
             "rglru")  # lrbench.baselines.MODELS, without importing torch (a test checks they agree)
CHECKPOINT_FORMAT = 1
EPOCH_KEY = 2000  # spawn-key slot of the per-epoch train order (not a split id, not FIXED_KEY)


class EvaluateError(Exception):
    """A one-line failure: code 2 for bad input (model, task, preset, device, data), 1 at runtime."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def _torch():
    try:
        import torch
    except ImportError:
        raise EvaluateError(TORCH_HINT, 1) from None
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
        if name not in BASELINES:
            raise EvaluateError(f"unknown model {name!r}; valid models: {', '.join(BASELINES)}, "
                                "or package.module:factory for your own")
        return ModelSpec(name)
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise EvaluateError(f"--model {name!r}: a custom model is written package.module:factory")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any import failure is bad input
        raise EvaluateError(f"cannot import {module_name!r} for --model {name}: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise EvaluateError(f"--model {name}: module {module_name} has no callable {attr!r}")
    return ModelSpec(name, factory)


# token vocabularies of the token tasks (their ids are 0..V-1)
def _vocab(task_name: str) -> int:
    if task_name == "listops-subtrees":
        from lrbench.generators.listops import TOKEN_NAMES

        return len(TOKEN_NAMES)
    raise EvaluateError(f"task {task_name}: unknown token vocabulary", 1)


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
    f = task.features
    inputs, targets = f["inputs"], f["targets"]
    if task.kind == "regression":
        return View("signal", inputs.shape[-1], targets.shape[-1], targets.shape[0], None)
    k = task.spec.num_classes
    if len(inputs.shape) == 1 and np.issubdtype(np.dtype(inputs.dtype), np.integer):
        return View("tokens", _vocab(task.name), k, None, k)
    if len(inputs.shape) == 2:
        return View("image", 1, k, None, k)
    raise EvaluateError(f"task {task.name}: cannot feed inputs of shape {inputs.shape} to a model", 1)


def resolve_device(torch, device: str | None, local_rank: int = 0):
    if device is None:
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise EvaluateError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if d.type == "cpu":
        return d
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise EvaluateError(f"--device {device}: CUDA is not available here (use --device cpu)")
        index = local_rank if d.index is None or int(os.environ.get("WORLD_SIZE", "1")) > 1 else d.index
        if index >= torch.cuda.device_count():
            raise EvaluateError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if d.type == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return d
    raise EvaluateError(f"--device {device}: not available here; use cpu or cuda")


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: Any = None
    owns_group: bool = False  # we initialised the process group (and destroy it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_dist(torch, device: str | None) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
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
# data: index-addressed sources, batches by step, a loader that keeps step order


class _Source:
    """Sample i of one split as {"inputs", "targets"}: generated by the task, or read from an
    on-disk dataset. With `epoch_size` n, index i is item order_e[i mod n] of epoch e = i // n,
    order_e a permutation keyed on (seed, epoch). Picklable (the task is rebuilt lazily)."""

    def __init__(self, task_name: str, params: dict, seed: int, split: str, path: str | None = None,
                 epoch_size: int | None = None):
        self.task_name, self.params, self.seed, self.split = task_name, params, seed, split
        self.path, self.epoch_size = path, epoch_size
        self._task = self._view = None
        self._order: tuple[int, np.ndarray] | None = None

    def __getstate__(self):
        return {**self.__dict__, "_task": None, "_view": None, "_order": None}

    def _item(self, i: int) -> int:
        if self.epoch_size is None:
            return i
        epoch, j = divmod(i, self.epoch_size)
        if self._order is None or self._order[0] != epoch:
            key = (REGISTRY[self.task_name].id, EPOCH_KEY, epoch)
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))
            self._order = (epoch, rng.permutation(self.epoch_size))
        return int(self._order[1][j])

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        i = self._item(i)
        if self.path is None:
            if self._task is None:
                self._task = get_task(self.task_name, **self.params)
            s = self._task.sample(i, self.split, self.seed)
        else:
            if self._view is None:
                from lrbench.dataset import open_dataset

                self._view = open_dataset(self.path)[self.split]
            s = self._view[i]
        return {"inputs": s["inputs"], "targets": s["targets"]}


def _collate(samples: list[dict[str, np.ndarray]], features: dict) -> dict[str, np.ndarray]:
    """Stack samples; ragged fields are padded to the longest with the field's pad value
    (targets: -100, ignored by the loss and the metrics)."""
    out = {}
    for name in ("inputs", "targets"):
        arrays = [s[name] for s in samples]
        f = features[name]
        if f.ragged:
            n = max(len(a) for a in arrays)
            buf = np.full((len(arrays), n) + arrays[0].shape[1:], f.pad, dtype=arrays[0].dtype)
            for i, a in enumerate(arrays):
                buf[i, : len(a)] = a
            out[name] = buf
        else:
            out[name] = np.stack(arrays)
    return out


class _Batches:
    """Map-style dataset of batches: item k is (key, batch) with key = keys[k] and the batch made
    of source samples key·stride + offset ... + size - 1 (clipped at `limit`)."""

    def __init__(self, source: _Source, features: dict, keys: range, stride: int, offset: int, size: int,
                 limit: int | None = None):
        self.source, self.features, self.keys = source, features, keys
        self.stride, self.offset, self.size, self.limit = stride, offset, size, limit

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, k: int):
        key = self.keys[k]
        lo = key * self.stride + self.offset
        hi = lo + self.size if self.limit is None else min(lo + self.size, self.limit)
        return key, _collate([self.source(i) for i in range(lo, hi)], self.features)


def _loader(torch, batches: _Batches, workers: int, pin: bool):
    """Batches in key order; `workers` processes build them ahead (fork: the task is not pickled)."""
    kw = {}
    if workers > 0:
        import multiprocessing as mp

        kw = dict(num_workers=workers, prefetch_factor=4,
                  multiprocessing_context="fork" if "fork" in mp.get_all_start_methods() else None)
    return torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, pin_memory=pin, **kw)


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
    return {m: M.make_accumulator(m, per_batch, **kw) for m in task.spec.metrics}


def _pack(acc) -> np.ndarray:
    """An accumulator's state as float64 numbers that merge by `_unpack_merge`."""
    if isinstance(acc, M.R2Accumulator):
        return np.array([acc.count, acc.mean, acc.m2, acc.sse], dtype=np.float64)
    if isinstance(acc, M.AccuracyAccumulator):
        return np.array([acc.correct, acc.count], dtype=np.float64)
    if isinstance(acc, M.BatchMeanAccumulator):
        return np.array([acc.weighted_sum, acc.weight, acc.batches], dtype=np.float64)
    if isinstance(acc, M.ConfusionAccumulator):
        return acc.matrix.astype(np.float64).ravel()
    raise TypeError(f"cannot merge {type(acc).__name__} across ranks")


def _unpack_merge(acc, states: list[np.ndarray]):
    """Reset `acc` to the merge of the packed `states` (one per rank, in rank order)."""
    if isinstance(acc, M.R2Accumulator):
        acc.count, acc.mean, acc.m2, acc.sse = 0, 0.0, 0.0, 0.0
        for s in states:
            part = M.R2Accumulator()
            part.count, part.mean, part.m2, part.sse = int(s[0]), float(s[1]), float(s[2]), float(s[3])
            acc.merge(part)
    elif isinstance(acc, M.AccuracyAccumulator):
        acc.correct, acc.count = (int(sum(s[i] for s in states)) for i in (0, 1))
    elif isinstance(acc, M.BatchMeanAccumulator):
        acc.weighted_sum = float(sum(s[0] for s in states))
        acc.weight, acc.batches = (int(sum(s[i] for s in states)) for i in (1, 2))
    else:
        acc.matrix = np.rint(sum(states)).astype(np.int64).reshape(acc.matrix.shape)
    return acc


def _merge_ranks(torch, ctx: Dist, accs: dict[str, Any]) -> None:
    if ctx.world == 1:
        return
    import torch.distributed as dist

    for acc in accs.values():
        local = torch.from_numpy(_pack(acc)).to(ctx.device)
        parts = [torch.empty_like(local) for _ in range(ctx.world)]
        dist.all_gather(parts, local)
        _unpack_merge(acc, [p.cpu().numpy() for p in parts])


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
    """The jobs of one evaluation, validated (EvaluateError code 2 on bad input)."""
    spec = resolve_model(model)
    if data is not None and not data.is_dir():
        raise EvaluateError(f"--data {data} is not a directory")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise EvaluateError(f"--steps must be a positive integer (got {steps})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise EvaluateError(f"--seed must be a non-negative integer (got {seed})")
    if tasks:
        try:
            names = list(dict.fromkeys(canonical_name(t) for t in tasks))
        except ValueError as exc:
            raise EvaluateError(str(exc)) from None
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
        except (PresetError, ValueError) as exc:
            raise EvaluateError(str(exc)) from None
        if steps is not None:
            setting = dataclasses.replace(setting, train=setting.train.with_steps(steps))
        path, data_seed, task = _data_for(data, task, seed)
        splits = {}
        if path is not None:
            from lrbench.dataset import open_dataset

            have = open_dataset(path).splits
            splits = {s: str(path) if s in have else None for s in ("train", "val", "test")}
            if task.name not in HIGHER:
                splits["train"] = None  # the atomic tasks always train on the endless stream
        jobs.append(Job(setting, spec, task, task_view(task), data_seed,
                        splits.get("train"), splits.get("val"), splits.get("test")))
    if not jobs:
        raise EvaluateError(f"preset {preset.name} has no task registered here")
    return jobs


# ---------------------------------------------------------------------------------------------
# one job


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
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise EvaluateError(f"cannot load checkpoint {path}: {exc}", 1) from None


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def _build_model(torch, job: Job, seed: int):
    view = job.view
    torch.manual_seed(seed)
    if job.model.factory is not None:
        try:
            net = job.model.factory(view.d_input, view.d_output, job.task)
        except Exception as exc:
            raise EvaluateError(f"{job.model.name}({view.d_input}, {view.d_output}, task) failed: "
                                f"{type(exc).__name__}: {exc}", 1) from None
        if not isinstance(net, torch.nn.Module):
            raise EvaluateError(f"{job.model.name} returned {type(net).__name__}, not a torch.nn.Module", 1)
        return net
    from lrbench.baselines import build

    cfg = dict(job.setting.model)
    if view.mode == "tokens":
        cfg["vocab_size"] = view.d_input
    try:
        return build(job.model.name, view.d_input, view.d_output, **cfg)
    except ValueError as exc:
        raise EvaluateError(f"{job.model.name} on {job.task.name}: {exc}") from None


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
            raise EvaluateError(f"batch size {self.train.batch_size} does not split over {ctx.world} processes")
        self.per_rank = self.train.batch_size // ctx.world
        self.eval_batch = self.train.eval_batch or self.train.batch_size

    # -- pieces ------------------------------------------------------------------------------

    def source(self, split: str, path: str | None) -> _Source:
        task = self.job.task
        epoch = None
        if split == "train" and task.name in HIGHER:  # a finite train split, as in the paper
            if path is not None:
                from lrbench.dataset import open_dataset

                epoch = len(open_dataset(path)["train"])
            else:
                epoch = task.spec.default_splits["train"]
        return _Source(task.name, config_dict(task.config), self.job.data_seed, split, path, epoch)

    def eval_batches(self, split: str, path: str | None, wanted: int) -> _Batches:
        n = wanted
        if path is not None:
            from lrbench.dataset import open_dataset

            n = min(wanted, len(open_dataset(path)[split]))
        count = -(-n // self.eval_batch)
        keys = range(self.ctx.rank, count, self.ctx.world)  # whole batches per rank
        return _Batches(self.source(split, path), self.job.task.features, keys, self.eval_batch, 0,
                        self.eval_batch, limit=n)

    def forward(self, net, x):
        if self.custom:
            y = net(x)
            if self.view.t_out is not None:
                y = y[:, y.shape[1] - self.view.t_out:]
            return y
        return net(x, t_out=self.view.t_out)

    def check_output(self, y, target):
        want = tuple(target.shape) + (() if self.view.mode == "signal" else (self.view.d_output,))
        if tuple(y.shape) != want:
            raise EvaluateError(f"{self.job.model.name} on {self.job.task.name}: output shape {tuple(y.shape)}, "
                                f"expected {want} ([B, T, d_output] with the targets on the last positions)", 1)

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
            for _, batch in batches:
                x, y = _prepare(torch, self.view, batch, self.ctx.device)
                out = self.forward(net, x)
                self.check_output(out, y)
                pred = out.argmax(-1) if self.view.mode != "signal" else out.float()
                pred, target = pred.cpu().numpy(), y.cpu().numpy()
                for acc in accs.values():
                    try:
                        acc.update(pred, target)
                    except ValueError as exc:  # NaN/inf predictions
                        raise EvaluateError(f"{self.job.task.name}/{self.job.model.name}: {exc}", 1) from None
        net.train()
        _merge_ranks(torch, self.ctx, accs)
        try:
            return {name: float(acc.result()) for name, acc in accs.items()}
        except ValueError as exc:
            raise EvaluateError(f"{self.job.task.name}/{self.job.model.name}: {exc}", 1) from None

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
            rec = json.loads(line)
            if not (rec.get("job") == self.job.key and rec.get("step", 0) > after_step):
                keep.append(line)
        atomic_write_bytes(self.log_path, ("\n".join(keep) + "\n" if keep else "").encode())

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        torch, ctx, job, train = self.torch, self.ctx, self.job, self.train
        metric = job.task.spec.metrics[0]
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
                raise EvaluateError(f"{last}: unknown checkpoint format {ckpt.get('format')!r}", 1)
            net.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            if ctx.device.type == "cuda" and "cuda" in ckpt["rng"]:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], ctx.device)
            state.update({k: ckpt[k] for k in state})
            if best_path.exists():
                best_weights = _load(torch, best_path)["model"]
            resumed = state["step"]
            self.trim_log(resumed)
        self.emit({"event": "start", "job": job.key, "task": job.task.name, "model": job.model.name,
                   "steps": train.steps, "resume_step": resumed, "checkpoint": str(last) if resumed is not None else None,
                   "data": {"train": job.train_path or "stream", "val": job.val_path or "generated",
                            "test": job.test_path or "generated"}})

        val_set = list(_loader(torch, self.eval_batches("val", job.val_path, train.val_samples),
                               self.workers, self.pin))
        start = state["step"]
        G = train.batch_size
        batches = _Batches(self.source("train", job.train_path), job.task.features, range(start, train.steps),
                           G, ctx.rank * self.per_rank, self.per_rank)
        latest_val = state["best"]
        seg_start, seg_steps, seg_train = time.perf_counter(), 0, 0.0
        tick = time.perf_counter()
        loss = None
        for step, batch in _loader(torch, batches, self.workers, self.pin):
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
                    raise EvaluateError(f"{job.task.name}/{job.model.name}: training diverged "
                                        f"(loss {value} at step {done})", 1)
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
            raise EvaluateError(f"{self.dir}: no best checkpoint to test", 1)

        net.load_state_dict(best_weights)
        test_set = _loader(torch, self.eval_batches("test", job.test_path, train.test_samples), self.workers,
                           self.pin)
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
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EvaluateError(f"{path} is unreadable ({exc}); use another --out") from None
        diff = [k for k in info if old.get(k) != info[k]]
        if diff:
            k = diff[0]
            raise EvaluateError(f"{out} holds a run with {k}={old.get(k)!r}, not {info[k]!r}; "
                                "use another --out (or delete it)")
        return True
    if resume:
        raise EvaluateError(f"--resume: {out} holds no run to resume")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(path, info)
    return False


def _check_job(jobdir: Path, description: dict, main: bool) -> None:
    path = jobdir / "job.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != description:
            diff = sorted(k for k in description if old.get(k) != description[k])
            raise EvaluateError(f"{jobdir} was started with other settings ({', '.join(diff)} differ); "
                                "use another --out (or delete it)")
    elif main:
        jobdir.mkdir(parents=True, exist_ok=True)
        _write_json(path, description)


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
    Raises EvaluateError (code 2: bad input; 1: runtime failure).
    """
    torch = _torch()
    emit = on_event or (lambda e: None)
    ctx = _init_dist(torch, device)
    try:
        if preset is None:
            name, why = default_preset(ctx.device)
        else:
            name, why = (preset.name, "given") if isinstance(preset, Preset) else (preset, "given")
        try:
            chosen = preset if isinstance(preset, Preset) else get_preset(name)
        except PresetError as exc:
            raise EvaluateError(str(exc)) from None
        jobs = plan(model, tasks, chosen, seed, Path(data) if data is not None else None, steps)
        if workers is None:
            workers = 0 if ctx.device.type != "cuda" else max(0, min(8, (os.cpu_count() or 1) // ctx.world - 1))
        if workers < 0:
            raise EvaluateError(f"--workers must be >= 0 (got {workers})")
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
                row = json.loads(done.read_text(encoding="utf-8"))
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
