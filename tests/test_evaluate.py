"""`lrbench evaluate`: the baselines learn what the paper says they learn, on CPU, at small sizes;
the harness resumes exactly, runs under DDP, takes custom models, writes its results, and fails
with one line on bad input.

Every run here is small (L <= 64, a few hundred steps, one thread) so the file stays within a few
minutes on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lrbench  # noqa: E402
from lrbench import registry  # noqa: E402
from lrbench.errors import LrbenchError  # noqa: E402
from lrbench.evaluate import default_preset, evaluate, results_markdown  # noqa: E402
from lrbench.evaluate.loop import lr_factor  # noqa: E402
from lrbench.presets import PRESETS, SMOKE_MAX_POSITIONS, Preset, Setting, Train, get_preset  # noqa: E402
from lrbench.registry import Feature  # noqa: E402

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # shared CI cores: spinning OpenMP threads slow tiny models 10x
HAS_LISTOPS = "listops-subtrees" in lrbench.list_tasks()
REQUIRED = {"task", "model", "preset", "metric", "val", "test", "paper", "steps", "seconds"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fixed_preset(task_params: dict, models: dict[str, dict], *, lr: float, steps: int, batch: int = 16,
                 schedule: str = "constant", warmup: int = 0, val: int = 64, test: int = 64,
                 paper: float | None = None, source: str | None = None, eval_every: int | None = None) -> Preset:
    """A one-cell preset for tests: the same task parameters and training for every task."""
    train = Train(lr=lr, batch_size=batch, steps=steps, schedule=schedule, warmup=warmup,
                  eval_every=eval_every or max(1, steps // 4), log_every=max(1, steps // 8),
                  val_samples=val, test_samples=test)
    return Preset("fixed", "a test preset", (),
                  lambda task, params, model: Setting(task, dict(task_params), dict(models.get(model, {})), train,
                                                      paper, source))


DLR = dict(d_model=32, d_state=64, dt_min=1e-5, dt_max=1e-5)
ATTENTION = dict(d_model=32)


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# it learns (paper Table 1's pattern at small L)


@pytest.mark.parametrize("task", ["cumsum", "shift"])
def test_dlr_learns_cumsum_and_shift(tmp_path, task):
    rows = evaluate("dlr", [task], fixed_preset({"length": 64}, {"dlr": DLR}, lr=3e-3, steps=200),
                    out=tmp_path / "run", device="cpu")
    (row,) = rows
    assert row["metric"] == "r2"
    assert row["test"] >= 0.95 and row["val"] >= 0.95, row
    log = read_log(tmp_path / "run")
    assert log[0]["loss"] > 5 * log[-1]["loss"]  # it learned; it did not start there


def test_attention_beats_dlr_on_mips(tmp_path):
    preset = fixed_preset({"length": 64}, {"dlr": DLR, "attention": ATTENTION}, lr=3e-3, steps=400)
    (att,) = evaluate("attention", ["mips"], preset, out=tmp_path / "att", device="cpu")
    (dlr,) = evaluate("dlr", ["mips"], preset, out=tmp_path / "dlr", device="cpu")
    assert att["test"] > 0.5, att
    assert att["test"] > dlr["test"] + 0.3, (att["test"], dlr["test"])


@pytest.mark.skipif(not HAS_LISTOPS, reason="listops-subtrees is not registered")
def test_listops_beats_the_majority_class(tmp_path):
    params = {"max_depth": 6, "min_length": 16, "max_length": 64}
    model = dict(d_model=64, d_state=64, n_layers=2, dt_min=1e-4, dt_max=1e-1, glu=True)
    preset = fixed_preset(params, {"dlr": model}, lr=3e-3, steps=300, schedule="cosine", warmup=15,
                          val=128, test=256)
    (row,) = evaluate("dlr", ["listops-subtrees"], preset, out=tmp_path / "run", device="cpu")
    task = lrbench.get_task("listops-subtrees", **params)
    targets = np.concatenate([task.sample(i, "test", 0)["targets"] for i in range(256)])
    targets = targets[targets != -100]
    majority = np.bincount(targets).max() / targets.size  # the best constant prediction
    assert row["metric"] == "token_accuracy"
    assert row["test"] > majority + 0.08, (row["test"], majority)


# ---------------------------------------------------------------------------------------------
# results, logs, checkpoints


def test_results_json_md_and_log_schema(tmp_path):
    preset = fixed_preset({"length": 32}, {"dlr": dict(DLR, d_model=16)}, lr=3e-3, steps=16, batch=8, val=16,
                          test=16, paper=0.5, source="Table 9 (made up)")
    events = []
    rows = evaluate("dlr", ["cumsum", "cummax"], preset, out=tmp_path / "run", device="cpu", on_event=events.append)
    run = tmp_path / "run"
    saved = json.loads((run / "results.json").read_text())
    assert set(saved) == {"rows"} and saved["rows"] == rows and len(rows) == 2
    for row, task in zip(rows, ["cumsum", "cummax"]):
        assert REQUIRED <= set(row)
        assert (row["task"], row["model"], row["preset"], row["metric"]) == (task, "dlr", "fixed", "r2")
        assert row["steps"] == 16 and row["seconds"] > 0 and row["paper"] == 0.5
        assert isinstance(row["val"], float) and isinstance(row["test"], float)
        assert row["test_metrics"] == {"r2": row["test"]}
    md = (run / "results.md").read_text()
    assert md.startswith(results_markdown(rows))
    import torch

    for row in rows:  # what the run ran with, in every row, in run.json and job.json, and under the table
        assert row["versions"]["torch"] == torch.__version__ and row["versions"]["lrbench"] == lrbench.__version__
        assert row["threads"] == torch.get_num_threads()
        assert json.loads((run / row["job"] / "job.json").read_text())["versions"] == row["versions"]
    assert json.loads((run / "run.json").read_text())["versions"] == rows[0]["versions"]
    assert md.rstrip().endswith(f"torch {torch.__version__}, python {rows[0]['versions']['python']}, "
                                f"numpy {np.__version__}")
    assert "| cumsum | length=32 | dlr | fixed | r2 |" in md and "0.500 [1]" in md and "[1] Table 9 (made up)" in md
    log = read_log(run)
    assert {"step", "loss", "lr", "val", "steps_per_s", "task", "model"} <= set(log[0])
    assert [r["step"] for r in log if r["task"] == "cumsum"] == [2, 4, 6, 8, 10, 12, 14, 16]
    vals = [r["val"] for r in log if r["task"] == "cumsum" and r["val"] is not None]
    assert len(vals) == 4 and max(vals) == rows[0]["val"]  # best validation is what the row reports
    assert [e["event"] for e in events if e["event"] != "step"] == ["plan", "start", "done", "start", "done"]


def test_resume_continues_at_the_checkpoint_and_matches(tmp_path):
    preset = fixed_preset({"length": 32}, {"dlr": dict(DLR, d_model=16)}, lr=3e-3, steps=24, batch=8, val=16,
                          test=16, eval_every=8)
    (whole,) = evaluate("dlr", ["shift"], preset, out=tmp_path / "a", device="cpu")

    class Interrupt(Exception):
        pass

    def stop_at_13(e):
        if e["event"] == "step" and e["step"] == 13:
            raise Interrupt

    with pytest.raises(Interrupt):
        evaluate("dlr", ["shift"], preset, out=tmp_path / "b", device="cpu", on_event=stop_at_13)
    ckpt = torch.load(tmp_path / "b" / "shift-L32" / "last.pt", weights_only=True)  # no pickled code
    assert ckpt["step"] == 8 and set(ckpt) >= {"model", "optimizer", "rng", "step", "best", "schedule"}
    assert not (tmp_path / "b" / "shift-L32" / "row.json").exists()
    events = []
    (resumed,) = evaluate("dlr", ["shift"], preset, out=tmp_path / "b", device="cpu", on_event=events.append)
    start = next(e for e in events if e["event"] == "start")
    assert start["resume_step"] == 8 and start["checkpoint"].endswith("last.pt")
    assert [e["step"] for e in events if e["event"] == "step"][0] == 9
    for key in ("val", "test", "best_step", "steps"):
        assert resumed[key] == whole[key], key
    strip = lambda log: [(r["step"], r["loss"], r["lr"], r["val"]) for r in log]  # noqa: E731
    assert strip(read_log(tmp_path / "b")) == strip(read_log(tmp_path / "a"))  # no duplicate lines either
    # a finished run is not trained again
    again = []
    evaluate("dlr", ["shift"], preset, out=tmp_path / "b", device="cpu", on_event=again.append)
    assert [e["event"] for e in again] == ["plan", "skip"]


def test_a_run_directory_refuses_other_settings(tmp_path):
    preset = fixed_preset({"length": 32}, {"dlr": dict(DLR, d_model=16)}, lr=3e-3, steps=4, batch=4, val=8, test=8)
    evaluate("dlr", ["cumsum"], preset, out=tmp_path / "run", device="cpu")
    with pytest.raises(LrbenchError, match="seed") as err:
        evaluate("dlr", ["cumsum"], preset, out=tmp_path / "run", device="cpu", seed=1)
    assert err.value.code == 2
    other = fixed_preset({"length": 32}, {"dlr": dict(DLR, d_model=16)}, lr=1e-3, steps=4, batch=4, val=8, test=8)
    with pytest.raises(LrbenchError, match="train"):
        evaluate("dlr", ["cumsum"], other, out=tmp_path / "run", device="cpu")


def test_data_from_disk_gives_the_same_run_as_generated(tmp_path):
    from lrbench.generate import generate

    task = lrbench.get_task("cumsum", length=32)
    generate(task, tmp_path / "data" / task.dir_name(0), seed=0, sizes={"val": 16, "test": 16}, workers=1)
    preset = fixed_preset({"length": 32}, {"dlr": dict(DLR, d_model=16)}, lr=3e-3, steps=8, batch=4, val=16, test=16)
    events = []
    (disk,) = evaluate("dlr", ["cumsum"], preset, out=tmp_path / "disk", device="cpu", data=tmp_path / "data",
                       on_event=events.append)
    (gen,) = evaluate("dlr", ["cumsum"], preset, out=tmp_path / "gen", device="cpu")
    start = next(e for e in events if e["event"] == "start")
    assert start["data"]["val"].endswith("cumsum-L32") and start["data"]["train"] == "stream"
    assert (disk["val"], disk["test"]) == (gen["val"], gen["test"])


# ---------------------------------------------------------------------------------------------
# the learning-rate schedule


def test_lr_schedules():
    const = Train(lr=1.0, batch_size=1, steps=100)
    assert {lr_factor(const, s) for s in range(100)} == {1.0}
    cos = Train(lr=1.0, batch_size=1, steps=110, schedule="cosine", warmup=10)
    f = [lr_factor(cos, s) for s in range(110)]
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert f[10] == pytest.approx(1.0) and f[60] == pytest.approx(0.5) and f[-1] < 1e-3
    assert all(a >= b for a, b in zip(f[10:], f[11:]))


# ---------------------------------------------------------------------------------------------
# DDP with gloo, two processes


def test_two_process_ddp_matches_one_process(tmp_path, cli):
    args = ["evaluate", "--model", "dlr", "--task", "cumsum", "--preset", "smoke", "--device", "cpu"]
    env = {**os.environ, **ONE_THREAD}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "lrbench", *args, "--out", str(tmp_path / "ddp")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    code, _, err = cli(*args, "--out", tmp_path / "one", env=ONE_THREAD, timeout=300)
    assert code == 0, err
    (ddp,) = json.loads((tmp_path / "ddp" / "results.json").read_text())["rows"]
    (one,) = json.loads((tmp_path / "one" / "results.json").read_text())["rows"]
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    # same samples per step, gradients averaged over ranks: the same run up to float rounding
    assert ddp["val"] == pytest.approx(one["val"], abs=1e-4) and ddp["test"] == pytest.approx(one["test"], abs=1e-4)
    log_ddp, log_one = read_log(tmp_path / "ddp"), read_log(tmp_path / "one")
    assert [r["step"] for r in log_ddp] == [r["step"] for r in log_one]  # rank 0 logs, once
    assert log_ddp[0]["loss"] == pytest.approx(log_one[0]["loss"], rel=1e-5)
    assert proc.stdout.count("| cumsum |") == 1  # one table, from rank 0


# ---------------------------------------------------------------------------------------------
# your own model


CUSTOM = textwrap.dedent("""
    import torch

    class CausalConv(torch.nn.Module):
        def __init__(self, d_input, d_output, width=8):
            super().__init__()
            self.conv = torch.nn.Conv1d(d_input, 16, width, padding=width - 1)
            self.out = torch.nn.Linear(16, d_output)

        def forward(self, x):  # [B, T, C] -> [B, T, d_output]
            h = self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)
            return self.out(torch.relu(h))

    def make(d_input, d_output, task):
        with open("factory-args.txt", "w") as f:
            f.write(f"{d_input} {d_output} {task.name} {task.config.length}")
        return CausalConv(d_input, d_output)

    def wrong(d_input, d_output, task):
        return CausalConv(d_input, d_output + 1)
""")


def test_custom_model_factory_through_the_cli(tmp_path, cli):
    (tmp_path / "mymodels.py").write_text(CUSTOM)
    code, out, err = cli("evaluate", "--model", "mymodels:make", "--task", "shift", "--preset", "smoke",
                             "--device", "cpu", "--out", "run", cwd=tmp_path, env=ONE_THREAD)
    assert code == 0, err
    assert (tmp_path / "factory-args.txt").read_text() == "3 8 shift 32"  # d_input, d_output, the task
    (row,) = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert row["model"] == "mymodels:make" and row["task"] == "shift"
    assert row["params"] == 3 * 16 * 8 + 16 + 16 * 8 + 8  # the custom module, not a baseline
    assert "mymodels:make" in out
    code, _, err = cli("evaluate", "--model", "mymodels:wrong", "--task", "shift", "--preset", "smoke",
                       "--device", "cpu", "--out", "run2", cwd=tmp_path, env=ONE_THREAD)
    last = err.strip().splitlines()[-1]
    assert code == 1 and last.startswith("lrbench: error:") and "output shape" in last and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# the CLI contract


@pytest.mark.parametrize("args,message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "dlr", "--task", "nope"], "unknown task 'nope'"),
    (["--model", "dlr", "--preset", "nope"], "unknown preset 'nope'; valid presets: paper"),
    (["--model", "dlr", "--device", "mps"], "--device mps: not available here"),
    (["--model", "dlr", "--device", "nonsense!"], "unknown device"),
    (["--model", "dlr", "--steps", "0"], "--steps must be a positive integer"),
    (["--model", "no_such_module_xyz:make"], "cannot import 'no_such_module_xyz'"),
    (["--model", "dss", "--preset", "paper-l512"], "preset paper-l512 has no setting for model dss"),
    (["--model", "dlr", "--preset", "smoke", "--task", "cumsum", "--resume"], "holds no run to resume"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, cli, args, message):
    code, out, err = cli("evaluate", *args, "--out", tmp_path / "run", cwd=tmp_path, env=ONE_THREAD)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrbench: error:") and message in lines[0], err
    assert out == "" and not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_request_without_cuda_is_exit_2(tmp_path, cli):
    code, _, err = cli("evaluate", "--model", "dlr", "--device", "cuda", cwd=tmp_path, env=ONE_THREAD)
    assert code == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1


def test_cli_prints_the_preset_and_honours_steps(tmp_path, cli):
    code, out, err = cli("evaluate", "--model", "dlr", "--task", "cumsum", "--preset", "smoke", "--steps", "7",
                             "--device", "cpu", "--out", tmp_path / "run", env=ONE_THREAD)
    assert code == 0, err
    assert "preset smoke (given" in err and "| cumsum | length=32 | dlr | smoke | r2 |" in out
    (row,) = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert row["steps"] == 7 and row["best_step"] == 7


FAULTY = textwrap.dedent("""
    import torch

    class Tuple(torch.nn.Module):
        def __init__(self, d_input, d_output):
            super().__init__()
            self.proj = torch.nn.Linear(d_input, d_output)

        def forward(self, x):
            y = self.proj(x)
            return y, y

    class Ints(Tuple):
        def forward(self, x):
            return self.proj(x).round().long()

    class Constant(torch.nn.Module):
        def __init__(self, d_output):
            super().__init__()
            self.d_output = d_output

        def forward(self, x):
            return torch.zeros(x.shape[0], x.shape[1], self.d_output)

    def tuple_out(d_input, d_output, task):
        return Tuple(d_input, d_output)

    def int_out(d_input, d_output, task):
        return Ints(d_input, d_output)

    def no_parameters(d_input, d_output, task):
        return Constant(d_output)

    def exits(d_input, d_output, task):
        raise SystemExit(3)
""")


def run_main(args, capsys):
    from lrbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def one_line(code, out, err, want_code, fragment):
    lines = err.strip().splitlines()
    assert code == want_code, (code, err)
    assert lines and lines[-1].startswith("lrbench: error:") and fragment in lines[-1], err
    assert "Traceback" not in err and not [line for line in lines if line.startswith("lrbench: error:")][1:]


SMOKE = ["evaluate", "--task", "cumsum", "--preset", "smoke", "--device", "cpu", "--steps", "2"]


@pytest.mark.parametrize("factory,code,message", [
    ("tuple_out", 1, "returned a tuple, not a tensor"),
    ("int_out", 1, "returned a torch.int64 tensor; it must return floating-point values"),
    ("no_parameters", 1, "has no trainable parameters"),
    ("exits", 1, "called sys.exit(3)"),
])
def test_a_faulty_custom_model_is_one_line(tmp_path, monkeypatch, capsys, factory, code, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lrbench_faulty_models.py").write_text(FAULTY)
    got = run_main([*SMOKE, "--model", f"lrbench_faulty_models:{factory}", "--out", tmp_path / "run"], capsys)
    one_line(*got, code, message)


def test_a_module_that_exits_on_import_is_an_error_not_a_success(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lrbench_exiting_module.py").write_text("import sys\nsys.exit(0)\n")
    got = run_main([*SMOKE, "--model", "lrbench_exiting_module:make", "--out", tmp_path / "run"], capsys)
    one_line(*got, 2, "importing 'lrbench_exiting_module' for --model lrbench_exiting_module:make called sys.exit(0)")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("variable", ["WORLD_SIZE", "RANK", "LOCAL_RANK"])
def test_a_malformed_distributed_environment_is_one_line(tmp_path, monkeypatch, capsys, variable):
    monkeypatch.setenv(variable, "abc")
    got = run_main([*SMOKE, "--model", "dlr", "--out", tmp_path / "run"], capsys)
    one_line(*got, 2, f"{variable} must be an integer (got 'abc')")


def test_damaged_run_files_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    args = [*SMOKE, "--model", "dlr", "--out", run]
    (run / "cumsum-L32").mkdir(parents=True)
    (run / "cumsum-L32" / "job.json").write_text('{"task": "cum')
    one_line(*run_main(args, capsys), 2, "job.json is unreadable")
    (run / "cumsum-L32" / "job.json").unlink()
    assert run_main(args, capsys)[0] == 0
    # a checkpoint that loads but lacks what a resume needs
    (run / "cumsum-L32" / "row.json").unlink()
    torch.save({"format": 1, "step": 1}, run / "cumsum-L32" / "last.pt")
    one_line(*run_main(args, capsys), 1, "last.pt: not a checkpoint of this job (it lacks 'model')")
    (run / "cumsum-L32" / "row.json").write_text("[1, 2")
    one_line(*run_main(args, capsys), 2, "row.json is unreadable")


def test_numpy_integers_plan_an_evaluation():
    from lrbench.evaluate import plan

    (job,) = plan("dlr", ["cumsum"], get_preset("smoke"), seed=np.int64(1), steps=np.int64(3))
    assert job.setting.train.steps == 3 and job.data_seed == 1


def test_a_run_label_picks_one_of_a_tasks_runs():
    """`--task pathfinder` is every Pathfinder run of the preset; `pathfinder-32` the one at 32."""
    from lrbench.evaluate import plan

    lra = get_preset("lra")
    sizes = lambda jobs: [(j.task.name, j.task.config.size) for j in jobs]  # noqa: E731
    assert sizes(plan("s4d", ["pathfinder"], lra)) == [("pathfinder", 32), ("pathfinder", 128)]
    assert sizes(plan("s4d", ["pathfinder-128"], lra)) == [("pathfinder", 128)]
    assert sizes(plan("s4d", ["pathfinder-32", "pathfinder"], lra)) == [("pathfinder", 32), ("pathfinder", 128)]
    (job,) = plan("dlr", ["shift-L512"], get_preset("quick"))  # the length quick sets, not the default
    assert job.task.config.length == 512
    with pytest.raises(LrbenchError, match="or one of preset quick's runs: shift-L512, .*pathfinder-32"):
        plan("dlr", ["shift-L4096"], get_preset("quick"))


def test_missing_torch_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from lrbench.cli import main\n"
            "main(['evaluate', '--model', 'dlr', '--preset', 'smoke', '--task', 'cumsum'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "lrbench: error: lrbench evaluate needs PyTorch: pip install 'lrbench-synth[torch]'"


def test_the_harness_imports_without_torch():
    code = ("import sys; import lrbench, lrbench.evaluate, lrbench.presets, lrbench.paper_results, lrbench.cli\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# presets: the paper's tables, transcribed independently here


def test_paper_preset_is_table_4_and_5():
    paper = get_preset("paper")
    s = paper.setting("shift", {}, "dlr")
    assert s.task_params == {"length": 4096}
    assert {k: s.model[k] for k in ("d_model", "d_state", "dt_min", "dt_max", "n_layers")} == \
        {"d_model": 128, "d_state": 4096, "dt_min": 1e-5, "dt_max": 1e-5, "n_layers": 1}
    assert (s.train.lr, s.train.batch_size, s.train.steps, s.train.schedule, s.train.weight_decay) == \
        (1e-4, 16, 40_000, "constant", 0.0)
    assert s.paper == 1.0
    d = paper.setting("select-fixed", {}, "dss")
    assert (d.model["dt_min"], d.model["dt_max"], d.train.lr, d.paper) == (1e-4, 1e-2, 1e-3, 0.0)
    a = paper.setting("mips", {}, "attention")
    assert (a.model["d_model"], a.model["n_layers"], a.train.lr, a.paper) == (128, 1, 1e-3, 0.90)
    assert paper.setting("mips", {}, "dlr-prod").paper is None  # not a cell of Table 1
    ls = paper.setting("listops-subtrees", {}, "dlr")
    assert {k: ls.model[k] for k in ("n_layers", "d_model", "d_state", "dt_min", "dt_max", "glu", "prenorm")} == \
        {"n_layers": 6, "d_model": 128, "d_state": 1024, "dt_min": 1e-4, "dt_max": 0.1, "glu": True, "prenorm": False}
    assert (ls.train.lr, ls.train.batch_size, ls.train.steps, ls.train.weight_decay, ls.train.schedule) == \
        (8e-4, 32, 300_000, 0.01, "cosine")
    assert ls.paper == pytest.approx(0.857)
    assert paper.setting("listops-subtrees", {}, "local-attention").paper == pytest.approx(0.940)
    for size, (layers, h, n, lr, b, steps, f1) in {128: (5, 128, 1024, 1e-4, 16, 150_000, .968),
                                                    256: (6, 128, 1024, 5e-5, 18, 178_000, .940),
                                                    512: (12, 64, 2048, 1e-5, 14, 114_000, .763)}.items():
        p = paper.setting("pathfinder-seg", {"size": size}, "dlr")
        assert (p.model["n_layers"], p.model["d_model"], p.model["d_state"]) == (layers, h, n)
        assert (p.train.lr, p.train.batch_size, p.train.steps) == (lr, b, steps)
        assert p.model["prenorm"] and p.model["bidirectional"] and p.model["glu"]
        assert p.paper == pytest.approx(f1)
    l512 = get_preset("paper-l512")
    s = l512.setting("reverse", {}, "dlr")
    assert (s.task_params["length"], s.model["n_layers"], s.train.lr, s.train.batch_size, s.train.steps,
            s.paper) == (512, 6, 5e-5, 64, 11_000, 0.95)
    s = l512.setting("select", {}, "attention")
    assert (s.model["n_layers"], s.train.lr, s.paper) == (2, 1e-3, 0.97)
    s = get_preset("paper-shift").setting("shift", {"length": 2**20}, "dlr-prod")
    assert (s.model["d_model"], s.train.batch_size, s.train.steps, s.train.lr, s.paper) == (32, 4, 86_000, 1e-5, 0.78)


def test_default_preset_and_suites():
    assert default_preset(torch.device("cuda"))[0] == "paper"
    assert default_preset(torch.device("cpu"))[0] == "quick"
    assert set(PRESETS) >= {"paper", "quick", "smoke"}
    for name in ("paper", "quick"):
        tasks = [t for t, _ in PRESETS[name].suite]
        assert set(tasks) >= {"shift", "cumsum", "cummax", "reverse", "sort", "select", "select-fixed", "mips",
                              "context-shift", "solve", "solve-fixed", "listops-subtrees", "pathfinder-seg"}
    # every (task, model) cell of the quick and smoke presets builds
    from lrbench.baselines import MODELS, build

    for name in ("quick", "smoke"):
        for task, params in PRESETS[name].suite:
            if task not in lrbench.list_tasks():
                continue
            for model in MODELS:
                s = PRESETS[name].setting(task, params, model)
                lrbench.get_task(task, **s.task_params)
                build(model, 3, 1, **s.model)


def test_smoke_runs_local_attention_over_several_chunks():
    """Chunks of 1024 made local attention on a tiny task full attention over a padded chunk (and
    seconds a step); the smoke preset's chunks are smaller than every tiny task it runs."""
    smoke = get_preset("smoke")
    for name in lrbench.list_tasks():
        task = lrbench.get_task(name, **lrbench.get_task(name).tiny)
        if task.t_in <= SMOKE_MAX_POSITIONS:
            cfg = smoke.setting(name, {}, "local-attention").model
            assert 2 * cfg["chunk_size"] <= task.t_in, (name, cfg["chunk_size"], task.t_in)
            assert "chunk_size" not in smoke.setting(name, {}, "attention").model


@dataclasses.dataclass(frozen=True)
class WidthConfig:
    width: int = 64
    depth: int = 3


def _toy_signal(rng, cfg):
    x = rng.standard_normal((cfg.width, 2)).astype(np.float32)
    return {"inputs": x, "targets": x[:, :1].copy()}


def _toy_features(cfg):
    return {"inputs": Feature("float32", (cfg.width, 2)), "targets": Feature("float32", (cfg.width, 1))}


def _toy_tokens(rng, cfg):
    n = int(rng.integers(2, cfg.width + 1))
    return {"inputs": rng.integers(1, 5, n).astype(np.uint8), "targets": rng.integers(0, 3, n).astype(np.int8)}


def _toy_token_features(cfg):
    return {"inputs": Feature("uint8", (cfg.width,), ragged=True), "targets": Feature("int8", (cfg.width,), ragged=True,
                                                                                      pad=-100)}


def test_presets_ask_the_task_not_its_name():
    """Two tasks the presets have never heard of get settings from their registry entries: a regression
    task whose size parameter is `width` (Table 1's L goes there), a token tagging task with its own
    quick instance and block hints."""
    signal = registry.TaskSpec(
        name="toy-width", id=9101, config=WidthConfig, generate=_toy_signal, features=_toy_features,
        kind="regression", metrics=("r2",), view="signal", default_splits={"val": 8}, finite_splits=("val",),
        dir_label=lambda c: f"toy-width-{c.width}", tiny={"width": 16},
        size=registry.SizeParam("width", "--width", "W"))
    tokens = registry.TaskSpec(
        name="toy-tags", id=9102, config=WidthConfig, generate=_toy_tokens, features=_toy_token_features,
        kind="tagging", metrics=("token_accuracy",), view="tokens", vocab_size=5, num_classes=3,
        default_splits={"train": 8, "val": 8}, finite_splits=("train", "val"), dir_label=lambda c: "toy-tags",
        tiny={"width": 8}, hints=registry.Hints(block=dict(glu=True, bidirectional=True), quick={"depth": 2}))
    for spec in (signal, tokens):
        registry.register(spec)
    try:
        paper = get_preset("paper").setting("toy-width", {}, "dss")
        assert paper.task_params == {"width": 4096} and paper.train.lr == 1e-3 and paper.paper is None
        quick = get_preset("quick").setting("toy-width", {"depth": 5}, "dlr")
        assert quick.task_params == {"depth": 5, "width": 512} and quick.train.schedule == "constant"
        smoke = get_preset("smoke").setting("toy-tags", {}, "attention")
        assert smoke.task_params == {"width": 8} and smoke.train.schedule == "cosine"
        assert smoke.model["glu"] and smoke.model["bidirectional"] and "d_state" not in smoke.model
        tagged = get_preset("quick").setting("toy-tags", {}, "dlr")
        assert tagged.task_params == {"depth": 2} and tagged.model["n_layers"] == 4  # the token row
        with pytest.raises(LrbenchError, match="preset paper has no setting for task toy-tags at toy-tags"):
            get_preset("paper").setting("toy-tags", {}, "dlr")
    finally:
        for spec in (signal, tokens):
            registry.unregister(spec.name)


def test_a_model_file_declares_its_preset_row():
    """A model registered at run time: its ROWS entry gives it DLR's paper rows, minus the keys it does not
    take; without a `bidirectional` key the presets refuse Pathfinder, run bidirectionally in the paper."""
    from lrbench import baselines

    family = types.SimpleNamespace(
        __name__="toy_family", CONFIG={"toy-ssm": dict(d_state=8)}, ROWS={"toy-ssm": "dlr"},
        mixer=lambda name, cfg: torch.nn.Linear(cfg["d_model"], cfg["d_model"]))
    baselines.register(family)
    try:
        assert "toy-ssm" in baselines.MODELS
        s = get_preset("paper").setting("shift", {}, "toy-ssm")
        assert s.model == {"d_model": 128, "d_state": 4096, "n_layers": 1} and s.train.lr == 1e-4 and s.paper is None
        with pytest.raises(LrbenchError, match="model toy-ssm has no bidirectional setting"):
            get_preset("quick").setting("pathfinder-seg", {}, "toy-ssm")
        assert baselines.build("toy-ssm", 3, 1, **s.model)(torch.zeros(1, 5, 3)).shape == (1, 5, 1)
    finally:
        baselines.unregister(family)
    assert "toy-ssm" not in baselines.MODELS


def _state_size(model, net) -> int:
    """N read off the recurrence parameters' shapes (S4D and S5 keep one of each conjugate pair)."""
    p = dict(net.layers[0].mixer.named_parameters())
    return {"lru": lambda: p["nu_log"].shape[0], "s4d": lambda: 2 * p["A_imag"].shape[-1],
            "s5": lambda: 2 * p["Lambda_re"].shape[0], "mamba": lambda: p["A_log"].shape[1]}[model]()


def test_seed_families_keep_their_papers_state_under_quick():
    """quick gives LRU, S4D, S5, Mamba and RG-LRU DLR's width, depth and LR, and each family its
    own paper's state size and recurrence LR, not DLR's N = 512 and Δ = 1e-5."""
    from lrbench.baselines import build

    quick = get_preset("quick")
    dlr = quick.setting("shift", {}, "dlr")
    # (model, its paper's state size, its recurrence LR at DLR's 2e-3)
    expected = {"lru": (256, 1e-3), "s4d": (64, 1e-3), "s5": (256, 1e-3), "mamba": (16, None),
                "rglru": (None, None)}
    for model, (n, kernel_lr) in expected.items():
        s = quick.setting("shift", {}, model)
        assert (s.train.lr, s.train.steps, s.train.batch_size) == (dlr.train.lr, dlr.train.steps, dlr.train.batch_size)
        assert s.train.kernel_lr == kernel_lr, model
        assert s.task_params == dlr.task_params
        assert s.model == {"d_model": 64, "n_layers": 1}, model
        if n is not None:
            assert _state_size(model, build(model, 1, 1, **s.model)) == n, model
    # smoke caps the state at its row's 32, so that a smoke step stays cheap
    s4d = build("s4d", 1, 1, **get_preset("smoke").setting("shift", {}, "s4d").model)
    assert _state_size("s4d", s4d) == 32
