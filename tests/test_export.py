"""lrbench export: real datasets exported through the CLI, read back by pyarrow, by Hugging Face
`datasets` (README configs and plain data_dir) and by mlcroissant, and compared with the HDF5 arrays;
bad inputs refused with one line and the CLI's exit codes, leaving nothing behind."""

import json
import os
import re

import numpy as np
import pytest

import lrbench
from lrbench import cards
from lrbench.dataset import open_dataset
from lrbench.generate import generate
from lrbench.storage import sha256_file

from conftest import run_cli
from test_cli import one_line_error

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before `datasets` is imported: local files only
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

pytestmark = [  # the readers' own deprecations, not ours
    pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated"),
    pytest.mark.filterwarnings("ignore:The inplace keyword"),
]

# small datasets with several HDF5 shards per split, so that reads cross shard boundaries
CASES = {
    "shift": (dict(length=32), {"val": 10, "test": 7}, 4),
    "listops-subtrees": (dict(min_length=40, max_length=80, max_depth=6), {"train": 9, "val": 4, "test": 5}, 4),
    "pathfinder-seg": (dict(size=128), {"train": 4, "val": 2, "test": 3}, 2),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """task -> (dataset dir, export dir), the export made by the real CLI."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, (params, sizes, shard_size) in CASES.items():
        task = lrbench.get_task(name, **params)
        directory = root / task.dir_name(0)
        generate(task, directory, sizes=sizes, shard_size=shard_size)
        code, stdout, err = run_cli("export", directory)
        assert code == 0, err
        assert directory.with_name(directory.name + "-parquet").is_dir(), stdout
        out[name] = directory, directory.with_name(directory.name + "-parquet")
    return out


def stored(directory):
    """split -> every stored array of the HDF5 dataset, as read by lrbench."""
    ds = open_dataset(directory)
    try:
        return ds, {s: ds[s].read(0, len(ds[s]), stored=True) for s in ds.splits}
    finally:
        ds.close()


def rows_of(a, lengths, ragged):
    """Per-sample arrays: ragged ones cut at their length."""
    return [a[i][: lengths[i]] if ragged else a[i] for i in range(len(a))]


def assert_same_rows(got, want, dtype):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g = np.asarray(g)
        assert g.dtype == dtype and g.shape == w.shape and np.array_equal(g, w)


def ragged_fields(ds):
    return {name for name, f in ds.task.features.items() if f.ragged}


@pytest.mark.parametrize("name", list(CASES))
def test_parquet_holds_every_stored_array_losslessly(exported, name):
    directory, export = exported[name]
    ds, arrays = stored(directory)
    ragged = ragged_fields(ds)
    for split, want in arrays.items():
        files = sorted((export / "data").glob(f"{split}-*.parquet"))
        assert [f.name for f in files] == [f"{split}-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))]
        table = pa.concat_tables(pq.read_table(f) for f in files)
        assert table.column_names == list(want)  # every HDF5 dataset, features first, in order
        chunks = pq.ParquetFile(files[0]).metadata.row_group(0)
        for i in range(chunks.num_columns):  # dictionary pages for integers only, never float noise
            column = chunks.column(i).path_in_schema.split(".")[0]
            assert ("RLE_DICTIONARY" in chunks.column(i).encodings) == (want[column].dtype.kind in "iu"), column
        lengths = want.get("lengths")
        for column in table.column_names:
            a = want[column]
            value_type = table.schema.field(column).type
            while hasattr(value_type, "value_type"):
                value_type = value_type.value_type
            assert value_type.to_pandas_dtype() == a.dtype  # float32, uint8, int8 as stored
            got = table.column(column).to_pylist()
            assert_same_rows([np.array(g, dtype=a.dtype) for g in got], rows_of(a, lengths, column in ragged), a.dtype)
            if column in ragged:  # what was dropped is padding only
                pad = ds.task.features[column].pad
                assert all((a[i][lengths[i]:] == pad).all() for i in range(len(a)))


@pytest.mark.parametrize("name", list(CASES))
def test_readme_declares_configs_and_dataset_info_then_the_card(exported, name):
    yaml = pytest.importorskip("yaml")
    directory, export = exported[name]
    ds, arrays = stored(directory)
    text = (export / "README.md").read_text(encoding="utf-8")
    front, body = cards.split_front_matter(text)
    meta = yaml.safe_load(front)
    assert meta["pretty_name"].startswith("lrbench:") and meta["license"] == "mit"
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in ds.splits]}]
    info = meta["dataset_info"]
    assert [(s["name"], s["num_examples"]) for s in info["splits"]] == [(s, len(ds[s])) for s in ds.splits]
    assert info["download_size"] == sum(f.stat().st_size for f in (export / "data").iterdir())
    features = {f["name"]: f for f in info["features"]}
    assert list(features) == list(arrays[ds.splits[0]])
    for field, feat in ds.task.features.items():
        entry = features[field]
        if feat.ragged:
            assert entry == {"name": field, "sequence": feat.dtype}
        elif len(feat.shape) == 2:
            assert entry["dtype"] == {"array2_d": {"shape": list(feat.shape), "dtype": feat.dtype}}
        else:
            assert entry == {"name": field, "dtype": feat.dtype}
    card_body = cards.split_front_matter(cards.render(ds.task.name))[1]
    assert body.startswith(card_body.split("\n## Citation")[0])
    assert "## This export" in body and "## This dataset" not in body
    for picture in re.findall(r"\]\(([\w.-]+\.png)\)", body):
        assert (export / picture).is_file()


@pytest.mark.parametrize("name", list(CASES))
def test_datasets_loads_the_export_with_its_shapes_and_values(exported, name, tmp_path):
    datasets = pytest.importorskip("datasets")
    directory, export = exported[name]
    ds, arrays = stored(directory)
    ragged = ragged_fields(ds)
    # as from the Hub: the README's configs and dataset_info (shapes, dtypes, split names)
    hub = datasets.load_dataset(str(export), cache_dir=str(tmp_path / "a"))
    assert list(hub) == ds.splits
    for field, feat in ds.task.features.items():
        f = hub[ds.splits[0]].features[field]
        if len(feat.shape) == 2:
            assert isinstance(f, datasets.Array2D) and f.shape == feat.shape and f.dtype == feat.dtype
    # the parquet files alone: same values, as nested lists
    plain = datasets.load_dataset("parquet", data_dir=str(export), cache_dir=str(tmp_path / "b"))
    assert sorted(plain) == sorted(ds.splits)
    for loaded in (hub, plain):
        for split, want in arrays.items():
            got = loaded[split].with_format("numpy", dtype=None)  # dtype=None: keep the stored dtypes
            assert len(got) == len(ds[split])
            for column, a in want.items():
                rows = [got[i][column] for i in range(len(got))]
                assert_same_rows(rows, rows_of(a, want.get("lengths"), column in ragged), a.dtype)


@pytest.mark.parametrize("name", list(CASES))
def test_mlcroissant_validates_and_iterates_the_export(exported, name):
    mlc = pytest.importorskip("mlcroissant")
    directory, export = exported[name]
    ds, arrays = stored(directory)
    ragged = ragged_fields(ds)
    meta = json.loads((export / "croissant.json").read_text())
    assert "http://mlcommons.org/croissant/1.1" in meta["conformsTo"]
    files = {f["contentUrl"]: f for f in meta["distribution"] if f["@type"] == "cr:FileObject"}
    assert sorted(files) == sorted(f"data/{p.name}" for p in (export / "data").iterdir())
    for path, entry in files.items():
        assert entry["sha256"] == sha256_file(export / path)
        assert entry["contentSize"] == f"{(export / path).stat().st_size} B"
    sections = cards.sections(cards.render(ds.task.name))
    assert meta["rai:dataLimitations"] == sections["Limitations"]
    assert meta["rai:dataUseCases"] == sections["Intended use"]
    assert meta["rai:dataCollection"] == sections["How it is generated"]
    assert sections["Differences from the paper's code"] in meta["rai:dataBiases"]
    assert meta["rai:personalSensitiveInformation"].startswith("None.")
    for split, want in arrays.items():
        # a fresh Dataset per split: mlcroissant narrows its file globs in place when filtering
        croissant = mlc.Dataset(jsonld=str(export / "croissant.json"))  # raises on any validation error
        records = list(croissant.records("default", filters={"default/split": split}))
        assert [r["default/split"] for r in records] == [split.encode()] * len(ds[split])
        for column, a in want.items():
            rows = [np.asarray(r[f"default/{column}"]) for r in records]  # lists of numpy scalars
            assert_same_rows(rows, rows_of(a, want.get("lengths"), column in ragged), a.dtype)


def test_many_files_and_row_groups_read_back_in_order(exported, tmp_path, monkeypatch):
    from lrbench import export as export_mod

    directory, _ = exported["listops-subtrees"]
    ds, arrays = stored(directory)
    row = 4 * 80 + 4 + 16  # four ragged int8/uint8 fields at max_length 80, lengths, digest
    monkeypatch.setattr(export_mod, "ROW_GROUP_BYTES", 2 * row)
    result = export_mod.export(directory, tmp_path / "small", file_bytes=3 * row)  # 3 samples a file
    names = [f.path for f in result.files if f.split == "train"]
    assert names == [f"data/train-{i:05d}-of-00003.parquet" for i in range(3)]
    assert [f.num_samples for f in result.files if f.split == "train"] == [3, 3, 3]
    for name in names:
        meta = pq.ParquetFile(tmp_path / "small" / name).metadata
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 1]
    table = pa.concat_tables(pq.read_table(tmp_path / "small" / n) for n in names)
    lengths = arrays["train"]["lengths"]
    assert table.column("lengths").to_pylist() == lengths.tolist()
    assert_same_rows([np.array(r, np.uint8) for r in table.column("inputs").to_pylist()],
                     rows_of(arrays["train"]["inputs"], lengths, True), np.uint8)
    assert sum(f.num_samples for f in result.files) == sum(len(ds[s]) for s in ds.splits)


def test_force_replaces_an_earlier_export_and_leaves_no_temporaries(exported, tmp_path):
    directory, _ = exported["shift"]
    out = tmp_path / "out"
    assert run_cli("export", directory, "--out", out)[0] == 0
    (out / "stale.txt").write_text("from before")
    code, _, err = run_cli("export", directory, "--out", out)
    one_line_error(code, "", err, 2, f"--out {out} exists; use --force to replace it")
    assert (out / "stale.txt").exists()
    code, stdout, err = run_cli("export", directory, "--out", out, "--force")
    assert code == 0, err
    assert not (out / "stale.txt").exists() and (out / "croissant.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bad_inputs_are_one_line_with_the_cli_exit_codes(exported, tmp_path):
    directory, export_dir = exported["shift"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    cases = [
        (["export", directory, "--format", "csv"], 2, ["--format must be one of parquet (got 'csv')"]),
        (["export", tmp_path / "missing"], 2, ["is not a directory"]),
        (["export", tmp_path / "empty", "--out", tmp_path / "x"], 2, ["no manifest.json", "not an lrbench dataset"]),
        (["export", directory, "--out", export_dir], 2, ["exists; use --force"]),
        (["export", directory, "--out", tmp_path / "notes", "--force"], 2, ["is not an earlier export"]),
        (["export", directory, "--out", directory / "inside"], 2, ["overlaps the dataset"]),
        (["export", directory, "--out", directory, "--force"], 2, ["overlaps the dataset"]),
        (["export", directory, "--out", tmp_path / "no" / "parent"], 2, ["its parent directory does not exist"]),
    ]
    for args, want, fragments in cases:
        code, out, err = run_cli(*args)
        one_line_error(code, out, err, want, *fragments)
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes"]


def test_a_dataset_that_fails_verification_is_not_exported(tmp_path):
    task = lrbench.get_task("cumsum", length=16)
    directory = tmp_path / "cumsum"
    generate(task, directory, sizes={"test": 6}, shard_size=3)
    shard = directory / "test-00001-of-00002.h5"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # same size, different bytes
    shard.write_bytes(bytes(data))
    code, out, err = run_cli("export", directory)
    one_line_error(code, out, err, 3, "fails verification", "test-00001-of-00002.h5: sha256 mismatch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cumsum"]


def test_missing_pyarrow_names_the_extra(exported, tmp_path, monkeypatch, capsys):
    from lrbench.cli import main

    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(exported["shift"][0]), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == ("lrbench: error: lrbench export needs pyarrow: "
                                               "pip install 'lrbench-synth[hf]'")
    assert not list(tmp_path.iterdir())


def test_an_interrupted_export_leaves_nothing(exported, tmp_path, monkeypatch):
    from lrbench import export as export_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod, "croissant", interrupted)  # after every parquet file is written
    with pytest.raises(KeyboardInterrupt):
        export_mod.export(exported["shift"][0], tmp_path / "out")
    assert not list(tmp_path.iterdir())
    # what a killed export leaves (its process gone) goes with the next export; a live one's stays
    dead, alive = tmp_path / f".out.tmp-{2 ** 22 + 1}-0badc0de", tmp_path / f".out.tmp-{os.getpid()}-00c0ffee"
    for path in (dead, alive):
        (path / "data").mkdir(parents=True)
    monkeypatch.undo()
    export_mod.export(exported["shift"][0], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "out"]


def test_export_of_the_current_directory_goes_beside_it(tmp_path):
    directory = tmp_path / "cumsum-L16"
    generate(lrbench.get_task("cumsum", length=16), directory, sizes={"test": 3})
    code, out, err = run_cli("export", ".", cwd=directory)
    assert code == 0, err
    assert (tmp_path / "cumsum-L16-parquet" / "data" / "test-00000-of-00001.parquet").is_file()
