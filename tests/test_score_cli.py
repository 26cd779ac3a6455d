"""``lrbench score`` and ``lrbench.scoring`` on real generated datasets, checked against metrics
computed independently from the samples themselves (scikit-learn or by hand)."""

import json
import warnings
from dataclasses import dataclass

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import lrbench
from lrbench import registry
from lrbench.cli import cli, main
from lrbench.generate import generate
from lrbench.registry import Feature, TaskSpec
from lrbench.errors import LrbenchError
from lrbench.scoring import score_dataset

sk = pytest.importorskip("sklearn.metrics")


# ------------------------------------------------------------------ helpers


def run_main(args, capsys):
    """Run the real entry point (one-line errors, exit codes); return (code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def samples(ds, split="test"):
    view = ds[split]
    return [view[i] for i in range(len(view))]


@pytest.fixture(scope="module")
def shift_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    result = CliRunner().invoke(cli, ["generate", "shift", "--length", "32", "--splits", "val,test",
                                      "--num-samples", "test=13", "--num-samples", "val=4",
                                      "--shard-size", "5", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "shift-L32"


# Two small tagging tasks registered for the test only, so that the generic scoring paths (ragged
# token targets with per-position group fields; image targets with a sequence view) are tested
# whatever the real ListOps / Pathfinder generators do.


@dataclass(frozen=True)
class ToyTokensConfig:
    max_length: int = 24


def toy_tokens(rng, cfg):
    n = int(rng.integers(4, cfg.max_length + 1))
    scored = rng.random(n) < 0.4
    scored[-1] = True
    targets = np.where(scored, rng.integers(0, 10, n), -100)
    height = np.where(scored, rng.integers(1, 5, n), -1)
    op = np.where(scored, rng.integers(0, 4, n), -1)
    return {"inputs": rng.integers(1, 16, n).astype(np.int8), "targets": targets.astype(np.int8),
            "node_height": height.astype(np.int8), "node_op": op.astype(np.int8)}


@dataclass(frozen=True)
class ToyImageConfig:
    size: int = 6


def toy_image(rng, cfg):
    m = cfg.size
    labels = rng.choice(3, size=(m, m), p=[0.7, 0.2, 0.1]).astype(np.uint8)
    return {"inputs": (labels * 80).astype(np.uint8), "targets": labels,
            "connected": np.uint8(rng.integers(0, 2))}


def _spec(name, task_id, config, gen, features, metrics, num_classes, view, vocab_size=None):
    return TaskSpec(name=name, id=task_id, config=config, generate=gen, features=features, kind="tagging",
                    metrics=metrics, view=view, vocab_size=vocab_size, num_classes=num_classes,
                    dir_label=lambda cfg: name, default_splits={"train": 10, "val": 10, "test": 10},
                    finite_splits=("test",), tiny={})


TOY_TOKENS = _spec(
    "toy-tokens", 9001, ToyTokensConfig, toy_tokens,
    lambda c: {"inputs": Feature("int8", (c.max_length,), ragged=True, pad=0),
               "targets": Feature("int8", (c.max_length,), ragged=True, pad=-100),
               "node_height": Feature("int8", (c.max_length,), ragged=True, pad=-1),
               "node_op": Feature("int8", (c.max_length,), ragged=True, pad=-1, labels=("MIN", "MAX", "MED", "SM"))},
    ("token_accuracy",), 10, "tokens", vocab_size=16)
TOY_IMAGE = _spec(
    "toy-image", 9002, ToyImageConfig, toy_image,
    lambda c: {"inputs": Feature("uint8", (c.size, c.size)), "targets": Feature("uint8", (c.size, c.size)),
               "connected": Feature("uint8", ())},
    ("macro_f1", "macro_accuracy"), 3, "image")


@pytest.fixture
def toy_tasks():
    for spec in (TOY_TOKENS, TOY_IMAGE):
        registry.register(spec)
    yield
    for spec in (TOY_TOKENS, TOY_IMAGE):
        registry.unregister(spec.name)


def make_toy(tmp_path, name, n=11, shard_size=4):
    task = lrbench.get_task(name)
    directory = tmp_path / name
    generate(task, directory, sizes={"test": n}, shard_size=shard_size, workers=1)
    return directory


# ------------------------------------------------------------------ regression (a real task)


def test_all_zeros_on_shift_gives_the_hand_computed_r2(shift_dir, tmp_path, capsys):
    ds = lrbench.open_dataset(shift_dir)
    y = np.stack([s["targets"] for s in samples(ds)]).astype(np.float64)  # (13, 32, 8)
    want = 1 - (y ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert -0.05 < want < 0  # the mean is near zero but not exactly: slightly negative
    preds = tmp_path / "zeros.npy"
    np.save(preds, np.zeros(y.shape, dtype=np.float32))
    out_json = tmp_path / "result.json"
    code, out, err = run_main(["score", shift_dir, "--predictions", preds, "--json", out_json], capsys)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert result["task"] == "shift" and result["split"] == "test" and result["num_samples"] == 13
    assert result["metrics"]["r2"] == pytest.approx(want, rel=1e-9)
    assert "r2" in out and f"{want:.6f}" in out
    assert "breakdowns" not in result


@pytest.mark.parametrize("B", [None, 1, 4, 13, 50])
def test_score_shift_matches_the_metric_on_the_samples(shift_dir, B):
    ds = lrbench.open_dataset(shift_dir)
    y = np.stack([s["targets"] for s in samples(ds)]).astype(np.float64)
    pred = (0.8 * y + 0.1 * np.random.default_rng(0).normal(size=y.shape)).astype(np.float32)
    if B is None:
        want = sk.r2_score(y.reshape(-1), pred.reshape(-1).astype(np.float64))
    else:  # the paper's protocol, by hand: last batch weighted by its size
        vals, weights = [], []
        for s in range(0, len(y), B):
            yb, pb = y[s:s + B], pred[s:s + B].astype(np.float64)
            vals.append(1 - np.mean((pb - yb) ** 2) / max(np.mean((yb - yb.mean()) ** 2), 1e-5))
            weights.append(len(yb))
        want = np.average(vals, weights=weights)
    got = score_dataset(shift_dir, pred, per_batch=B)
    assert got["metrics"]["r2"] == pytest.approx(want, rel=1e-9)
    assert got["per_batch"] == B


def test_prediction_file_formats(shift_dir, tmp_path):
    ds = lrbench.open_dataset(shift_dir)
    y = np.stack([s["targets"] for s in samples(ds, "val")])
    pred = y + 0.05
    want = score_dataset(shift_dir, pred, split="val")["metrics"]["r2"]
    np.savez(tmp_path / "single.npz", anything=pred)
    np.savez(tmp_path / "named.npz", predictions=pred, other=np.zeros(3))
    with h5py.File(tmp_path / "only.h5", "w") as f:
        f.create_dataset("group/out", data=pred)
    with h5py.File(tmp_path / "named.hdf5", "w") as f:
        f["predictions"] = pred
        f["lengths"] = np.zeros(4)
    np.save(tmp_path / "squeezed.npy", pred)  # shift has 8 channels: nothing to squeeze, plain .npy
    for name in ("single.npz", "named.npz", "only.h5", "named.hdf5", "squeezed.npy"):
        assert score_dataset(shift_dir, tmp_path / name, split="val")["metrics"]["r2"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda y: np.zeros((12,) + y.shape[1:]), "predictions hold 12 samples but split test of shift has 13"),
    (lambda y: np.zeros((13, 64, 8)), "keep only those"),
    (lambda y: np.zeros((13, 32, 7)), r"needs \[N, 32, 8\]"),
    (lambda y: np.where(np.arange(y.size).reshape(y.shape) == 7, np.nan, 0.0), "NaN or inf"),
])
def test_bad_predictions_are_one_line_errors_with_exit_2(shift_dir, tmp_path, capsys, make, message):
    y = np.zeros((13, 32, 8))
    np.save(tmp_path / "p.npy", make(y))
    code, out, err = run_main(["score", shift_dir, "--predictions", tmp_path / "p.npy"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lrbench: error: ")
    assert __import__("re").search(message, err), err
    assert out == ""


def test_bad_files_and_options(shift_dir, tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "p.txt").write_text("0")
    cases = [
        (["--predictions", tmp_path / "missing.npy"], "does not exist"),
        (["--predictions", tmp_path / "two.npz"], "holds 2 arrays"),
        (["--predictions", tmp_path / "obj.npy"], "cannot read"),
        (["--predictions", tmp_path / "p.txt"], "must be a .npy, .npz, .h5, .hdf5 file"),
        (["--predictions", tmp_path / "two.npz", "--split", "train"], "split 'train' is not in"),
        (["--predictions", tmp_path / "two.npz", "--per-batch", "0"], "--per-batch must be a positive"),
    ]
    for extra, message in cases:
        code, _, err = run_main(["score", shift_dir, *extra], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
    code, _, err = run_main(["score", tmp_path / "nowhere", "--predictions", tmp_path / "two.npz"], capsys)
    assert code == 2 and "is not a directory" in err
    code, _, err = run_main(["score", tmp_path, "--predictions", tmp_path / "two.npz"], capsys)
    assert code == 2 and "manifest.json" in err


def test_score_help_lists_the_options():
    result = CliRunner().invoke(cli, ["score", "--help"])
    assert result.exit_code == 0
    for option in ("--predictions", "--split", "--per-batch", "--json"):
        assert option in result.output


# ------------------------------------------------------------------ tagging: ragged tokens with groups


def _token_truth(ds):
    """Every scored (target, height, op) and the sample it belongs to, read sample by sample."""
    rows = samples(ds)
    t = np.concatenate([s["targets"] for s in rows]).astype(int)
    h = np.concatenate([s["node_height"] for s in rows]).astype(int)
    o = np.concatenate([s["node_op"] for s in rows]).astype(int)
    keep = t != -100
    return rows, t[keep], h[keep], o[keep], keep


def _padded_logits(rows, width, rng, hit=0.6):
    """Logits [n, width, 10] right on a random 60 % of positions; NaN in the padding."""
    logits = np.full((len(rows), width, 10), np.nan, dtype=np.float32)
    for i, s in enumerate(rows):
        n = len(s["targets"])
        logits[i, :n] = rng.normal(size=(n, 10))
        good = rng.random(n) < hit
        target = np.where(s["targets"] >= 0, s["targets"], 0)
        logits[i, np.arange(n)[good], target[good]] = 9.0
    return logits


def test_ragged_tokens_scored_with_breakdowns(toy_tasks, tmp_path):
    directory = make_toy(tmp_path, "toy-tokens")
    ds = lrbench.open_dataset(directory)
    rows, t, h, o, keep = _token_truth(ds)
    rng = np.random.default_rng(3)
    width = max(len(s["targets"]) for s in rows)  # exactly the longest sample, less than max_length
    logits = _padded_logits(rows, width, rng)
    p = np.concatenate([logits[i, :len(s["targets"])].argmax(-1) for i, s in enumerate(rows)])[keep]

    result = score_dataset(directory, logits)
    assert result["metrics"] == {"token_accuracy": pytest.approx(sk.accuracy_score(t, p), abs=1e-12)}
    heights = result["breakdowns"]["accuracy_by_node_height"]
    for value in np.unique(h):
        sel = h == value
        assert heights[str(value)] == {"accuracy": pytest.approx((p[sel] == t[sel]).mean()), "count": int(sel.sum())}
    ops = result["breakdowns"]["accuracy_by_node_op"]
    names = ["MIN", "MAX", "MED", "SM"]
    assert set(ops) == {names[v] for v in np.unique(o)}
    for value in np.unique(o):
        sel = o == value
        assert ops[names[value]]["accuracy"] == pytest.approx((p[sel] == t[sel]).mean())
    labels = np.union1d(t, p)
    f1 = sk.f1_score(t, p, labels=labels, average=None)
    per_class = result["breakdowns"]["per_class"]
    assert sorted(map(int, per_class)) == labels.tolist()
    for c, want in zip(labels, f1):
        assert per_class[str(c)]["f1"] == pytest.approx(want)
        assert per_class[str(c)]["support"] == int((t == c).sum())

    # the same predictions as class ids padded to the full max_length, and per batch
    ids = np.full((len(rows), 24), -7, dtype=np.int64)
    ids[:, :width] = np.nan_to_num(logits, nan=0).argmax(-1)
    assert score_dataset(directory, ids)["metrics"] == result["metrics"]
    vals, weights = [], []
    for s in range(0, len(rows), 3):
        batch = list(enumerate(rows[s:s + 3], s))
        tb = np.concatenate([r["targets"][r["targets"] != -100] for _, r in batch]).astype(int)
        pb = np.concatenate([ids[i, :len(r["targets"])][r["targets"] != -100] for i, r in batch])
        vals.append((pb == tb).mean())  # every toy sample scores its last position: never empty
        weights.append(len(batch))
    assert score_dataset(directory, ids, per_batch=3)["metrics"]["token_accuracy"] == pytest.approx(
        np.average(vals, weights=weights), rel=1e-12)


def test_ragged_predictions_must_cover_every_sample(toy_tasks, tmp_path, capsys):
    directory = make_toy(tmp_path, "toy-tokens")
    ds = lrbench.open_dataset(directory)
    lengths = [len(s["targets"]) for s in samples(ds)]
    short = max(lengths) - 1
    np.save(tmp_path / "short.npy", np.zeros((len(lengths), short), dtype=np.int64))
    code, _, err = run_main(["score", directory, "--predictions", tmp_path / "short.npy"], capsys)
    assert code == 2
    assert f"predictions cover {short} positions per sample but sample {int(np.argmax(lengths))}" in err
    np.save(tmp_path / "c.npy", np.zeros((len(lengths), 24, 7), dtype=np.float32))
    code, _, err = run_main(["score", directory, "--predictions", tmp_path / "c.npy"], capsys)
    assert code == 2 and "7 logits per position but task toy-tokens has 10 classes" in err
    np.save(tmp_path / "id.npy", np.full((len(lengths), 24), 10, dtype=np.int64))
    code, _, err = run_main(["score", directory, "--predictions", tmp_path / "id.npy"], capsys)
    assert code == 2 and "must be < 10" in err


# ------------------------------------------------------------------ tagging: images, macro metrics


@pytest.mark.parametrize("view", ["logits", "ids", "flat-logits", "flat-ids", "flat-ids-1"])
def test_image_task_macro_metrics_and_sequence_view(toy_tasks, tmp_path, view):
    directory = make_toy(tmp_path, "toy-image", n=9)
    ds = lrbench.open_dataset(directory)
    y = np.stack([s["targets"] for s in samples(ds)]).astype(int)  # (9, 6, 6)
    rng = np.random.default_rng(5)
    ids = np.where(rng.random(y.shape) < 0.7, y, rng.integers(0, 3, y.shape))
    ids[:, 0, 0] = 1  # class 1 predicted somewhere even if rare
    logits = rng.normal(size=y.shape + (3,)).astype(np.float32)
    np.put_along_axis(logits, ids[..., None], 9.0, -1)
    pred = {"logits": logits, "ids": ids, "flat-logits": logits.reshape(9, 36, 3),
            "flat-ids": ids.reshape(9, 36), "flat-ids-1": ids.reshape(9, 36, 1)}[view]
    np.save(tmp_path / "p.npy", pred)
    result = score_dataset(directory, tmp_path / "p.npy")
    t, p = y.reshape(-1), ids.reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bacc = sk.balanced_accuracy_score(t, p)
    assert result["metrics"]["macro_f1"] == pytest.approx(sk.f1_score(t, p, average="macro"), rel=1e-12)
    assert result["metrics"]["macro_accuracy"] == pytest.approx(bacc, rel=1e-12)
    f1 = sk.f1_score(t, p, labels=[0, 1, 2], average=None)
    assert [result["breakdowns"]["per_class"][str(c)]["f1"] for c in range(3)] == pytest.approx(f1)
    assert set(result["breakdowns"]) == {"per_class"}  # `connected` is per sample, not per pixel

    # per batch: sklearn on each batch of 4 images (the classes present in that batch)
    vals, weights = [], []
    for s in range(0, 9, 4):
        vals.append(sk.f1_score(y[s:s + 4].reshape(-1), ids[s:s + 4].reshape(-1), average="macro"))
        weights.append(len(y[s:s + 4]))
    got = score_dataset(directory, pred, per_batch=4)["metrics"]["macro_f1"]
    assert got == pytest.approx(np.average(vals, weights=weights), rel=1e-12)


def test_image_task_rejects_other_shapes(toy_tasks, tmp_path):
    directory = make_toy(tmp_path, "toy-image", n=3)
    for shape in [(3, 6, 5), (3, 35), (3, 36, 2), (3, 6, 6, 4)]:
        with pytest.raises(LrbenchError):
            score_dataset(directory, np.zeros(shape, dtype=np.int64))


def test_score_cli_prints_breakdowns(toy_tasks, tmp_path):
    directory = make_toy(tmp_path, "toy-tokens", n=5)
    np.save(tmp_path / "p.npy", np.zeros((5, 24), dtype=np.int64))
    result = CliRunner().invoke(cli, ["score", str(directory), "--predictions", str(tmp_path / "p.npy"),
                                      "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r.json").read_text())
    assert "accuracy_by_node_height:" in result.output and "per_class:" in result.output
    assert set(saved["breakdowns"]) == {"per_class", "accuracy_by_node_height", "accuracy_by_node_op"}
    targets = np.concatenate([r["targets"] for r in samples(lrbench.open_dataset(directory))])
    scored = targets[targets != -100]
    assert saved["metrics"]["token_accuracy"] == pytest.approx((scored == 0).mean())


# ------------------------------------------------------------------ the real higher-order tasks, once registered


def test_listops_subtrees_breakdowns_when_registered(tmp_path):
    if "listops-subtrees" not in lrbench.list_tasks():
        pytest.skip("listops-subtrees is not registered yet")
    task = lrbench.get_task("listops-subtrees", min_length=20, max_length=60, max_depth=6)
    generate(task, tmp_path / "lo", sizes={"test": 6}, workers=1)
    ds = lrbench.open_dataset(tmp_path / "lo")
    rows = samples(ds)
    width = max(len(s["targets"]) for s in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    for i, s in enumerate(rows):
        ids[i, :len(s["targets"])] = np.where(s["targets"] >= 0, s["targets"], 0)  # the perfect tagger
    result = score_dataset(tmp_path / "lo", ids)
    assert result["metrics"]["token_accuracy"] == 1.0
    heights = result["breakdowns"]["accuracy_by_node_height"]
    total = sum(int((s["targets"] != -100).sum()) for s in rows)
    assert sum(v["count"] for v in heights.values()) == total
    assert set(result["breakdowns"]["accuracy_by_node_op"]) <= {"MIN", "MAX", "MED", "SM"}


def test_pathfinder_seg_per_class_f1_when_registered(tmp_path):
    if "pathfinder-seg" not in lrbench.list_tasks():
        pytest.skip("pathfinder-seg is not registered yet")
    task = lrbench.get_task("pathfinder-seg", size=128)
    generate(task, tmp_path / "pf", sizes={"test": 2}, workers=1)
    ds = lrbench.open_dataset(tmp_path / "pf")
    y = np.stack([s["targets"] for s in samples(ds)]).astype(np.int64)
    result = score_dataset(tmp_path / "pf", np.zeros_like(y))  # "all background"
    support0 = int((y == 0).sum())
    assert result["breakdowns"]["per_class"]["0"]["f1"] == pytest.approx(2 * support0 / (support0 + y.size))
    assert result["breakdowns"]["per_class"]["1"]["f1"] == 0.0
    assert result["metrics"]["macro_accuracy"] == pytest.approx(1 / len(np.unique(y)))


# ------------------------------------------------------------------ hostile or careless files


def test_score_never_writes_its_json_into_a_dataset_directory(shift_dir, tmp_path, capsys):
    import shutil

    directory = tmp_path / "shift-L32"
    shutil.copytree(shift_dir, directory)
    manifest = (directory / "manifest.json").read_bytes()
    np.save(tmp_path / "zeros.npy", np.zeros((13, 32, 8), np.float32))
    for target in (directory / "manifest.json", directory / "result.json", directory / "." / "README.md"):
        code, out, err = run_main(["score", directory, "--predictions", tmp_path / "zeros.npy", "--json", target],
                                  capsys)
        assert code == 2 and "inside the dataset directory" in err and err.count("\n") == 1, err
    assert (directory / "manifest.json").read_bytes() == manifest and not (directory / "result.json").exists()
    code, _, err = run_main(["score", directory, "--predictions", tmp_path / "zeros.npy", "--json", tmp_path], capsys)
    assert code == 2 and "is a directory" in err


def test_npz_shapes_are_checked_from_their_headers_before_loading(shift_dir, tmp_path):
    """An .npz of the wrong shape is refused from its header: a small file that would inflate to
    54 MB is never loaded (measured with tracemalloc, which sees numpy's allocations)."""
    import tracemalloc

    np.savez_compressed(tmp_path / "bomb.npz", predictions=np.zeros((13, 32, 8 * 4096), np.float32))
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(LrbenchError, match=r"needs \[N, 32, 8\]"):
            score_dataset(shift_dir, tmp_path / "bomb.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak / 2**20:.0f} MiB allocated: the array was loaded"


def test_npz_member_without_the_npy_suffix(shift_dir, tmp_path):
    """numpy lists a member named without '.npy' under that bare name; its header is found too."""
    import io
    import zipfile

    pred = np.stack([s["targets"] for s in samples(lrbench.open_dataset(shift_dir))]) + 0.1
    buf = io.BytesIO()
    np.save(buf, pred)
    with zipfile.ZipFile(tmp_path / "bare.npz", "w") as z:
        z.writestr("predictions", buf.getvalue())
    want = score_dataset(shift_dir, pred)["metrics"]["r2"]
    assert score_dataset(shift_dir, tmp_path / "bare.npz")["metrics"]["r2"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("kind", ["character device", "FIFO", "directory"])
def test_predictions_that_are_not_files_say_what_they_are(shift_dir, tmp_path, capsys, kind):
    import os

    path = tmp_path / "p.npy"
    if kind == "character device":
        path = "/dev/zero"
    elif kind == "FIFO":
        os.mkfifo(path)
    else:
        path.mkdir()
    code, out, err = run_main(["score", shift_dir, "--predictions", path], capsys)
    assert code == 2 and f"is a {kind}, not a file" in err and err.count("\n") == 1, err
