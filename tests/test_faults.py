"""Fault injection: what a faulty machine, a careless user or a hostile dataset does to a dataset
directory, and what lrbench must do about it (SPEC §6 "Integrity", "Readers trust nothing",
"Bounded resources"; §7 exit codes).

Each kind of fault is a table; add a row to test one more case:

  CORRUPTIONS      damage to shard files: `verify` exits 3 naming the shard, and rerunning the same
                   `generate` rewrites exactly the damaged shards, whatever else the user deleted.
  HOSTILE_SHARDS   HDF5 constructs that make a shard read bytes from elsewhere, each sealed into the
                   manifest with a correct sha256 so that only the structure can give it away:
                   plain `verify` exits 3 and every reader refuses.
  BAD_MANIFESTS    manifests a reader must refuse before reading anything: one line, exit 3 from
                   `verify`, exit 2 from `show` and `score`, ManifestError from `open_dataset`, and
                   no hang (a shard range that does not tile its split used to loop forever).
  signals          `generate` killed at random points (several seeds): no process outlives it, and
                   a rerun completes the same bytes.
  full disk        a real 2 MiB tmpfs when running as root (skipped otherwise).

Everything runs on a small CumSum dataset (5 shards) copied from one reference per module; the
CLI runs in-process through its real entry point, except where a process is what is tested.
"""

from __future__ import annotations

import json
import os
import shutil
import signal

import h5py
import numpy as np
import pytest

import lrbench
from lrbench.cli import main
from lrbench.generate import generate
from lrbench.storage import sha256_file

TASK, LENGTH = "cumsum", 16
SIZES, SHARD_SIZE = {"val": 30, "test": 20}, 10
NAME = f"{TASK}-L{LENGTH}"
VAL0, VAL1, TEST1 = "val-00000-of-00003.h5", "val-00001-of-00003.h5", "test-00001-of-00002.h5"
GENERATE = ["generate", TASK, "--length", str(LENGTH), *[a for s, n in SIZES.items() for a in ("--num-samples", f"{s}={n}")],
            "--shard-size", str(SHARD_SIZE), "--workers", "1"]


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that loops forever fails the test instead of hanging the suite (a hang guard, not a
    timing assertion: nothing here takes more than a few seconds)."""
    def hung(signum, frame):
        raise AssertionError("hung: no answer within 120 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    generate(lrbench.get_task(TASK, length=LENGTH), root / NAME, sizes=SIZES, shard_size=SHARD_SIZE, workers=1)
    return root / NAME


@pytest.fixture
def dataset(reference, tmp_path):
    """A fresh copy of the reference dataset, in tmp_path/data/NAME."""
    directory = tmp_path / "data" / NAME
    shutil.copytree(reference, directory)
    return directory


@pytest.fixture
def run(capsys):
    """The real CLI entry point in-process: (exit code, stdout, stderr)."""
    def call(*args):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out = capsys.readouterr()
        return exc.value.code, out.out, out.err
    return call


def one_line(code, out, err, want_code, *fragments):
    assert code == want_code, (code, out, err)
    lines = [line for line in err.strip().splitlines() if "samples/s" not in line]  # progress lines
    assert len(lines) == 1 and lines[0].startswith("lrbench: error:"), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def shards(directory):
    return sorted(p.name for p in directory.glob("*.h5"))


def same_as_reference(directory, reference):
    assert shards(directory) == shards(reference)
    for name in shards(reference):
        assert sha256_file(directory / name) == sha256_file(reference / name), name
    assert json.loads((directory / "manifest.json").read_text()) == json.loads((reference / "manifest.json").read_text())


def read_manifest(directory):
    return json.loads((directory / "manifest.json").read_text())


def write_manifest(directory, manifest):
    (directory / "manifest.json").write_text(json.dumps(manifest))


def seal(directory, name):
    """Record a tampered shard's size and sha256 in the manifest, as a forger would."""
    manifest = read_manifest(directory)
    for entry in manifest["splits"].values():
        for shard in entry["shards"]:
            if shard["file"] == name:
                shard["bytes"], shard["sha256"] = (directory / name).stat().st_size, sha256_file(directory / name)
    write_manifest(directory, manifest)


def regenerate(directory):
    return generate(lrbench.get_task(TASK, length=LENGTH), directory, sizes=SIZES, shard_size=SHARD_SIZE, workers=1)


# --- corruptions ------------------------------------------------------------------------------

def flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def zero_last_kib(path):
    data = bytearray(path.read_bytes())
    data[-1024:] = bytes(1024)
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[:700])


def append_garbage(path):
    with open(path, "ab") as f:
        f.write(b"\0" * 100)


def edit_a_value(path):
    with h5py.File(path, "r+") as f:
        f["targets"][2] = f["targets"][2] + 1


CORRUPTIONS = [  # (name, damage(shard path), what verify says)
    ("flipped byte", flip_middle_byte, "sha256 mismatch"),
    ("zeroed tail", zero_last_kib, "sha256 mismatch"),
    ("truncated", truncate, "truncated or replaced"),
    ("grown", append_garbage, "truncated or replaced"),
    ("value edited with h5py", edit_a_value, ""),
]
# what the user removed before rerunning `generate`: nothing (README: rerun), the manifest (the old
# advice), the write-time records (the manifest is then the record), or both (a shard with no record
# is rewritten)
DELETIONS = {
    "nothing": lambda d: None,
    "manifest": lambda d: (d / "manifest.json").unlink(),
    "records": lambda d: [p.unlink() for p in d.glob(".*.sha256")],  # a dataset from before records
    "manifest and records": lambda d: [p.unlink() for p in d.glob(".*.sha256")] + [(d / "manifest.json").unlink()],
}


@pytest.mark.parametrize("name,damage,says", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_verify_names_the_damaged_shard(dataset, run, name, damage, says):
    damage(dataset / VAL1)
    one_line(*run("verify", dataset), 3, VAL1, says)


@pytest.mark.parametrize("deleted", list(DELETIONS))
@pytest.mark.parametrize("name,damage,says", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_rerun_rewrites_damaged_shards_and_never_blesses_them(dataset, reference, name, damage, says, deleted):
    damage(dataset / VAL1)
    DELETIONS[deleted](dataset)
    result = regenerate(dataset)
    assert VAL1 in result.written, "the damaged shard must be written again"
    if deleted != "manifest and records":
        assert len(result.skipped) == 4, "the intact ones are kept"
    same_as_reference(dataset, reference)


def test_adding_a_split_rewrites_a_damaged_shard_of_a_finished_split(dataset, reference, tmp_path):
    flip_middle_byte(dataset / VAL1)
    result = generate(lrbench.get_task(TASK, length=LENGTH), dataset, sizes={"train": 4}, shard_size=SHARD_SIZE)
    assert VAL1 in result.written
    assert result.manifest["splits"]["val"] == read_manifest(reference)["splits"]["val"]
    assert lrbench.dataset.verify(dataset) == []


def test_job_array_finisher_never_blesses_a_damaged_shard(reference, tmp_path):
    task = lrbench.get_task(TASK, length=LENGTH)
    directory = tmp_path / NAME
    first = generate(task, directory, sizes=SIZES, shard_size=SHARD_SIZE, shards="0/2")
    assert VAL1 not in first.written and first.manifest is None
    generate(task, directory, sizes=SIZES, shard_size=SHARD_SIZE, shards="1/2")  # writes VAL1 ...
    (directory / "manifest.json").unlink()
    flip_middle_byte(directory / VAL1)  # ... which then rots on the shared disk
    finisher = generate(task, directory, sizes=SIZES, shard_size=SHARD_SIZE, shards="0/2")
    assert finisher.manifest is None and finisher.missing == [VAL1], "a shard it does not own is left to a full run"
    assert not (directory / "manifest.json").exists()
    full = generate(task, directory, sizes=SIZES, shard_size=SHARD_SIZE)
    assert full.written == [VAL1]
    same_as_reference(directory, reference)


# --- planted symlinks: lock and temporary files are never opened through a link ---------------

def test_a_symlinked_lock_is_refused_and_its_target_left_alone(tmp_path, run):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    directory = tmp_path / "data" / NAME
    directory.mkdir(parents=True)
    (directory / ".lock").symlink_to(victim)
    one_line(*run(*GENERATE, "--out", tmp_path / "data"), 2, ".lock", "symbolic link")
    assert victim.read_text() == "precious" and shards(directory) == []


def test_a_dangling_shard_lock_link_is_refused(tmp_path, run):
    directory = tmp_path / "data" / NAME
    directory.mkdir(parents=True)
    target = tmp_path / "created-through-the-link"
    (directory / f".{VAL0}.lock").symlink_to(target)
    one_line(*run(*GENERATE, "--shards", "0/2", "--out", tmp_path / "data"), 2, f".{VAL0}.lock", "symbolic link")
    assert not target.exists() and shards(directory) == []


def test_temporary_files_are_never_opened_through_a_link(tmp_path, monkeypatch, reference):
    from lrbench import storage

    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    directory = tmp_path / NAME
    directory.mkdir()
    for name in (VAL0, "manifest.json", "README.md"):  # the names a writer used to pick: pid-based
        (directory / f".{name}.tmp-{os.getpid()}").symlink_to(victim)
    regenerate(directory)
    assert victim.read_bytes() == b"precious"
    same_as_reference(directory, reference)
    # a link planted at the very name the writer picks is refused, never written through
    monkeypatch.setattr(storage, "temporary_name", lambda path: path.with_name(f".{path.name}.planted"))
    for name in ("x.h5", "x.json"):
        (directory / f".{name}.planted").symlink_to(victim)
    with pytest.raises(FileExistsError):
        storage.write_shard(directory / "x.h5", {"a": np.zeros((2, 3))}, {"first_index": 0})
    with pytest.raises(FileExistsError):
        storage.atomic_write_bytes(directory / "x.json", b"{}")
    assert victim.read_bytes() == b"precious"
    assert not (directory / "x.h5").exists() and not (directory / "x.json").exists()
