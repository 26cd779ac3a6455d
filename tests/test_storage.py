"""Sharded HDF5 storage: round trips, determinism across workers and shard sizes, resume, subsets,
locking (SPEC §3, §6). Real files in tmp_path throughout."""

import hashlib
import json
import os

import h5py
import numpy as np
import pytest

import lrbench
from lrbench.errors import LrbenchError
from lrbench.generate import DirLock, generate, one_blas_thread, plan_shards, select_shards
from lrbench.manifest import read as read_manifest
from lrbench.storage import CHUNK_BYTES, ShardInfo, sha256_file, write_shard

SIZES = {"val": 37, "test": 23}


def build(tmp_path, name="cumsum", sub="a", **kw):
    task = lrbench.get_task(name, length=kw.pop("length", 32))
    opts = dict(seed=0, sizes=SIZES, shard_size=10, workers=1)
    opts.update(kw)
    return task, generate(task, tmp_path / sub, **opts)


def sample_bytes(directory):
    """sha256 over every sample's fields in index order: independent of the shard layout."""
    ds = lrbench.open_dataset(directory)
    h = hashlib.sha256()
    for split in ds.splits:
        for i in range(len(ds[split])):
            for name, a in ds[split][i].items():
                h.update(name.encode() + a.tobytes())
    return h.hexdigest()


def test_round_trip_equals_task_sample(tmp_path):
    task, result = build(tmp_path, "select", seed=3, length=20)
    ds = lrbench.open_dataset(result.directory)
    assert ds.splits == ["val", "test"] and ds.seed == 3 and ds.config == task.config
    for split, n in SIZES.items():
        assert len(ds[split]) == n
        for i in (0, 9, 10, n - 1, -1):
            stored, fresh = ds[split][i], task.sample(i % n, split, seed=3)
            assert set(stored) == set(fresh)
            for k in fresh:
                assert stored[k].dtype == fresh[k].dtype and np.array_equal(stored[k], fresh[k])
    with pytest.raises(IndexError):
        ds["val"][37]
    with pytest.raises(KeyError, match="split 'train' is not in"):
        ds["train"]
    batches = list(ds["val"].batches(16))
    assert [len(b["inputs"]) for b in batches] == [16, 16, 5]
    assert np.array_equal(batches[1]["targets"][3], task.sample(19, "val", 3)["targets"])


def test_shard_layout_and_storage_options(tmp_path):
    task, result = build(tmp_path, "shift")
    files = sorted(p.name for p in result.directory.glob("*.h5"))
    assert files == [f"test-0000{i}-of-00003.h5" for i in range(3)] + [f"val-0000{i}-of-00004.h5" for i in range(4)]
    with h5py.File(result.directory / "val-00001-of-00004.h5") as f:
        assert f.attrs["first_index"] == 10 and f.attrs["num_samples"] == 10 and f.attrs["split"] == "val"
        assert json.loads(f.attrs["config"]) == {"length": 32, "num_shifts": 8}
        d = f["inputs"]
        assert d.shape == (10, 32, 3) and d.dtype == np.float32
        assert d.compression is None, "float32 noise is stored uncompressed"
        assert d.chunks[1:] == (32, 3), "chunks hold whole samples"
    m = json.loads((result.directory / "manifest.json").read_text())
    assert m["versions"]["numpy"] == np.__version__ and m["versions"]["h5py"] == h5py.__version__
    assert m["features"]["targets"]["shape"] == [32, 8]
    for split, entry in m["splits"].items():
        assert sum(s["num_samples"] for s in entry["shards"]) == SIZES[split]
        for s in entry["shards"]:
            path = result.directory / s["file"]
            assert s["bytes"] == path.stat().st_size and s["sha256"] == sha256_file(path)
    assert (result.directory / "README.md").exists()
    assert not list(result.directory.glob(".*tmp*"))
    # read back as types, equal to what the writer built
    typed = read_manifest(result.directory)
    assert typed == result.manifest and typed.to_json() == m
    assert typed.splits["val"].shards[1] == ShardInfo(**m["splits"]["val"]["shards"][1])
    assert typed.features["targets"].shape == (32, 8) and typed.num_samples == sum(SIZES.values())


@pytest.mark.parametrize("n", [1, 7, 12])
def test_shard_bytes_are_those_of_hdf5s_own_write_path(tmp_path, n):
    """write_shard hands HDF5 whole chunks itself; the file must be byte for byte what HDF5's ordinary
    write path makes of the same arrays, zero-padded last chunks and compressed fields included."""
    rng = np.random.default_rng(n)
    arrays = {
        "inputs": rng.standard_normal((n, 9000, 2)).astype(np.float32),  # one sample per chunk
        "targets": rng.standard_normal((n, 3000)).astype(np.float32),  # five per chunk: a partial last one
        "tokens": rng.integers(0, 16, (n, 700), dtype=np.uint8),
        "lengths": rng.integers(0, 700, n, dtype=np.int32),
    }
    attrs = {"format_version": 1, "task": "t", "first_index": 3, "num_samples": n}
    info = write_shard(tmp_path / "fast.h5", arrays, attrs, compress={"tokens"})
    with h5py.File(tmp_path / "plain.h5", "w", track_order=False) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for name, a in arrays.items():
            rows = max(1, min(n, CHUNK_BYTES // a[0].nbytes))
            gzip = {"compression": "gzip", "compression_opts": 1} if name == "tokens" else {}
            f.create_dataset(name, data=a, chunks=(rows,) + a.shape[1:], track_times=False, **gzip)
    assert info.sha256 == sha256_file(tmp_path / "fast.h5") == sha256_file(tmp_path / "plain.h5")
    assert info.bytes == (tmp_path / "plain.h5").stat().st_size and info.num_samples == n and info.first_index == 3


def test_same_bytes_for_1_and_2_workers_and_any_shard_size(tmp_path):
    _, one = build(tmp_path, "mips", "one", workers=1)
    _, two = build(tmp_path, "mips", "two", workers=2)
    _, wide = build(tmp_path, "mips", "wide", workers=2, shard_size=7)
    for name in (p.name for p in one.directory.glob("*.h5")):
        assert sha256_file(one.directory / name) == sha256_file(two.directory / name), name
    assert sample_bytes(one.directory) == sample_bytes(wide.directory)
    assert len(list(wide.directory.glob("*.h5"))) != len(list(one.directory.glob("*.h5")))
    m1 = json.loads((one.directory / "manifest.json").read_text())
    m2 = json.loads((two.directory / "manifest.json").read_text())
    assert m1 == m2


def test_resume_skips_complete_shards_and_gives_the_same_bytes(tmp_path):
    _, full = build(tmp_path, "sort", "full")
    task = lrbench.get_task("sort", length=32)
    part = generate(task, tmp_path / "part", sizes=SIZES, shard_size=10, shards="0-2")
    assert part.manifest is None and not (part.directory / "manifest.json").exists()
    assert len(part.written) == 3 and len(part.missing) == 4
    # a killed writer leaves a temporary file and a truncated shard behind
    (part.directory / ".val-00003-of-00004.h5.tmp-99999").write_bytes(b"partial")
    (part.directory / "test-00000-of-00003.h5").write_bytes(b"\x89HDF\r\n")
    rest = generate(task, tmp_path / "part", sizes=SIZES, shard_size=10)
    assert sorted(rest.skipped) == sorted(part.written) and len(rest.written) == 4
    for p in full.directory.glob("*.h5"):
        assert sha256_file(p) == sha256_file(part.directory / p.name)
    assert json.loads((full.directory / "manifest.json").read_text()) == rest.manifest.to_json()
    assert not list(part.directory.glob(".*tmp*"))
    again = generate(task, tmp_path / "part", sizes=SIZES, shard_size=10)
    assert again.written == [] and len(again.skipped) == 7


def test_job_array_subsets_then_the_manifest(tmp_path):
    task = lrbench.get_task("cummax", length=16)
    results = [generate(task, tmp_path / "d", sizes=SIZES, shard_size=10, shards=f"{k}/3") for k in range(3)]
    assert [r.manifest is None for r in results] == [True, True, False], "the last job completes the set"
    assert sum(len(r.written) for r in results) == 7
    _, reference = build(tmp_path, "cummax", "ref", length=16)
    assert sample_bytes(tmp_path / "d") == sample_bytes(reference.directory)


def test_workers_get_one_blas_thread_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    with one_blas_thread():
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
        assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in os.environ and "MKL_NUM_THREADS" not in os.environ
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"


def test_shard_selection_specs():
    jobs = plan_shards({"val": 25, "test": 5}, 10)
    assert [(j.split, j.first_index, j.num_samples) for j in jobs] == [
        ("val", 0, 10), ("val", 10, 10), ("val", 20, 5), ("test", 0, 5)]
    assert select_shards(jobs, "1/2") == [jobs[1], jobs[3]]
    assert select_shards(jobs, "0,2-3") == [jobs[0], jobs[2], jobs[3]]
    for bad in ("2/2", "x", "0-9", "3-1"):
        with pytest.raises(LrbenchError):
            select_shards(jobs, bad)


def test_adding_a_split_later_keeps_the_others(tmp_path):
    task = lrbench.get_task("cumsum", length=16)
    generate(task, tmp_path / "d", sizes={"val": 12, "test": 5}, shard_size=10)
    before = sha256_file(tmp_path / "d" / "val-00000-of-00002.h5")
    result = generate(task, tmp_path / "d", sizes={"train": 8}, shard_size=4)
    assert list(result.manifest.splits) == ["train", "val", "test"]
    assert sha256_file(tmp_path / "d" / "val-00000-of-00002.h5") == before
    with pytest.raises(LrbenchError, match="already has 12 samples"):
        generate(task, tmp_path / "d", sizes={"val": 13})


def test_refuses_another_dataset_in_the_directory(tmp_path):
    build(tmp_path, "cumsum", "d")
    other = lrbench.get_task("cumsum", length=32)
    with pytest.raises(LrbenchError, match="holds another dataset"):
        generate(other, tmp_path / "d", seed=1, sizes=SIZES)
    replaced = generate(other, tmp_path / "d", seed=1, sizes={"val": 3}, force=True)
    assert replaced.manifest.seed == 1 and len(list((tmp_path / "d").glob("*.h5"))) == 1


def test_lock_refuses_a_second_writer(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    held = DirLock(d, shared=False)
    try:
        with pytest.raises(LrbenchError, match=r"is being written by lrbench generate \(pid"):
            build(tmp_path, "cumsum", "d")
        with pytest.raises(LrbenchError, match="is being written"):
            build(tmp_path, "cumsum", "d", shards="0")
    finally:
        held.close()
    build(tmp_path, "cumsum", "d")  # released: the next writer proceeds


def test_bad_requests(tmp_path):
    (tmp_path / "file").write_text("x")
    task = lrbench.get_task("cumsum", length=16)
    with pytest.raises(LrbenchError, match="is not a directory"):
        generate(task, tmp_path / "file", sizes=SIZES)
    with pytest.raises(LrbenchError, match="must be positive"):
        generate(task, tmp_path / "d", sizes={"val": 0})
    assert (tmp_path / "file").read_text() == "x"


def test_full_disk_leaves_no_half_written_shard(tmp_path, monkeypatch):
    import lrbench.storage as storage

    task = lrbench.get_task("cumsum", length=16)
    generate(task, tmp_path / "d", sizes={"val": 10}, shard_size=10)  # one complete split
    real = storage.h5py.File.flush

    def full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.h5py.File, "flush", full)
    with pytest.raises(OSError, match="No space left"):
        generate(task, tmp_path / "d", sizes={"test": 10}, shard_size=10)
    monkeypatch.setattr(storage.h5py.File, "flush", real)
    names = sorted(os.listdir(tmp_path / "d"))
    assert "test-00000-of-00001.h5" not in names and not [n for n in names if "tmp" in n]
    assert lrbench.open_dataset(tmp_path / "d").splits == ["val"], "the earlier manifest is intact"


def test_digests_catch_cross_split_repeats_and_tampering(tmp_path):
    """A ListOps window so small that expressions repeat: verify reports them; --deep also checks
    each stored digest against its stored inputs."""
    from lrbench.dataset import verify

    task = lrbench.get_task("listops-subtrees", min_length=1, max_length=5, max_depth=3)
    result = generate(task, tmp_path / "d", sizes={"train": 40, "test": 40}, shard_size=40)
    problems = verify(result.directory)
    assert any("appear in both train and test" in p for p in problems), problems

    task = lrbench.get_task("listops-subtrees", min_length=40, max_length=80, max_depth=6)
    result = generate(task, tmp_path / "e", sizes={"val": 6, "test": 6}, shard_size=6)
    assert verify(result.directory, deep=True) == []
    shard = result.directory / "val-00000-of-00001.h5"
    with h5py.File(shard, "r+") as f:
        f["digest"][2] = f["digest"][3]
    manifest = json.loads((result.directory / "manifest.json").read_text())
    entry = manifest["splits"]["val"]["shards"][0]
    entry["bytes"], entry["sha256"] = shard.stat().st_size, sha256_file(shard)
    (result.directory / "manifest.json").write_text(json.dumps(manifest))
    assert verify(result.directory) == []
    assert verify(result.directory, deep=True) == ["val-00000-of-00001.h5: sample 2 digest does not match its inputs"]


def test_dataset_readme_brings_the_pictures_it_links(tmp_path):
    task = lrbench.get_task("pathfinder-seg", size=128)
    result = generate(task, tmp_path / "pf", sizes={"test": 2})
    readme = (result.directory / "README.md").read_text()
    linked = [line.split("](")[1].rstrip(")") for line in readme.splitlines() if line.startswith("![")]
    assert linked, "the pathfinder card shows example pictures"
    for name in linked:
        assert (result.directory / name).read_bytes()[:4] == b"\x89PNG"
    assert lrbench.open_dataset(result.directory)["test"][1]["inputs"].shape == (128, 128)


def test_readers_hold_a_bounded_number_of_shards_open(tmp_path):
    """A split of more shards than the reader may keep open: score and verify --deep read it all with
    a file limit far below the number of shards (they used to fail with EMFILE)."""
    import resource
    import subprocess
    import sys

    from lrbench.dataset import MAX_OPEN_SHARDS

    task = lrbench.get_task("cumsum", length=16)
    n = 4 * MAX_OPEN_SHARDS
    generate(task, tmp_path / "d", sizes={"val": n, "test": 2}, shard_size=1)
    np.save(tmp_path / "p.npy", np.zeros((n, 16, 1), np.float32))
    limit = MAX_OPEN_SHARDS + 24  # the interpreter itself needs a few

    def low_file_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    for args in (["score", tmp_path / "d", "--predictions", tmp_path / "p.npy", "--split", "val"],
                 ["verify", tmp_path / "d", "--deep"]):
        proc = subprocess.run([sys.executable, "-m", "lrbench", *map(str, args)], capture_output=True, text=True,
                              preexec_fn=low_file_limit, timeout=300)
        assert proc.returncode == 0, (args, proc.stderr)
    view = lrbench.open_dataset(tmp_path / "d")["val"]
    for batch in view.batches(3):
        assert len(view._files) <= MAX_OPEN_SHARDS
    view.close()


def test_default_shard_size_respects_the_target_down_to_one_sample():
    from lrbench.generate import SHARD_TARGET_BYTES, default_shard_size

    assert default_shard_size(lrbench.get_task("shift", length=4096)) == SHARD_TARGET_BYTES // (4096 * 11 * 4)
    assert default_shard_size(lrbench.get_task("shift", length=2 ** 20)) == 2  # 46 MB a sample
    assert default_shard_size(lrbench.get_task("shift", length=2 ** 21)) == 1  # 92 MB: not 16 of them (1.5 GB)


def test_numpy_integers_are_accepted_everywhere(tmp_path):
    task = lrbench.get_task("shift", length=np.int64(32), num_shifts=np.int32(4))
    assert type(task.config.length) is int and type(task.config.num_shifts) is int
    got = generate(task, tmp_path / "np", seed=np.int64(2), sizes={"val": np.int64(7)}, shard_size=np.int64(3),
                   workers=np.int64(1))
    plain = lrbench.get_task("shift", length=32, num_shifts=4)
    want = generate(plain, tmp_path / "py", seed=2, sizes={"val": 7}, shard_size=3)
    assert got.manifest == want.manifest
    view = lrbench.open_dataset(got.directory)["val"]
    assert np.array_equal(view[np.int64(5)]["targets"], task.sample(np.int64(5), "val", np.int64(2))["targets"])


def test_the_data_card_is_written_before_the_manifest(tmp_path, monkeypatch):
    from lrbench import cards

    real = cards.write_dataset_card

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cards, "write_dataset_card", full_disk)
    with pytest.raises(OSError):
        build(tmp_path, "cumsum", "d")
    assert not (tmp_path / "d" / "manifest.json").exists(), "no manifest before the card: the run is not complete"
    monkeypatch.setattr(cards, "write_dataset_card", real)
    _, result = build(tmp_path, "cumsum", "d")
    assert result.written == [] and (result.directory / "README.md").exists()
    assert (result.directory / "manifest.json").exists()
