"""The real CLI in subprocesses: the error contract (one line, no traceback, exit 2 usage/input,
1 runtime, 3 verification), verify against damaged datasets, kill -9 and rerun, two writers."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import lrbench
from conformance import one_line_error
from lrbench.storage import sha256_file


@pytest.mark.parametrize("args,fragments", [
    (["generate", "shfit"], ["unknown task 'shfit'", "valid tasks: shift"]),
    (["generate", "shift", "--length", "0"], ["length must be an integer >= 16 (got 0)"]),
    (["generate", "shift", "--length", "-5"], ["length must be an integer >= 16 (got -5)"]),
    (["generate", "shift", "--length", "abc"], ["'abc' is not a valid integer"]),
    (["generate", "shift", "--set", "bogus=1"], ["unknown parameter 'bogus'", "valid parameters: length, num_shifts"]),
    (["generate", "shift", "--set", "num_shifts=x"], ["num_shifts must be int"]),
    (["generate", "shift", "--num-samples", "val=-3"], ["--num-samples val must be a positive integer (got -3)"]),
    (["generate", "shift", "--num-samples", "dev=3"], ["--num-samples expects SPLIT=N"]),
    (["generate", "shift", "--size", "128"], ["shift takes --length, not --size"]),
    (["generate", "shift", "--splits", "train,dev"], ["--splits must name some of train, val, test"]),
    (["generate", "cumsum", "--length", "16", "--shards", "9/3"], ["--shards K/N needs 0 <= K < N"]),
    (["show", "shift", "--index", "-1"], ["index must be a non-negative integer"]),
    (["card", "nope"], ["unknown task 'nope'"]),
    (["frobnicate"], ["No such command 'frobnicate'"]),
])
def test_bad_usage_is_one_line_and_exit_2(cli, tmp_path, args, fragments):
    code, out, err = cli(*args, "--out", tmp_path) if args[0] == "generate" else cli(*args)
    one_line_error(code, out, err, 2, *fragments)
    assert not list(tmp_path.rglob("*.h5"))


@pytest.mark.parametrize("args,fragments", [
    (["shift", "--num-samples", f"test={10 ** 15}"], ["split test: 1000000000000000 samples", "at most 99999 shards"]),
    (["shift", "--num-samples", f"test={10 ** 9}", "--shard-size", f"{10 ** 6}"],
     ["a shard of 1000000 samples takes 167.8 GiB", "at most 2.0 GiB: use --shard-size 11915 or less"]),
    (["shift", "--length", str(10 ** 12)], ["one shift sample takes 40.0 TiB", "at most 2.0 GiB"]),
    (["select", "--set", f"num_selected={10 ** 11}"], ["one select sample takes 3.3 TiB"]),
    (["shift", "--seed", str(2 ** 64)], ["--seed must be at most 2**63 - 1", "(got 18446744073709551616)"]),
    (["cumsum", "--shard-size", "0"], ["--shard-size must be a positive number of samples (got 0)"]),
    (["cumsum", "--workers", "0"], ["--workers must be between 1 and 1024 (got 0)"]),
    (["cumsum", "--workers", "100000"], ["--workers must be between 1 and 1024 (got 100000)"]),
])
def test_impossible_requests_are_refused_at_once_leaving_nothing(tmp_path, capsys, args, fragments):
    from lrbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["generate", *args, "--out", str(tmp_path / "data")])
    out = capsys.readouterr()
    one_line_error(exc.value.code, out.out, out.err, 2, *fragments)
    assert not (tmp_path / "data").exists(), "nothing is created: no directory, no lock file"


def test_show_refuses_a_sample_too_large_to_build(capsys):
    from lrbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["show", "shift", "--length", str(10 ** 12)])
    out = capsys.readouterr()
    one_line_error(exc.value.code, out.out, out.err, 2, "one shift sample takes 40.0 TiB")


def test_out_pointing_at_a_file(cli, tmp_path):
    target = tmp_path / "data"
    target.write_text("precious")
    one_line_error(*cli("generate", "cumsum", "--length", "16", "--out", target), 2, "is a file, not a directory")
    assert target.read_text() == "precious"


@pytest.fixture
def dataset(cli, tmp_path):
    code, out, err = cli("generate", "cumsum", "--length", "16", "--num-samples", "val=30", "--num-samples", "test=20",
                         "--shard-size", "10", "--workers", "2", "--out", tmp_path)
    assert code == 0, err
    directory = tmp_path / "cumsum-L16"
    assert f"{directory}: complete, 50 samples in val, test" in out
    assert "samples/s" in err and "ETA" in err, "progress goes to stderr"
    return directory


def test_generate_verify_show_card(cli, dataset, tmp_path):
    code, out, _ = cli("verify", dataset, "--deep")
    assert code == 0 and out.strip() == f"OK {dataset} (deep)"
    code, out, _ = cli("show", dataset, "--split", "val", "--index", "4")
    assert code == 0 and "cumsum" in out and "targets" in out
    png = tmp_path / "s.png"
    assert cli("show", "shift", "--length", "64", "-o", png)[0] == 0 and png.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = cli("card", dataset)
    assert code == 0 and "## This dataset" in out and "| val | 30 |" in out
    assert "size_categories:\n  - n<1K\n" in out, "the size bucket fits this dataset, not the defaults"
    code, out, _ = cli("tasks")
    assert code == 0 and out.splitlines()[0].startswith("shift")
    code, out, _ = cli("generate", "--help")
    assert code == 0 and "[default: 0]" in out and "--num-samples" in out


def test_verify_names_a_shard_with_a_flipped_byte(cli, dataset):
    shard = dataset / "val-00001-of-00003.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, out, err = cli("verify", dataset)
    one_line_error(code, out, err, 3, "val-00001-of-00003.h5", "sha256 mismatch")
    assert "FAIL val-00001-of-00003.h5: sha256 mismatch" in out


def test_verify_truncated_shard(cli, dataset):
    shard = dataset / "test-00001-of-00002.h5"
    shard.write_bytes(shard.read_bytes()[:1000])
    one_line_error(*cli("verify", dataset), 3, "test-00001-of-00002.h5", "truncated")


def test_verify_deleted_manifest(cli, dataset):
    (dataset / "manifest.json").unlink()
    one_line_error(*cli("verify", dataset), 3, "no manifest.json")


def test_verify_deep_catches_a_rewritten_shard(cli, dataset):
    """A shard replaced consistently (manifest updated too) still fails a regeneration check."""
    import h5py

    shard = dataset / "val-00000-of-00003.h5"
    with h5py.File(shard, "r+") as f:
        f["targets"][3] = f["targets"][3] + 1
    manifest = json.loads((dataset / "manifest.json").read_text())
    entry = manifest["splits"]["val"]["shards"][0]
    entry["bytes"], entry["sha256"] = shard.stat().st_size, sha256_file(shard)
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    assert cli("verify", dataset)[0] == 0
    one_line_error(*cli("verify", dataset, "--deep"), 3, "sample 3 field targets differs")


# A run of 1200 MIPS samples in shards of 5: 240 shards, so a test that acts when the first few exist
# has the rest of the run (1-2 s of generation on a 2-core machine) to do it in. The tests below never
# rely on a run being slow beyond that: the two-writer test freezes the first writer.
SIZES, SHARD_SIZE = {"val": 1000, "test": 200}, 5
RUN = ["mips", "--length", "1024", *[a for split, n in SIZES.items() for a in ("--num-samples", f"{split}={n}")],
       "--shard-size", str(SHARD_SIZE)]


def start_generate(tmp_path, workers, out="data"):
    args = [sys.executable, "-m", "lrbench", "generate", *RUN, "--workers", str(workers), "--out", str(tmp_path / out)]
    # its own process group, so the test can stop or kill the run together with its pool workers
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_until(condition, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, ("the run ended first", proc.communicate())
        time.sleep(0.005)
    raise AssertionError("generation made no progress")


def holds_lock(directory, proc):
    """True once PROC has taken the dataset's lock: it writes its pid into the lock file only after the
    flock succeeds. (Probing with flock from here could make the writer itself fail to get the lock.)"""
    try:
        return f"(pid {proc.pid} on " in (directory / ".lock").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_the_same_bytes(cli, tmp_path):
    directory = tmp_path / "data" / "mips-L1024"
    proc = start_generate(tmp_path, workers=2)
    wait_until(lambda: len(list(directory.glob("*.h5"))) >= 3, proc)
    proc.send_signal(signal.SIGKILL)  # the main process only: its pool workers are orphaned mid-shard
    proc.wait()
    assert not (directory / "manifest.json").exists()
    time.sleep(1.0)  # orphaned pool workers notice their parent is gone and stop
    code, out, err = cli("generate", *RUN, "--workers", "2", "--out", tmp_path / "data", timeout=300)
    assert code == 0, err
    assert "kept" in out and "kept 0 complete" not in out and "wrote 0 shard" not in out, out
    assert cli("verify", directory)[0] == 0
    ref = tmp_path / "ref"
    task = lrbench.get_task("mips", length=1024)
    from lrbench.generate import generate

    generate(task, ref, sizes=SIZES, shard_size=SHARD_SIZE, workers=2)
    shards = sorted(p.name for p in ref.glob("*.h5"))
    assert len(shards) == 240 and shards == sorted(p.name for p in directory.glob("*.h5"))
    for name in shards:
        assert sha256_file(ref / name) == sha256_file(directory / name), name
    assert not [p for p in os.listdir(directory) if ".tmp-" in p]


@pytest.mark.slow
def test_two_writers_at_once(cli, tmp_path):
    directory = tmp_path / "data" / "mips-L1024"
    first = start_generate(tmp_path, workers=1)
    try:
        wait_until(lambda: holds_lock(directory, first), first)
        os.killpg(first.pid, signal.SIGSTOP)  # frozen while it holds the lock: it cannot finish first
        code, out, err = cli("generate", *RUN, "--workers", "1", "--out", tmp_path / "data")
        one_line_error(code, out, err, 1, "is being written by lrbench generate (pid", str(directory))
        assert f"(pid {first.pid} on " in err, err
        assert not (directory / "manifest.json").exists()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # the kernel dropped the dead writer's lock: the next run proceeds and completes the dataset
    code, out, err = cli("generate", *RUN, "--workers", "1", "--out", tmp_path / "data", timeout=300)
    assert code == 0 and "complete, 1200 samples" in out, (out, err)
