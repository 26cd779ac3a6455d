"""`lrbench evaluate`: the baselines learn what the paper says they learn, on CPU, at small sizes;
the harness resumes exactly, runs under DDP, takes custom models, writes its results, and fails
with one line on bad input.

Every run here is small (L <= 64, a few hundred steps, one thread) so the file stays within a few
minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lrbench  # noqa: E402
from lrbench import metrics as M  # noqa: E402
from lrbench.evaluate import (EvaluateError, _Batches, _pack, _Source, _unpack_merge, _lr_factor,  # noqa: E402
                              default_preset, evaluate, results_markdown)
from lrbench.presets import PRESETS, Preset, Setting, Train, get_preset  # noqa: E402

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # shared CI cores: spinning OpenMP threads slow tiny models 10x
HAS_LISTOPS = "listops-subtrees" in lrbench.list_tasks()
REQUIRED = {"task", "model", "preset", "metric", "val", "test", "paper", "steps", "seconds"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    assert md == results_markdown(rows)
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
    with pytest.raises(EvaluateError, match="seed") as err:
        evaluate("dlr", ["cumsum"], preset, out=tmp_path / "run", device="cpu", seed=1)
    assert err.value.code == 2
    other = fixed_preset({"length": 32}, {"dlr": dict(DLR, d_model=16)}, lr=1e-3, steps=4, batch=4, val=8, test=8)
    with pytest.raises(EvaluateError, match="train"):
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


@pytest.mark.skipif(not HAS_LISTOPS, reason="listops-subtrees is not registered")
def test_finite_train_split_reshuffles_per_epoch_and_matches_disk(tmp_path):
    from lrbench.dataset import open_dataset
    from lrbench.generate import generate

    params = {"max_depth": 6, "min_length": 16, "max_length": 64}
    task = lrbench.get_task("listops-subtrees", **params)
    generate(task, tmp_path / "ds", seed=3, sizes={"train": 12}, workers=1)
    config = json.loads(lrbench.registry.config_json(task.config))
    stream = _Source(task.name, config, 3, "train", None, epoch_size=12)
    disk = _Source(task.name, config, 3, "train", str(tmp_path / "ds"), epoch_size=12)
    order = [stream._item(i) for i in range(36)]
    for e in range(3):
        assert sorted(order[12 * e: 12 * e + 12]) == list(range(12))  # each epoch: every sample once
    assert order[:12] != order[12:24]  # in a new order
    ds = open_dataset(tmp_path / "ds")
    for i in (0, 5, 17, 30):
        a, b = stream(i), disk(i)
        assert np.array_equal(a["inputs"], b["inputs"]) and np.array_equal(a["targets"], b["targets"])
        assert np.array_equal(a["inputs"], ds["train"][order[i]]["inputs"])


# ---------------------------------------------------------------------------------------------
# batches, ranks, metrics over ranks, schedule


def test_a_steps_samples_do_not_depend_on_world_size():
    task = lrbench.get_task("cumsum", length=16)
    src = _Source("cumsum", {"length": 16}, 0, "train")
    one = _Batches(src, task.features, range(3, 5), stride=8, offset=0, size=8)
    two = [_Batches(src, task.features, range(3, 5), stride=8, offset=4 * r, size=4) for r in range(2)]
    for k in range(2):
        key, whole = one[k]
        parts = [b[k][1]["inputs"] for b in two]
        assert key == 3 + k and all(b[k][0] == key for b in two)
        assert np.array_equal(whole["inputs"], np.concatenate(parts))
        expect = np.stack([task.sample(i, "train", 0)["inputs"] for i in range(8 * key, 8 * key + 8)])
        assert np.array_equal(whole["inputs"], expect)


@pytest.mark.parametrize("metric,per_batch", [("r2", None), ("r2", 4), ("token_accuracy", None),
                                              ("macro_f1", None), ("macro_accuracy", 4)])
def test_accumulators_merge_across_ranks_exactly(metric, per_batch):
    rng = np.random.default_rng(0)
    if metric == "r2":
        target = rng.normal(size=(16, 10, 2))
        pred = target + rng.normal(size=target.shape) * 0.3
        kw = {}
    else:
        target = rng.integers(0, 3, size=(16, 20))
        target[:, :3] = -100
        pred = np.where(rng.random(target.shape) < 0.7, np.maximum(target, 0), rng.integers(0, 3, target.shape))
        kw = {"num_classes": 3}
    whole = M.make_accumulator(metric, per_batch, **kw)
    ranks = [M.make_accumulator(metric, per_batch, **kw) for _ in range(2)]
    for b in range(4):  # batches of 4 samples, alternating between two ranks
        sl = slice(4 * b, 4 * b + 4)
        whole.update(pred[sl], target[sl])
        ranks[b % 2].update(pred[sl], target[sl])
    merged = _unpack_merge(M.make_accumulator(metric, per_batch, **kw), [_pack(r) for r in ranks])
    assert merged.result() == pytest.approx(whole.result(), rel=1e-12, abs=1e-12)
    assert ranks[0].result() != pytest.approx(whole.result(), rel=1e-9)  # the merge did something


def test_lr_schedules():
    const = Train(lr=1.0, batch_size=1, steps=100)
    assert {_lr_factor(const, s) for s in range(100)} == {1.0}
    cos = Train(lr=1.0, batch_size=1, steps=110, schedule="cosine", warmup=10)
    f = [_lr_factor(cos, s) for s in range(110)]
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
    from lrbench.evaluate import BASELINES

    assert BASELINES == MODELS  # evaluate's torch-free copy of the list
    for name in ("quick", "smoke"):
        for task, params in PRESETS[name].suite:
            if task not in lrbench.list_tasks():
                continue
            for model in MODELS:
                s = PRESETS[name].setting(task, params, model)
                lrbench.get_task(task, **s.task_params)
                build(model, 3, 1, **s.model)
