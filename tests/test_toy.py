"""Proof that a task, or a model, is one file: a toy task and a toy baseline, both defined here and
added through the public registries (lrbench.registry.register, lrbench.baselines.register), run
the same conformance suite as the built-in ones (tests/conformance.py), the CLI and the smoke preset
with no other file touched.

The toy task's functions live at module level: a TaskSpec travels by value to `generate`'s spawned
workers, which import this module to find them.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pytest

import lrbench
from conformance import TaskConformance, evaluate_one_step, run_main
from lrbench.presets import SMOKE_MAX_POSITIONS
from lrbench.registry import Feature, SizeParam, TaskSpec, register, unregister


@dataclass(frozen=True)
class DelayConfig:
    length: int = 256
    delay: int = 3

    def __post_init__(self):
        if not (isinstance(self.length, int) and self.length >= 8):
            raise ValueError(f"length must be an integer >= 8 (got {self.length!r})")
        if not (isinstance(self.delay, int) and 0 <= self.delay < self.length):
            raise ValueError(f"delay must be an integer in 0 .. length - 1 (got {self.delay!r})")


def delay(rng: np.random.Generator, cfg: DelayConfig) -> dict[str, np.ndarray]:
    """The input delayed by `delay` positions, zeros first.

    x = [0.5, -1, 0.25, ...], delay 1  ->  y = [0, 0.5, -1, ...]
    """
    x = rng.uniform(-1.0, 1.0, size=(cfg.length, 1)).astype(np.float32)  # (L, 1)
    y = np.zeros_like(x)
    y[cfg.delay:] = x[: cfg.length - cfg.delay]
    return {"inputs": x, "targets": y}


def delay_features(cfg: DelayConfig) -> dict[str, Feature]:
    return {"inputs": Feature("float32", (cfg.length, 1), low=-1.0, high=1.0),
            "targets": Feature("float32", (cfg.length, 1), low=-1.0, high=1.0)}


def delay_label(cfg: DelayConfig) -> str:
    return f"toy-delay-L{cfg.length}"


TOY_TASK = TaskSpec(
    name="toy-delay", id=9001, config=DelayConfig, generate=delay, features=delay_features, kind="regression",
    metrics=("r2",), view="signal", default_splits={"train": 1000, "val": 50, "test": 50},
    finite_splits=("val", "test"), dir_label=delay_label, tiny={"length": 16, "delay": 2},
    size=SizeParam("length", "--length", "Sequence length."), summary="the input, delayed",
)


@pytest.fixture(scope="module")
def toy_task():
    register(TOY_TASK)
    yield TOY_TASK.name
    unregister(TOY_TASK.name)


class TestToyTask(TaskConformance):
    """Every check the registered tasks pass, on the toy task."""

    @pytest.fixture(scope="class")
    @classmethod
    def task_name(cls, toy_task):
        return toy_task


def test_the_toy_task_is_everywhere_once_registered(toy_task, capsys):
    code, out, _ = run_main(["tasks"], capsys)
    assert code == 0 and "toy-delay" in out and "id=9001" in out
    code, out, err = run_main(["show", "toy-delay", "--length", "16", "--set", "delay=2", "--index", "4"], capsys)
    assert code == 0, err
    x = lrbench.get_task("toy-delay", length=16, delay=2).sample(4, "test")["inputs"]
    assert f"{x[0, 0]:+.4f}" in out  # the generic text view shows the sample's own values
    code, _, err = run_main(["show", "toy-delay", "--size", "128"], capsys)
    assert code == 2 and "toy-delay takes --length, not --size" in err


def test_unregistering_removes_it(toy_task):
    assert toy_task in lrbench.list_tasks()
    spec = unregister(toy_task)
    try:
        assert toy_task not in lrbench.list_tasks()
        with pytest.raises(ValueError, match="unknown task 'toy-delay'"):
            lrbench.get_task(toy_task)
    finally:
        register(spec)


@pytest.mark.parametrize("model", ["dlr", "attention"])
def test_evaluate_smoke_one_step_on_the_toy_task(toy_task, model, tmp_path):
    row = evaluate_one_step(toy_task, model, tmp_path)
    assert row["task_config"] == {"length": 16, "delay": 2}


# ---------------------------------------------------------------------------------------------
# a toy baseline: one file's worth, a depthwise convolution over a few positions


class ToyConv:
    """Mixer u [B, L, H] -> y [B, L, H]: each channel convolved with its own `width` taps, causal
    unless bidirectional (then centred)."""

    def __new__(cls, d_model: int, width: int, bidirectional: bool):
        import torch
        from torch import nn

        class Mixer(nn.Module):
            kernel_params = ("taps",)  # no weight decay on them (lrbench.baselines.param_groups)

            def __init__(self):
                super().__init__()
                self.taps = nn.Parameter(torch.randn(d_model, 1, width) / width)  # (H, 1, W)
                self.pad = (width // 2, width - 1 - width // 2) if bidirectional else (width - 1, 0)

            def forward(self, u):
                x = nn.functional.pad(u.transpose(1, 2), self.pad)  # (B, H, L + W - 1)
                return nn.functional.conv1d(x, self.taps, groups=d_model).transpose(1, 2)  # (B, L, H)

        return Mixer()


TOY_MODEL = types.SimpleNamespace(
    CONFIG={"toy-conv": dict(width=3, bidirectional=False)},
    mixer=lambda name, cfg: ToyConv(cfg["d_model"], cfg["width"], cfg["bidirectional"]),
)


@pytest.fixture(scope="module")
def toy_model():
    baselines = pytest.importorskip("lrbench.baselines")
    baselines.register(TOY_MODEL)
    yield "toy-conv"
    baselines.unregister(TOY_MODEL)


def _smoke_tasks() -> list[str]:
    tiny = (lrbench.get_task(n, **lrbench.get_task(n).tiny) for n in lrbench.list_tasks())
    return [t.name for t in tiny if t.t_in <= SMOKE_MAX_POSITIONS]


@pytest.mark.parametrize("task_name", _smoke_tasks())
def test_the_toy_baseline_takes_a_smoke_step_on_every_task(toy_model, task_name, tmp_path):
    evaluate_one_step(task_name, toy_model, tmp_path)


def test_the_toy_baseline_on_the_toy_task_through_the_cli(toy_model, toy_task, tmp_path, capsys):
    code, out, err = run_main(["evaluate", "--help"], capsys)
    assert code == 0 and "toy-conv" in out  # the help lists the models as they are now
    code, out, err = run_main(["evaluate", "--model", "toy-conv", "--task", "toy-delay", "--preset", "smoke",
                               "--steps", "2", "--device", "cpu", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    (line,) = [row for row in out.splitlines() if row.startswith("| toy-delay |")]
    assert "| toy-conv | smoke | r2 |" in line
