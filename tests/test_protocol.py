"""The evaluation protocol around a run: --seeds (mean ± std, failed seeds), --set for any preset or
model field (custom models included), --threads, a checkpoint before the first evaluation, the mean
loss since the last log line, versions in the run files, `evaluate()` given a model object, the
progress line and the TensorBoard sink. Every run is tiny (L = 32, H <= 16, a few steps)."""

from __future__ import annotations

import json
import math
import statistics
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lrbench.cli import main  # noqa: E402
from lrbench.evaluate import evaluate  # noqa: E402
from lrbench.evaluate import loop as loop_module  # noqa: E402
from lrbench.presets import Preset, Setting, Train  # noqa: E402

TINY = ["--preset", "smoke", "--task", "shift", "--set", "d_model=8", "--set", "d_state=8", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(args, capsys) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def preset(steps: int, eval_every: int, log_every: int) -> Preset:
    train = Train(lr=3e-3, batch_size=8, steps=steps, eval_every=eval_every, log_every=log_every, val_samples=16,
                  test_samples=16)
    model = dict(d_model=8, d_state=8, dt_min=1e-5, dt_max=1e-5)
    return Preset("tiny", "a test preset", (("shift", {}),),
                  lambda task, params, m: Setting(task, {"length": 32}, dict(model) if ":" not in m else {}, train))


def test_seeds_summary_is_the_mean_and_std_of_the_seeds_rows(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=6", "--seeds", "3",
                                 "--out", out], capsys)
    assert code == 0, err
    saved = json.loads((out / "results.json").read_text())
    rows, (cell,) = saved["rows"], saved["summary"]
    assert [r["seed"] for r in rows] == [0, 1, 2]
    for k in range(3):  # each seed an ordinary run directory of its own
        assert json.loads((out / f"seed-{k}" / "run.json").read_text())["seed"] == k
    tests = [r["test"] for r in rows]
    assert len(set(tests)) == 3, "three seeds gave the same result"
    assert cell["mean"] == pytest.approx(statistics.mean(tests))
    assert cell["std"] == pytest.approx(statistics.stdev(tests))
    assert cell["n"] == 3 and f"{statistics.mean(tests):.3f} ± {statistics.stdev(tests):.3f}" in stdout
    # a rerun skips every finished seed; one seed's command on the same directory is refused
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=6", "--seeds", "3",
                            "--out", out], capsys)
    assert code == 0 and err.count("already done") == 3, err
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=6", "--out", out], capsys)
    assert code == 2 and "several seeds" in err and len(err.strip().splitlines()) == 1


def test_set_reaches_the_task_the_model_and_the_training(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=4", "--set", "lr=1e-3",
                            "--set", "length=48", "--set", "train.batch_size=4", "--out", out], capsys)
    assert code == 0, err
    (jobdir,) = [p.parent for p in out.glob("*/job.json")]
    job = json.loads((jobdir / "job.json").read_text())
    assert job["task_config"]["length"] == 48
    assert job["model_config"]["d_model"] == 8 and job["model_config"]["d_state"] == 8
    assert (job["train"]["lr"], job["train"]["steps"], job["train"]["batch_size"]) == (1e-3, 4, 4)
    row = json.loads((jobdir / "row.json").read_text())
    assert row["params"] < 2000  # H = 8, N = 8: not the smoke row's H = 16, N = 32
    assert json.loads((out / "run.json").read_text())["set"]["lr"] == "1e-3"
    # the same directory with another --set is another run: refused
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=4", "--out", out], capsys)
    assert code == 2 and "set=" in err


@pytest.mark.parametrize("setting, message", [
    ("nonsense=1", "not a training setting"),
    ("steps=1.5", "steps must be a positive integer"),
    ("lr=-1", "lr must be positive"),
    ("bogus.lr=1", "a prefix is train., task. or model."),
    ("length=abc", "length must be int"),
    ("lr", "expects KEY=VALUE"),
])
def test_bad_set_is_one_line_and_exit_2(tmp_path, capsys, setting, message):
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", setting, "--out", tmp_path / "r"], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_custom_factory_receives_its_keys_and_is_told_whose_settings_it_trains_with(tmp_path, capsys,
                                                                                   monkeypatch):
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        import torch

        SEEN = []

        def make(d_input, d_output, task, width=4):
            SEEN.append(width)
            return torch.nn.Sequential(torch.nn.Linear(d_input, width), torch.nn.Linear(width, d_output))
    """))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["evaluate", "--model", "mymodels:make", "--preset", "smoke", "--task", "shift",
                            "--set", "width=24", "--set", "steps=3", "--set", "lr=1e-3", "--out", tmp_path / "r"],
                           capsys)
    assert code == 0, err
    import mymodels

    assert mymodels.SEEN == [24]
    row = json.loads(next((tmp_path / "r").glob("*/row.json")).read_text())
    assert row["params"] == (3 * 24 + 24) + (24 * 8 + 8)  # shift: 3 channels in, 8 out
    assert "trains with DLR's settings of preset smoke (lr 0.001" in err


def test_threads_apply_during_the_run_and_are_restored(tmp_path):
    torch.set_num_threads(2)
    try:
        rows = evaluate("dlr", ["shift"], preset(4, 4, 2), out=tmp_path / "r", device="cpu", threads=1)
        assert rows[0]["threads"] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    with pytest.raises(ValueError, match="--threads must be a positive integer"):
        evaluate("dlr", ["shift"], preset(4, 4, 2), out=tmp_path / "r2", device="cpu", threads=0)


def test_logged_loss_is_the_mean_since_the_previous_line(tmp_path, monkeypatch):
    seen = []
    step = loop_module.Runner._step

    def recording(self, *args, **kwargs):
        loss = step(self, *args, **kwargs)
        seen.append(float(loss.detach()))
        return loss

    monkeypatch.setattr(loop_module.Runner, "_step", recording)
    evaluate("dlr", ["shift"], preset(12, 12, 4), out=tmp_path / "r", device="cpu")
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [4, 8, 12]
    for r in log:
        assert r["loss"] == pytest.approx(np.mean(seen[r["step"] - 4:r["step"]]), rel=1e-6)
    assert not math.isclose(log[0]["loss"], seen[3])  # not the last step's loss


def test_a_checkpoint_before_the_first_evaluation_resumes_exactly(tmp_path, monkeypatch):
    """A run stopped before its first evaluation keeps its progress (last.pt by time), and the resumed
    run ends where the uninterrupted one does."""
    whole = evaluate("dlr", ["shift"], preset(10, 10, 2), out=tmp_path / "whole", device="cpu")[0]
    monkeypatch.setattr(loop_module, "CHECKPOINT_SECONDS", 0.0)  # every step is "long enough"

    def stop_at_6(e):
        if e["event"] == "step" and e["step"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate("dlr", ["shift"], preset(10, 10, 2), out=tmp_path / "cut", device="cpu", on_event=stop_at_6)
    (last,) = (tmp_path / "cut").glob("*/last.pt")
    assert torch.load(last, weights_only=True)["step"] == 6
    events = []
    resumed = evaluate("dlr", ["shift"], preset(10, 10, 2), out=tmp_path / "cut", device="cpu",
                       on_event=events.append)[0]
    assert next(e for e in events if e["event"] == "start")["resume_step"] == 6
    assert (resumed["test"], resumed["val"]) == (whole["test"], whole["val"])


def test_evaluate_takes_a_factory_or_a_module(tmp_path):
    def factory(d_input, d_output, task):
        return torch.nn.Linear(d_input, d_output)

    rows = evaluate(factory, ["shift"], preset(4, 4, 2), out=tmp_path / "f", device="cpu")
    assert rows[0]["params"] == 3 * 8 + 8 and rows[0]["model"].endswith(":test_evaluate_takes_a_factory_or_a_module."
                                                                        "<locals>.factory")
    module = torch.nn.Linear(3, 8)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    rows = evaluate(module, ["shift"], preset(4, 4, 2), out=tmp_path / "m", device="cpu", seeds=2)
    assert len(rows) == 2 and rows[0]["params"] == 32
    for k, v in module.state_dict().items():  # trained from copies: the caller's module is untouched
        assert torch.equal(v, before[k])
    with pytest.raises(ValueError, match="model must be"):
        evaluate(42, ["shift"], preset(4, 4, 2), out=tmp_path / "x", device="cpu")


def test_progress_line_shows_loss_and_validation(tmp_path, capsys):
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=5", "--out", tmp_path / "r"],
                           capsys)
    assert code == 0, err
    final = [line for line in err.splitlines() if "5/5 steps" in line]
    assert final and " loss " in final[-1] and " val r2=" in final[-1], err


def test_tensorboard_sink_holds_what_log_jsonl_holds(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "r"
    code, _, err = run_cli(["evaluate", "--model", "dlr", *TINY, "--set", "steps=8", "--set", "log_every=2",
                            "--set", "eval_every=4", "--log", "tensorboard", "--out", out], capsys)
    assert code == 0, err
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    (events,) = (out / "tensorboard").iterdir()
    acc = EventAccumulator(str(events))
    acc.Reload()
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert [s for s, _ in loss] == [r["step"] for r in log] == [2, 4, 6, 8]
    assert [v for _, v in loss] == pytest.approx([r["loss"] for r in log], rel=1e-6)
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars("val/r2")] == \
        [(r["step"], r["val"]) for r in log if r["val"] is not None]
