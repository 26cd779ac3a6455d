"""The conformance suite: the checks every task passes at its tiny parameters, and every baseline.

As torchvision's one DatasetTestCase serves every dataset, ``TaskConformance`` serves every task:
a test module subclasses it and gives a ``task_name`` fixture (tests/test_conformance.py: each
registered task; tests/test_toy.py: a task defined there and registered through the public API).
The checks ask the task for its facts (schema, splits, kind, metric) and never test its name.

``evaluate_one_step`` is the baseline's side: one ``evaluate --preset smoke`` step of a model on
a task, which test_conformance.py runs for every baseline and test_toy.py for a toy baseline.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import lrbench
from lrbench.cli import main
from lrbench.generate import generate
from lrbench.storage import sha256_file

SIZE = 5  # samples per written split, over shards of 2: three shards, the last one short
SHARD = 2


def run_main(args, capsys) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line_error(code, out, err, want_code, *fragments):
    """A CLI failure: exit code `want_code`, one `lrbench: error:` line holding every fragment."""
    assert code == want_code, (code, out, err)
    lines = [line for line in err.strip().splitlines() if "samples/s" not in line]  # progress lines
    assert len(lines) == 1 and lines[0].startswith("lrbench: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tiny_task(name: str):
    return lrbench.get_task(name, **lrbench.get_task(name).tiny)


def sample_bytes(sample: dict) -> bytes:
    """Every field's name, dtype, shape and bytes: equal exactly when the samples are."""
    h = hashlib.sha256()
    for key in sorted(sample):
        a = np.ascontiguousarray(sample[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.digest()


def check_sample_schema(task, sample: dict, where: str) -> None:
    """The fields the task declares, in their declared dtypes, shapes and value ranges."""
    features = task.features
    assert list(sample) == list(features), f"{where}: fields {list(sample)}, declared {list(features)}"
    for key, f in features.items():
        a = np.asarray(sample[key])
        assert a.dtype == np.dtype(f.dtype), f"{where}: {key} is {a.dtype}, declared {f.dtype}"
        if f.ragged:
            assert a.ndim == len(f.shape) and 1 <= a.shape[0] <= f.shape[0] and a.shape[1:] == f.shape[1:], \
                f"{where}: {key} has shape {a.shape}, declared ragged up to {f.shape}"
            values = a[a != f.pad]  # the pad also marks positions inside a sample that carry no value
        else:
            assert a.shape == f.shape, f"{where}: {key} has shape {a.shape}, declared {f.shape}"
            values = a
        if a.dtype.kind == "f":
            assert np.isfinite(a).all(), f"{where}: {key} holds NaN or inf"
        if values.size and f.low is not None:
            assert values.min() >= f.low, f"{where}: {key} goes down to {values.min()}, declared low {f.low}"
        if values.size and f.high is not None:
            assert values.max() <= f.high, f"{where}: {key} goes up to {values.max()}, declared high {f.high}"
    if task.kind == "tagging":
        t = np.asarray(sample["targets"])
        scored = t[t != -100]
        assert scored.size and scored.min() >= 0 and scored.max() < task.num_classes, \
            f"{where}: tagging targets must be classes 0..{task.num_classes - 1} on some positions"
    if task.kind == "classification":  # one class per sample
        t = np.asarray(sample["targets"])
        assert t.shape == () and 0 <= int(t) < task.num_classes, \
            f"{where}: a classification target is one class in 0..{task.num_classes - 1} (got {t!r})"
    if task.t_out is not None:  # regression: targets align with the last t_out outputs
        assert sample["targets"].shape[0] == task.t_out <= sample["inputs"].shape[0]


def perfect_predictions(task, directory, split: str) -> np.ndarray:
    """The split's targets themselves, padded to the longest (a ragged field's pad is unscored)."""
    view = lrbench.open_dataset(directory)[split]
    feature = task.features["targets"]
    return feature.stack([view[i]["targets"] for i in range(len(view))])


class TaskConformance:
    """Every check of a task at its tiny parameters. Subclasses give a ``task_name`` fixture."""

    @pytest.fixture(scope="class")
    @classmethod
    def task(cls, task_name):
        return tiny_task(task_name)

    @pytest.fixture(scope="class")
    @classmethod
    def written(cls, task, tmp_path_factory):
        """The task's finite splits written twice, with one worker and with two: two directories."""
        root = tmp_path_factory.mktemp(task.name)
        sizes = {split: SIZE for split in task.finite_splits}
        dirs = []
        for workers in (1, 2):
            directory = root / f"w{workers}"
            generate(task, directory, seed=3, sizes=sizes, shard_size=SHARD, workers=workers)
            dirs.append(directory)
        return dirs

    def test_same_key_same_bytes(self, task):
        """A sample is a pure function of (task, config, seed, split, index); another key, another sample."""
        again = tiny_task(task.name)  # a fresh Task: nothing cached in the first one counts
        for split in task.default_splits:
            first = sample_bytes(task.sample(1, split, seed=3))
            assert sample_bytes(again.sample(1, split, seed=3)) == first
            assert sample_bytes(task.sample(1, split, seed=3)) == first  # and asked twice of the same one
            assert sample_bytes(task.sample(2, split, seed=3)) != first
            assert sample_bytes(task.sample(1, split, seed=4)) != first
        splits = list(task.default_splits)
        if len(splits) > 1:
            assert sample_bytes(task.sample(1, splits[0], seed=3)) != sample_bytes(task.sample(1, splits[1], seed=3))

    def test_fields_match_the_declared_schema_and_ranges(self, task):
        for split in task.default_splits:
            for index in range(4):
                check_sample_schema(task, task.sample(index, split, seed=3), f"{task.name} {split}[{index}]")

    def test_one_and_two_workers_write_the_same_sha256(self, task, written):
        one, two = written
        shards = sorted(p.name for p in one.glob("*.h5"))
        assert len(shards) == 3 * len(task.finite_splits), shards
        assert shards == sorted(p.name for p in two.glob("*.h5"))
        for name in shards:
            assert sha256_file(one / name) == sha256_file(two / name), f"{name} differs between 1 and 2 workers"
        ds = lrbench.open_dataset(one)
        for split in task.finite_splits:  # and what is stored is what the task generates
            assert sample_bytes(ds[split][SIZE - 1]) == sample_bytes(task.sample(SIZE - 1, split, seed=3))

    def test_verify_deep(self, written, capsys):
        code, out, err = run_main(["verify", written[0], "--deep"], capsys)
        assert code == 0, err
        assert out.strip() == f"OK {written[0]} (deep)"

    def test_show_text_and_png(self, task, written, tmp_path, capsys):
        code, text, err = run_main(["show", written[0], "--index", "1"], capsys)
        assert code == 0, err
        assert text.strip(), "show printed nothing"
        code, generated, err = run_main(["show", task.name, *self._params(task), "--seed", "3",
                                         "--split", task.finite_splits[-1], "--index", "1"], capsys)
        assert code == 0, err
        assert generated == text  # the stored sample and the generated one read the same
        png = tmp_path / "sample.png"
        code, out, err = run_main(["show", written[0], "--index", "1", "-o", png], capsys)
        assert code == 0, err
        from PIL import Image

        with Image.open(png) as img:
            assert img.format == "PNG" and img.width >= 16 and img.height >= 16
            assert np.ptp(np.asarray(img.convert("L"))) > 0, "a blank picture"

    @staticmethod
    def _params(task) -> list[str]:
        """The CLI options that give the task its tiny parameters: its size flag, else --set."""
        args = []
        for key, value in task.tiny.items():
            if key == task.size_param:
                args += [task.size_flag, value]
            else:
                args += ["--set", f"{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}"]
        return args

    def test_card(self, task, written, capsys):
        """The card names the task and its id; the dataset's README is that card, then its numbers."""
        code, out, err = run_main(["card", task.name], capsys)
        assert code == 0, err
        front, sep, body = out.partition("\n---\n")
        assert front.startswith("---\n") and sep and body.strip(), "a card is YAML front matter, then Markdown"
        assert f"\nlrbench_task: {task.name}\n" in front + "\n" and f"\nlrbench_task_id: {task.id}\n" in front + "\n"
        readme = (written[0] / "README.md").read_text(encoding="utf-8")
        assert readme.partition("\n---\n")[2].startswith(body.rstrip("\n")) and "\n## This dataset\n" in readme

    def test_export_reads_back_the_stored_arrays(self, task, written, tmp_path, capsys):
        """`lrbench export` writes parquet that pyarrow reads back as the HDF5 shards hold it: every
        stored array a column of the same dtype, ragged fields cut at their lengths."""
        pq = pytest.importorskip("pyarrow.parquet")
        out = tmp_path / "export"
        code, _, err = run_main(["export", written[0], "--out", out], capsys)
        assert code == 0, err
        ds = lrbench.open_dataset(written[0])
        for split in task.finite_splits:
            table = pq.read_table(sorted((out / "data").glob(f"{split}-*.parquet")))
            stored = ds[split].read(0, SIZE, stored=True)
            assert table.num_rows == SIZE and set(table.column_names) == set(stored)
            for name, array in stored.items():
                column = table.column(name).to_pylist()
                for i in range(SIZE):
                    got = np.asarray(column[i], dtype=array.dtype)
                    want = array[i][: stored["lengths"][i]] if task.features.get(name, None) is not None \
                        and task.features[name].ragged else array[i]
                    assert got.shape == want.shape and np.array_equal(got, want), f"{split}[{i}] {name}"
        assert (out / "croissant.json").is_file() and (out / "README.md").is_file()

    def test_score_of_the_targets_is_perfect(self, task, written, tmp_path, capsys):
        split = task.finite_splits[-1]
        preds = tmp_path / "targets.npy"
        np.save(preds, perfect_predictions(task, written[0], split))
        out_json = tmp_path / "score.json"
        code, out, err = run_main(["score", written[0], "--predictions", preds, "--split", split,
                                   "--json", out_json], capsys)
        assert code == 0, err
        result = json.loads(out_json.read_text())
        assert result["task"] == task.name and result["num_samples"] == SIZE
        assert set(result["metrics"]) == set(task.metrics)
        for name, value in result["metrics"].items():
            assert value == pytest.approx(1.0, abs=1e-9), f"{name} of the targets themselves is {value}"


def evaluate_one_step(task_name: str, model: str, tmp_path) -> dict:
    """One step of ``lrbench evaluate --preset smoke``: a results row with finite numbers."""
    torch = pytest.importorskip("torch")
    from lrbench.evaluate import evaluate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI cores: spinning OpenMP threads slow tiny models 10x
    try:
        (row,) = evaluate(model, [task_name], "smoke", device="cpu", out=tmp_path / "run", steps=1, workers=0)
    finally:
        torch.set_num_threads(threads)
    task = lrbench.get_task(task_name, **row["task_config"])
    assert task.tiny.items() <= row["task_config"].items(), "smoke runs a task at its tiny parameters"
    assert row["task"] == task.name and row["model"] == model and row["steps"] == 1
    assert row["metric"] == task.metric and set(row["test_metrics"]) == set(task.metrics)
    assert all(np.isfinite(v) for v in row["test_metrics"].values()) and np.isfinite(row["val"])
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1] and np.isfinite(log[0]["loss"])
    return row

