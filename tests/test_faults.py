"""Fault injection: what a faulty machine, a careless user or a hostile dataset does to a dataset
directory, and what lrbench must do about it (SPEC §6 "Integrity", "Readers trust nothing",
"Bounded resources"; §7 exit codes).

Each kind of fault is a table or a parametrisation; add a row to test one more case:

  CORRUPTIONS      damage to shard files: `verify` exits 3 naming the shard, and rerunning the same
  x DELETIONS      `generate` rewrites exactly the damaged shards, whatever else the user deleted
                   (the manifest, the write-time records); so do a job array and adding a split.
  HOSTILE_SHARDS   HDF5 constructs that make a shard read bytes from elsewhere, each sealed into the
                   manifest with a correct sha256 so that only the structure can give it away:
                   plain `verify` exits 3 and every reader refuses. Also: shard names leaving the
                   directory, a symlinked shard, links planted as lock or temporary files.
  attributes       a shard edited or copied from another dataset: refused when it is opened.
  BAD_MANIFESTS    manifests a reader must refuse before reading anything: one line, exit 3 from
                   `verify`, exit 2 from `show` and `score`, LrbenchError from `open_dataset`, and
                   no hang (a shard range that does not tile its split used to loop forever).
  signals          `generate` killed at random points (several seeds and signals): no process
                   outlives it, and a rerun completes the same bytes.
  full disk        a real 2 MiB tmpfs when running as root (skipped otherwise).

Everything runs on a small CumSum dataset (5 shards) copied from one reference per module; the
CLI runs in-process through its real entry point, except where a process is what is tested.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import lrbench
from conformance import one_line_error
from lrbench.cli import main
from lrbench.generate import generate
from lrbench.errors import LrbenchError
from lrbench.storage import sha256_file

TASK, LENGTH = "cumsum", 16
SIZES, SHARD_SIZE = {"val": 30, "test": 20}, 10
NAME = f"{TASK}-L{LENGTH}"
VAL0, VAL1 = "val-00000-of-00003.h5", "val-00001-of-00003.h5"
GENERATE = ["generate", TASK, "--length", str(LENGTH), "--num-samples", "val=30", "--num-samples", "test=20",
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


def shards(directory):
    return sorted(p.name for p in directory.glob("*.h5"))


def same_as_reference(directory, reference):
    assert shards(directory) == shards(reference)
    for name in shards(reference):
        assert sha256_file(directory / name) == sha256_file(reference / name), name
    assert read_manifest(directory) == read_manifest(reference)


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
    one_line_error(*run("verify", dataset), 3, VAL1, says)


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
    assert result.manifest.to_json()["splits"]["val"] == read_manifest(reference)["splits"]["val"]
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


# --- hostile HDF5 shards ----------------------------------------------------------------------
# Each replaces the field `inputs` of VAL0 by something that reads 7.0 from outside the shard.

def _outside(directory, shape, dtype):
    path = directory.parent.parent / "outside.h5"
    with h5py.File(path, "w") as f:
        f["inputs"] = np.full(shape, 7.0, dtype)
    return path


def external_link(directory, f, shape, dtype):
    f["inputs"] = h5py.ExternalLink(str(_outside(directory, shape, dtype)), "inputs")


def soft_link(directory, f, shape, dtype):
    f["elsewhere"] = np.full(shape, 7.0, dtype)
    f["inputs"] = h5py.SoftLink("/elsewhere")


def external_storage(directory, f, shape, dtype):
    raw = directory.parent.parent / "outside.raw"
    raw.write_bytes(np.full(shape, 7.0, dtype).tobytes())
    f.create_dataset("inputs", shape, dtype, external=[(str(raw), 0, h5py.h5f.UNLIMITED)])


def virtual_dataset(directory, f, shape, dtype):
    layout = h5py.VirtualLayout(shape, dtype)
    layout[:] = h5py.VirtualSource(str(_outside(directory, shape, dtype)), "inputs", shape)
    f.create_virtual_dataset("inputs", layout)


HOSTILE_SHARDS = [  # (name, plant(directory, open shard, shape, dtype), what the refusal says)
    ("external link", external_link, "external link"),
    ("soft link", soft_link, "soft link"),
    ("external raw storage", external_storage, "external storage"),
    ("virtual dataset", virtual_dataset, "virtual dataset"),
]


@pytest.mark.parametrize("name,plant,says", HOSTILE_SHARDS, ids=[h[0] for h in HOSTILE_SHARDS])
def test_hostile_hdf5_constructs_are_refused(dataset, run, name, plant, says):
    with h5py.File(dataset / VAL0, "r+") as f:
        shape, dtype = f["inputs"].shape, f["inputs"].dtype
        del f["inputs"]
        plant(dataset, f, shape, dtype)
    seal(dataset, VAL0)
    with h5py.File(dataset / VAL0, "r") as f:
        assert (f["inputs"][0] == 7.0).all(), "the construct does read outside bytes"
    one_line_error(*run("verify", dataset), 3, VAL0, says)
    with pytest.raises(LrbenchError, match=says):
        lrbench.open_dataset(dataset)["val"][0]
    one_line_error(*run("show", dataset, "--split", "val", "--index", "3"), 2, VAL0, says)


def copy_outside(directory):
    outside = directory.parent.parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    shutil.copy(directory / VAL0, outside / VAL0)
    return outside / VAL0


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_shard_names_that_leave_the_directory_are_refused(dataset, run, where):
    outside = copy_outside(dataset)
    manifest = read_manifest(dataset)
    manifest["splits"]["val"]["shards"][0]["file"] = str(outside) if where == "absolute" else f"../../elsewhere/{VAL0}"
    write_manifest(dataset, manifest)
    (dataset / VAL0).unlink()
    one_line_error(*run("verify", dataset), 3, "plain file name")
    with pytest.raises(LrbenchError, match="plain file name"):
        lrbench.open_dataset(dataset)
    one_line_error(*run("show", dataset, "--split", "val"), 2, "plain file name")


def test_a_symlinked_shard_is_refused(dataset, run):
    outside = copy_outside(dataset)
    (dataset / VAL0).unlink()
    (dataset / VAL0).symlink_to(outside)
    one_line_error(*run("verify", dataset), 3, VAL0, "symbolic link")
    with pytest.raises(LrbenchError, match="symbolic link"):
        lrbench.open_dataset(dataset)["val"][0]


# --- planted symlinks: lock and temporary files are never opened through a link ---------------

def test_a_symlinked_lock_is_refused_and_its_target_left_alone(tmp_path, run):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    directory = tmp_path / "data" / NAME
    directory.mkdir(parents=True)
    (directory / ".lock").symlink_to(victim)
    one_line_error(*run(*GENERATE, "--out", tmp_path / "data"), 2, ".lock", "symbolic link")
    assert victim.read_text() == "precious" and shards(directory) == []


def test_a_dangling_shard_lock_link_is_refused(tmp_path, run):
    directory = tmp_path / "data" / NAME
    directory.mkdir(parents=True)
    target = tmp_path / "created-through-the-link"
    (directory / f".{VAL0}.lock").symlink_to(target)
    one_line_error(*run(*GENERATE, "--shards", "0/2", "--out", tmp_path / "data"), 2, f".{VAL0}.lock", "symbolic link")
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


# --- shards from elsewhere: attributes checked when a shard is opened -------------------------

def set_attr(key, value):
    def edit(path):
        with h5py.File(path, "r+") as f:
            f.attrs[key] = value
    return edit


@pytest.mark.parametrize("key,value", [("seed", 5), ("config", '{"length":17}'), ("first_index", 3),
                                       ("split", "test"), ("task", "cummax"), ("num_samples", 9)])
def test_shard_attributes_are_checked_when_a_shard_is_opened(dataset, run, key, value):
    set_attr(key, value)(dataset / VAL1)
    seal(dataset, VAL1)
    with pytest.raises(LrbenchError, match=f"{VAL1}: attribute {key}"):
        lrbench.open_dataset(dataset)["val"][12]
    one_line_error(*run("verify", dataset), 3, VAL1, f"attribute {key}")


def test_a_shard_of_another_dataset_is_refused(dataset, tmp_path):
    other = generate(lrbench.get_task(TASK, length=LENGTH), tmp_path / "other", seed=4, sizes=SIZES,
                     shard_size=SHARD_SIZE)
    shutil.copy(other.directory / VAL1, dataset / VAL1)
    seal(dataset, VAL1)
    view = lrbench.open_dataset(dataset)["val"]
    assert view[3]["inputs"].shape == (LENGTH, 3), "the other shards still read"
    with pytest.raises(LrbenchError, match="attribute seed is 4, expected 0"):
        view[12]


# --- malformed manifests ----------------------------------------------------------------------

def _shard(split, i):
    return lambda m: m["splits"][split]["shards"][i]


def gap(m):
    _shard("val", 1)(m)["first_index"] += 1


def drop_last_shard(m):
    m["splits"]["val"]["shards"].pop()


def negative_first_index(m):
    _shard("val", 0)(m)["first_index"] = -10
    _shard("val", 0)(m)["num_samples"] = 20


def overlap(m):
    _shard("val", 1)(m)["first_index"] = 5


def huge_split(m):
    m["splits"]["val"]["num_samples"] = 10 ** 15


BAD_MANIFESTS = [  # (name, mutate(manifest dict), what the one-line error says)
    ("gap between shards", gap, "starts at sample 11, expected 10"),
    ("last shard missing", drop_last_shard, "shards cover 20 samples, split val has 30"),
    ("negative first index", negative_first_index, "starts at sample -10, expected 0"),
    ("overlapping shards", overlap, "starts at sample 5, expected 10"),
    ("huge split", huge_split, "shards cover 30 samples, split val has 1000000000000000"),
    ("splits is a number", lambda m: m.update(splits=5), "'splits' must be a JSON object"),
    ("splits is an empty list", lambda m: m.update(splits=[]), "'splits' must be a JSON object"),
    ("no splits", lambda m: m.update(splits={}), "lists no splits"),
    ("unknown split", lambda m: m["splits"].update(dev=m["splits"].pop("val")), "unknown split 'dev'"),
    ("string shard entry", lambda m: m["splits"]["val"]["shards"].__setitem__(0, VAL0), "shard 0 of split val"),
    ("missing sha256", lambda m: _shard("val", 0)(m).pop("sha256"), "lacks 'sha256'"),
    ("sha256 not hex", lambda m: _shard("val", 0)(m).update(sha256="z" * 64), "sha256"),
    ("num_samples a string", lambda m: m["splits"]["val"].update(num_samples="30"), "num_samples"),
    ("bytes negative", lambda m: _shard("test", 1)(m).update(bytes=-1), "bytes"),
    ("seed a string", lambda m: m.update(seed="0"), "'seed' must be"),
    ("seed a bool", lambda m: m.update(seed=True), "'seed' must be"),
    ("config a list", lambda m: m.update(config=[16]), "'config' must be a JSON object"),
    ("config unknown key", lambda m: m["config"].update(bogus=1), "unknown parameter bogus"),
    ("unknown task", lambda m: m.update(task="nope"), "unknown task 'nope'"),
    ("not an object", lambda m: [m.clear(), m.update({"x": 1})], "format 1"),
    ("shard renamed", lambda m: _shard("val", 2)(m).update(file="val-00002-of-00009.h5"), "val-00002-of-00003.h5"),
    ("a shard listed twice", lambda m: m["splits"]["val"]["shards"].__setitem__(1, dict(_shard("val", 0)(m))),
     "starts at sample 0, expected 10"),
    ("versions missing", lambda m: m.pop("versions"), "'versions' must be a JSON object"),
    ("a version a number", lambda m: m["versions"].update(numpy=2), "'versions' must be a JSON object"),
    ("task_id a string", lambda m: m.update(task_id="2"), "'task_id' must be a JSON integer"),
    ("task_id of another task", lambda m: m.update(task_id=3), "task cumsum is id 2, kind regression; "
     "the manifest says id 3"),
    ("kind missing", lambda m: m.pop("kind"), "'kind' must be a JSON string"),
    ("a feature a list", lambda m: m["features"].update(inputs=[1]), "feature 'inputs' must be a JSON object"),
    ("a feature's shape negative", lambda m: m["features"]["targets"].update(shape=[-1, 1]),
     "feature 'targets' must be"),
]


@pytest.mark.parametrize("name,mutate,says", BAD_MANIFESTS, ids=[b[0] for b in BAD_MANIFESTS])
def test_malformed_manifests_are_one_line_errors(dataset, run, tmp_path, name, mutate, says):
    manifest = read_manifest(dataset)
    mutate(manifest)
    write_manifest(dataset, manifest)
    one_line_error(*run("verify", dataset), 3, says)
    with pytest.raises(LrbenchError, match="manifest.json"):
        lrbench.open_dataset(dataset)
    one_line_error(*run("show", dataset, "--split", "test", "--index", "15"), 2, says)
    np.save(tmp_path / "zeros.npy", np.zeros((20, LENGTH, 1), np.float32))
    one_line_error(*run("score", dataset, "--predictions", tmp_path / "zeros.npy"), 2, says)


def test_evaluate_refuses_a_dataset_whose_shards_leave_a_gap(dataset, run):
    pytest.importorskip("torch")
    manifest = read_manifest(dataset)
    gap(manifest)
    write_manifest(dataset, manifest)
    one_line_error(*run("evaluate", "--model", "dlr", "--task", TASK, "--data", dataset, "--preset", "smoke",
                  "--steps", "1", "--device", "cpu", "--out", dataset.parent.parent / "run"),
             2, "starts at sample 11, expected 10")


def test_a_manifest_that_is_not_json_or_not_a_file(dataset, run):
    (dataset / "manifest.json").write_bytes(b"\xff\x00{")
    one_line_error(*run("verify", dataset), 3, "not valid JSON")
    (dataset / "manifest.json").unlink()
    os.mkfifo(dataset / "manifest.json")  # opening a FIFO for reading would block forever
    one_line_error(*run("verify", dataset), 3, "not a regular file")
    one_line_error(*run("show", dataset), 2, "not a regular file")


def test_generate_over_a_malformed_manifest_rebuilds_it(dataset, reference, run):
    manifest = read_manifest(dataset)
    manifest["splits"] = 5
    write_manifest(dataset, manifest)
    code, out, err = run(*GENERATE, "--out", dataset.parent)
    assert code == 0, err
    assert "kept 5 complete" in out
    same_as_reference(dataset, reference)


# --- signals at random points -----------------------------------------------------------------
# `generate` with two workers, killed at a random moment of its run by one of these signals, sent to
# the main process alone (its workers must notice) or to the whole process group (as a terminal
# does). Afterwards no process of the run may be left, and a rerun must give the reference bytes.

SIGNAL_RUN = ["shift", "--length", "64", "--num-samples", "val=120", "--num-samples", "test=60", "--shard-size", "4"]


def proc_children(pid):
    """pid -> start time of every descendant of pid, from /proc (no psutil)."""
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == parent:  # ppid
                found[int(entry)] = fields[19]  # starttime
                frontier.append(int(entry))
    return found


def alive(pid, start):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] == start and fields[0] != "Z"


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_for(condition, timeout=60):
    """Poll until condition() holds; False if it still does not after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def start(args, out):
    return subprocess.Popen([sys.executable, "-m", "lrbench", "generate", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture(scope="module")
def signal_reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("signal-ref") / "shift-L64"
    generate(lrbench.get_task("shift", length=64), directory, sizes={"val": 120, "test": 60}, shard_size=4)
    return directory


def nothing_outlives(proc, children):
    proc.wait(timeout=60)
    gone = wait_for(lambda: not any(alive(pid, t) for pid, t in children.items()))
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid, t in children.items() if alive(pid, t)}
    if left:
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert gone and not left, f"processes outlived generate: {left}"


@pytest.mark.slow
@pytest.mark.parametrize("seed,sig,group", [(0, signal.SIGKILL, False), (1, signal.SIGTERM, False),
                                            (2, signal.SIGINT, True)])
def test_killed_at_a_random_point_leaves_no_process_and_resumes(signal_reference, tmp_path, run, seed, sig, group):
    rng = random.Random(seed)
    proc = start([*SIGNAL_RUN, "--workers", "2"], tmp_path)
    directory = tmp_path / "shift-L64"
    # wait until the pool runs (both workers spawned) and a random number of its 45 shards exist
    assert wait_for(lambda: sum(b"multiprocessing.spawn" in _cmdline(p) for p in proc_children(proc.pid)) >= 2
                    or proc.poll() is not None), "no worker started"
    written = rng.randint(0, 44)
    assert wait_for(lambda: len(shards(directory)) >= written or proc.poll() is not None)
    children = proc_children(proc.pid)
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    nothing_outlives(proc, children)
    code, out, err = run("generate", *SIGNAL_RUN, "--workers", "1", "--out", tmp_path)  # the rerun
    assert code == 0, err
    same_as_reference(directory, signal_reference)
    assert not [p for p in os.listdir(directory) if ".tmp-" in p]


# A run whose two long shards take minutes each (600 Solve samples at L = 16384, ~0.4 s a sample):
# when the main process dies its workers must go at once, not when their shard is done (they used to
# run on for minutes, and the resource tracker with them).
LONG_RUN = ["solve", "--length", "16384", "--num-samples", "val=1", "--num-samples", "test=1200",
            "--shard-size", "600", "--workers", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_worker_outlives_a_killed_generate(tmp_path, sig):
    proc = start(LONG_RUN, tmp_path)
    directory = tmp_path / "solve-L16384"
    try:
        # the one-sample val shard is written once a worker runs jobs; by then the long ones have started
        assert wait_for(lambda: (directory / "val-00000-of-00001.h5").exists() or proc.poll() is not None)
        assert proc.poll() is None
        children = proc_children(proc.pid)
        assert sum(b"multiprocessing" in _cmdline(p) for p in children) >= 2, children
        proc.send_signal(sig)
        nothing_outlives(proc, children)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- a full disk ------------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("this kernel or container does not let us mount a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_the_rerun_completes(small_tmpfs, run, tmp_path):
    args = ["generate", "shift", "--length", "256", "--num-samples", "val=160", "--splits", "val",
            "--shard-size", "20", "--workers", "1", "--out", small_tmpfs]
    code, out, err = run(*args)  # 160 samples x 41 KiB: 6.6 MB on a 2 MiB disk
    one_line_error(code, out, err, 1, "No space left on device")
    directory = small_tmpfs / "shift-L256"
    names = os.listdir(directory)
    assert "manifest.json" not in names and "README.md" not in names
    assert not [n for n in names if ".tmp-" in n], "no half-written file is left"
    for name in (n for n in names if n.endswith(".h5")):  # what was completed is whole
        assert lrbench.storage.read_attrs(directory / name) is not None
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    code, out, err = run(*args)
    assert code == 0, err
    assert run("verify", directory, "--deep")[0] == 0
