"""Registry, configs and the Python API contract (SPEC §4, §5)."""

import dataclasses
import importlib.util
import subprocess
import sys

import pytest

import lrbench
from lrbench.registry import REGISTRY, parse_value, spec_of

# Task ids key every sample's random generator: changing one silently changes every dataset.
FROZEN_IDS = {
    "shift": 1, "cumsum": 2, "cummax": 3, "reverse": 4, "sort": 5, "select": 6, "select-fixed": 7,
    "mips": 8, "context-shift": 9, "solve": 10, "solve-fixed": 11, "listops-subtrees": 12, "pathfinder-seg": 13,
    "pathfinder": 14, "listops": 15,
}


def test_task_ids_are_frozen():
    for name, spec in REGISTRY.items():
        assert FROZEN_IDS[name] == spec.id, f"task id of {name} changed"
    assert len({s.id for s in REGISTRY.values()}) == len(REGISTRY)


def test_list_tasks_and_aliases():
    names = lrbench.list_tasks()
    assert names[:11] == ["shift", "cumsum", "cummax", "reverse", "sort", "select", "select-fixed", "mips",
                          "context-shift", "solve", "solve-fixed"]
    assert lrbench.get_task("select_fixed").name == "select-fixed"
    assert lrbench.get_task("Context_Shift").name == "context-shift"


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown task 'shfit'.*shift, cumsum"):
        lrbench.get_task("shfit")


@pytest.mark.parametrize("params,message", [
    ({"lenght": 64}, r"unknown parameter lenght for task shift; valid parameters: length, num_shifts"),
    ({"length": 0}, r"length must be an integer >= 16 \(got 0\)"),
    ({"length": -5}, r"length must be an integer >= 16 \(got -5\)"),
    ({"length": 64.0}, r"length must be an integer >= 16 \(got 64.0\)"),
    ({"length": "64"}, r"length must be an integer"),
    ({"length": True}, r"length must be an integer"),
    ({"num_shifts": 0}, r"num_shifts must be an integer in \[1, 4096\]"),
])
def test_bad_parameters_say_what_is_allowed(params, message):
    with pytest.raises(ValueError, match=message):
        lrbench.get_task("shift", **params)


def test_configs_are_frozen_dataclasses_with_literal_defaults():
    for name in lrbench.list_tasks():
        task = lrbench.get_task(name)
        assert dataclasses.is_dataclass(task.config)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(task.config, dataclasses.fields(task.config)[0].name, 1)
    assert lrbench.get_task("shift").config.length == 4096
    assert lrbench.get_task("select").config.num_selected == 32
    assert lrbench.get_task("mips").config.dim == 4


def test_sample_api_rejects_bad_keys():
    task = lrbench.get_task("cumsum", length=16)
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        task.sample(0, split="dev")
    with pytest.raises(ValueError, match="index must be a non-negative integer"):
        task.sample(-1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        task.sample(0, seed=-3)


def test_parse_value_by_default_type():
    spec = spec_of("shift")
    assert parse_value(spec, "num_shifts", "4") == 4
    with pytest.raises(ValueError, match="num_shifts must be int"):
        parse_value(spec, "num_shifts", "4.5")
    with pytest.raises(ValueError, match="unknown parameter 'x'"):
        parse_value(spec, "x", "1")


def test_dataset_directory_names():
    assert lrbench.get_task("shift", length=512).dir_name() == "shift-L512"
    assert lrbench.get_task("shift").dir_name() == "shift-L4096"
    other_seed = lrbench.get_task("shift", length=512).dir_name(seed=1)
    other_param = lrbench.get_task("shift", length=512, num_shifts=4).dir_name()
    assert other_seed.startswith("shift-L512-") and other_param.startswith("shift-L512-")
    assert len({other_seed, other_param, "shift-L512"}) == 3


LIGHT_IMPORT = """
import sys
core = lambda: sorted(m for m in sys.modules if m.startswith("lrbench") and m != "lrbench"
                      and not m.startswith("lrbench.baselines"))
import lrbench
assert core() == [] and "numpy" not in sys.modules, ("import lrbench loaded", core())
{baselines}
assert core() == [], ("import lrbench.baselines loaded", core())
assert lrbench.get_task("shift").name == "shift"  # the registry loads on first use
assert "lrbench.generators.atomic" in core() and "lrbench.registry" in core()
assert issubclass(lrbench.LrbenchError, ValueError)
"""


@pytest.mark.parametrize("with_baselines", [False, True])
def test_import_lrbench_is_light(with_baselines):
    """SPEC §2: the registry and generators load on first use, so the layering holds at run time."""
    if with_baselines and importlib.util.find_spec("torch") is None:
        pytest.skip("the baselines need torch")
    code = LIGHT_IMPORT.format(baselines="import lrbench.baselines" if with_baselines else "")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
