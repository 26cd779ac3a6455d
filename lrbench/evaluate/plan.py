"""What an evaluation trains: the model, the tasks with their data, the device; the jobs of a run.

A job is one (task, model) cell of a preset. Its data comes from a dataset directory when `--data`
holds one for the task (opened here once, its shards checked now rather than in a loader worker
hours later), and is generated on the fly otherwise: the same samples. torch is not imported here;
the caller passes it in where a device is resolved.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lrbench.dataset import Dataset, open_dataset
from lrbench.errors import RUNTIME, LrbenchError
from lrbench.presets import Preset, Setting, dataset_label
from lrbench.registry import REGISTRY, Task, canonical_name, config_dict, get_task

TORCH_HINT = "lrbench evaluate needs PyTorch: pip install 'lrbench-synth[torch]'"
SPLITS = ("train", "val", "test")


def import_torch():
    try:
        import torch
    except ImportError:
        raise LrbenchError(TORCH_HINT, RUNTIME) from None
    return torch


# ---------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class ModelSpec:
    name: str  # "dlr", or "package.module:factory"
    factory: Callable | None = None  # a custom model's factory(d_input, d_output, task)

    @property
    def label(self) -> str:
        """A file-name-safe name."""
        return self.name.replace(":", "-").replace("/", "-")


def model_spec(model) -> ModelSpec:
    """What `evaluate` was given as its model: a name (resolve_model), a factory callable
    ``factory(d_input, d_output, task, **model_keys)``, or a torch module, trained from a fresh copy
    of its given weights in every job."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return resolve_model(model)
    name = f"{type(model).__module__}:{type(model).__qualname__}"
    if hasattr(model, "state_dict") and hasattr(model, "parameters"):  # a torch module
        return ModelSpec(name, lambda d_input, d_output, task, **keys: copy.deepcopy(model))
    if callable(model):
        return ModelSpec(f"{getattr(model, '__module__', 'python')}:{getattr(model, '__qualname__', 'factory')}",
                         model)
    raise LrbenchError(f"model must be a baseline name, package.module:factory, a factory or a torch module "
                       f"(got {type(model).__name__})")


def resolve_model(name: str) -> ModelSpec:
    """A baseline name (lrbench.baselines.MODELS), or `package.module:factory` imported (the working
    directory is importable)."""
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


# ---------------------------------------------------------------------------------------------
# the device and the processes


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: Any = None
    owns_group: bool = False  # we initialised the process group (and destroy it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_int(name: str, default: int) -> int:
    """An integer from the environment (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise LrbenchError(f"{name} must be an integer (got {text!r})") from None


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
        index = local_rank if d.index is None or env_int("WORLD_SIZE", 1) > 1 else d.index
        if index >= torch.cuda.device_count():
            raise LrbenchError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if d.type == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return d
    raise LrbenchError(f"--device {device}: not available here; use cpu or cuda")


def init_dist(torch, device: str | None) -> Dist:
    """This process's rank, world size and device; DDP's process group when there are several."""
    world, rank, local = env_int("WORLD_SIZE", 1), env_int("RANK", 0), env_int("LOCAL_RANK", 0)
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


def default_preset(device) -> tuple[str, str]:
    """(preset, why): paper on CUDA, quick elsewhere."""
    if device.type == "cuda":
        return "paper", "default on CUDA"
    return "quick", f"default on {device.type}"


# ---------------------------------------------------------------------------------------------
# jobs


@dataclass
class Job:
    """One (task, model) run of a preset, with the dataset its splits are read from (if any)."""

    setting: Setting
    model: ModelSpec
    task: Task
    data_seed: int
    dataset: Dataset | None = None
    from_disk: tuple[str, ...] = ()  # splits read from `dataset`; the others are generated

    @property
    def key(self) -> str:
        return self.task.dir_name(self.data_seed)

    @property
    def paths(self) -> dict[str, str | None]:
        """Where each split comes from: the dataset directory, or None (generated)."""
        return {s: str(self.dataset.path) if s in self.from_disk else None for s in SPLITS}

    @property
    def d_input(self) -> int:
        """What the model's encoder takes: channels, or the vocabulary of token ids."""
        return self.task.vocab_size if self.task.view == "tokens" else self.task.d_input

    def description(self, preset: str, seed: int) -> dict:
        """Everything that determines the job's results (compared on resume)."""
        return {
            "task": self.task.name, "task_config": config_dict(self.task.config), "model": self.model.name,
            "model_config": self.setting.model, "train": dataclasses.asdict(self.setting.train),
            "preset": preset, "seed": seed, "data_seed": self.data_seed, "data": self.paths,
        }


def plan(model, tasks: list[str] | None, preset: Preset, seed: int = 0, data: Path | None = None,
         steps: int | None = None, overrides: dict[str, str] | None = None) -> list[Job]:
    """The jobs of one evaluation, validated (LrbenchError code 2 on bad input). `overrides`:
    `--set` key=value pairs applied to every job (Setting.with_overrides)."""
    spec = model_spec(model)
    seed, steps = _check_numbers(data, seed, steps)
    opened: dict[Path, Dataset] = {}  # each dataset directory is opened once
    jobs = [_job(spec, name, params, preset, seed, steps, data, opened, overrides or {})
            for name, params in _entries(preset, tasks, data, opened, spec.name)]
    if not jobs:
        raise LrbenchError(f"preset {preset.name} has no task registered here")
    return jobs


def _check_numbers(data: Path | None, seed, steps) -> tuple[int, int | None]:
    if data is not None and not data.is_dir():
        raise LrbenchError(f"--data {data} is not a directory")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise LrbenchError(f"--steps must be a positive integer (got {steps})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LrbenchError(f"--seed must be a non-negative integer (got {seed})")
    return int(seed), None if steps is None else int(steps)


def _open(path: Path, opened: dict[Path, Dataset]) -> Dataset:
    if path not in opened:
        opened[path] = open_dataset(path)
    return opened[path]


def _entries(preset: Preset, tasks: list[str] | None, data: Path | None, opened,
             model: str) -> list[tuple[str, dict]]:
    """(task, parameters) of every job: the named tasks' runs in the preset, else its suite (or the
    one dataset's task when `data` is a dataset)."""
    if tasks:
        chosen = [entry for t in tasks for entry in _named_entries(preset, t, model)]
        return [entry for i, entry in enumerate(chosen) if entry not in chosen[:i]]
    if data is not None and (data / "manifest.json").exists():  # one dataset: run its task only
        name = _open(data, opened).task.name
        return [(name, params) for params in preset.entries(name)]
    return [(name, params) for name, params in preset.suite if name in REGISTRY]


def _named_entries(preset: Preset, name: str, model: str) -> list[tuple[str, dict]]:
    """A task's runs in the preset, or the one run a job label names (`pathfinder-32`, `shift-L512`)."""
    try:
        task = canonical_name(name)
        return [(task, params) for params in preset.entries(task)]
    except ValueError as exc:
        # the label of the dataset each run trains on, with the sizes the preset gives it
        labels = {dataset_label(task, preset.setting(task, params, model).task_params): (task, params)
                  for task, params in preset.suite if task in REGISTRY}
        if name in labels:
            return [labels[name]]
        raise LrbenchError(f"{exc}; or one of preset {preset.name}'s runs: {', '.join(labels)}") from None


def _job(spec: ModelSpec, name: str, params: dict, preset: Preset, seed: int, steps: int | None,
         data: Path | None, opened, overrides: dict[str, str]) -> Job:
    try:
        setting = preset.setting(name, params, spec.name)
        if steps is not None:
            setting = dataclasses.replace(setting, train=setting.train.with_steps(steps))
        setting = setting.with_overrides(overrides, spec.name)
        task = get_task(name, **setting.task_params)
    except ValueError as exc:  # the preset's, or the task's parameters
        raise LrbenchError(str(exc)) from None
    dataset = _dataset_for(data, task, seed, opened)
    if dataset is None:
        return Job(setting, spec, task, seed)
    # a task whose train split is a stream always trains on the stream
    splits = tuple(s for s in SPLITS if s in dataset.splits and (s != "train" or "train" in task.finite_splits))
    for split in splits:  # here, not in a loader worker hours later
        dataset[split].check_shards()
    dataset.close()  # its files reopen when read, in whichever process reads them
    return Job(setting, spec, dataset.task, dataset.seed, dataset, splits)


def _dataset_for(data: Path | None, task: Task, seed: int, opened) -> Dataset | None:
    """The dataset of this task under `data`: `data` itself when it is the task's dataset (which then
    defines the task's parameters and seed), or `data`/<its `lrbench generate` name>."""
    if data is None:
        return None
    if (data / "manifest.json").exists():
        ds = _open(data, opened)
        return ds if ds.task.name == task.name else None
    candidate = data / task.dir_name(seed)
    return _open(candidate, opened) if (candidate / "manifest.json").exists() else None
