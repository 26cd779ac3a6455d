"""The conformance suite (tests/conformance.py) over every registered task, and one `evaluate
--preset smoke` step of every baseline on every registered task."""

import pytest

import lrbench
from conformance import TaskConformance, evaluate_one_step
from lrbench.presets import SMOKE_MAX_POSITIONS

TASKS = lrbench.list_tasks()
try:
    from lrbench.baselines import MODELS
except ImportError:  # no torch: evaluate_one_step skips
    MODELS = ("dlr",)


class TestRegisteredTask(TaskConformance):
    @pytest.fixture(scope="class", params=TASKS)
    @classmethod
    def task_name(cls, request):
        return request.param


def _cells() -> list[tuple[str, str]]:
    """Every baseline on every task whose tiny inputs the smoke preset runs (SMOKE_MAX_POSITIONS);
    a task beyond it (Pathfinder's 16384 pixels: full attention takes minutes on a CPU) gets one
    step of the first baseline."""
    cells = []
    for name in TASKS:
        fits = lrbench.get_task(name, **lrbench.get_task(name).tiny).t_in <= SMOKE_MAX_POSITIONS
        cells += [(name, model) for model in (MODELS if fits else MODELS[:1])]
    return cells


@pytest.mark.parametrize("task_name,model", _cells())
def test_evaluate_smoke_one_step(task_name, model, tmp_path):
    evaluate_one_step(task_name, model, tmp_path)
