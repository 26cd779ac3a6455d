"""Generate a dataset directory: plan shards, lock the directory, fill missing shards in a process
pool, then write the manifest and the data card once every shard exists.

Samples are pure functions of (task, config, seed, split, index), so the bytes of a shard depend
only on its index range: worker count, shard order and interruptions cannot change them.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import math
import multiprocessing
import os
import signal
import socket
import stat
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lrbench import cards
from lrbench import manifest as manifest_mod
from lrbench.errors import RUNTIME, LrbenchError
from lrbench.manifest import MAX_SEED, MAX_SHARDS
from lrbench.registry import Task, config_dict, config_json
from lrbench.seeding import SPLITS
from lrbench.storage import (SHARD_FORMAT, ShardInfo, describe_file, read_attrs, read_record, sample_digest,
                             sha256_file, shard_name, write_shard)

LOCK = ".lock"
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SHARD_TARGET_BYTES = 128 << 20  # raw bytes per shard before compression
MAX_SHARD_BYTES = 2 << 30  # raw bytes a shard may take: its worker holds it in memory
MAX_WORKERS = 1024


@dataclass(frozen=True)
class ShardJob:
    split: str
    shard: int  # index within the split
    count: int  # shards in the split
    first_index: int
    num_samples: int

    @property
    def file(self) -> str:
        return shard_name(self.split, self.shard, self.count)


def sample_nbytes(task: Task) -> int:
    """Raw bytes of one sample in memory and before compression (ragged fields at their maximum)."""
    return sum(math.prod(f.shape) * np.dtype(f.dtype).itemsize for f in task.features.values())


def default_shard_size(task: Task) -> int:
    """Samples per shard: ~SHARD_TARGET_BYTES of raw data, down to one sample, at most 10,000."""
    return int(min(10_000, max(1, SHARD_TARGET_BYTES // max(1, sample_nbytes(task)))))


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def check_sample_size(task: Task) -> int:
    """One sample's raw bytes; LrbenchError (exit 2) when it alone exceeds what a shard may hold."""
    raw = sample_nbytes(task)
    if raw > MAX_SHARD_BYTES:
        raise LrbenchError(f"one {task.name} sample takes {_size(raw)}; at most {_size(MAX_SHARD_BYTES)} fit a shard, "
                            "which one worker builds in memory")
    return raw


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise LrbenchError(f"{what} must be an integer (got {value!r})")
    return int(value)


def check_request(task: Task, seed, sizes: dict, shard_size, workers) -> tuple[int, dict[str, int], int, int]:
    """(seed, sizes, shard size, workers) as plain ints, or LrbenchError (exit 2) naming the numbers:
    an impossible request is refused at once, before a directory, lock or worker exists.

    Bounds: a seed fits the 64-bit integer every shard stores; 1..MAX_WORKERS worker processes; a
    shard holds at most MAX_SHARD_BYTES of raw data (its worker builds it in memory), so one sample
    must fit too; a split has at most MAX_SHARDS shards (five-digit shard names), so planning stays
    bounded whatever the number of samples.
    """
    seed, workers = _int(seed, "--seed"), _int(workers, "--workers")
    if seed < 0:
        raise LrbenchError(f"--seed must be a non-negative integer (got {seed})")
    if seed > MAX_SEED:
        raise LrbenchError(f"--seed must be at most 2**63 - 1, the largest a shard stores (got {seed})")
    if not 1 <= workers <= MAX_WORKERS:
        raise LrbenchError(f"--workers must be between 1 and {MAX_WORKERS} (got {workers})")
    raw = check_sample_size(task)
    shard_size = default_shard_size(task) if shard_size is None else _int(shard_size, "--shard-size")
    if shard_size < 1:
        raise LrbenchError(f"--shard-size must be a positive number of samples (got {shard_size})")
    if shard_size * raw > MAX_SHARD_BYTES:
        raise LrbenchError(f"a shard of {shard_size} samples takes {_size(shard_size * raw)}; at most "
                            f"{_size(MAX_SHARD_BYTES)}: use --shard-size {MAX_SHARD_BYTES // raw} or less")
    plain = {}
    for split, n in sizes.items():
        n = plain[split] = _int(n, f"number of samples for {split}")
        if n < 1:
            raise LrbenchError(f"number of samples for {split} must be positive (got {n})")
        count = -(-n // shard_size)
        if count > MAX_SHARDS:
            raise LrbenchError(f"split {split}: {n} samples in shards of {shard_size} make {count} shards; at most "
                                f"{MAX_SHARDS} shards per split (five-digit names), and a shard of this task holds "
                                f"at most {MAX_SHARD_BYTES // raw} samples")
    return seed, plain, shard_size, workers


def plan_shards(sizes: dict[str, int], shard_size: int) -> list[ShardJob]:
    """Shards of every split, in split order; shard i of a split covers [i·size, (i+1)·size)."""
    jobs = []
    for split, n in sizes.items():
        count = max(1, -(-n // shard_size))
        for i in range(count):
            first = i * shard_size
            jobs.append(ShardJob(split, i, count, first, min(shard_size, n - first)))
    return jobs


def select_shards(jobs: list[ShardJob], spec: str) -> list[ShardJob]:
    """``K/N``: every N-th shard starting at K (job arrays); or ``a-b,c``: global shard numbers."""
    spec = spec.strip()
    if "/" in spec:
        k, n = _ints(spec.split("/", 1), spec)
        if n < 1 or not 0 <= k < n:
            raise LrbenchError(f"--shards K/N needs 0 <= K < N (got {spec})")
        return jobs[k::n]
    chosen: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        a, b = _ints([lo, hi or lo], spec)
        if a > b or b >= len(jobs) or a < 0:
            raise LrbenchError(f"--shards range {part!r} is outside 0-{len(jobs) - 1}")
        chosen.update(range(a, b + 1))
    return [job for i, job in enumerate(jobs) if i in chosen]


def _ints(parts, spec) -> list[int]:
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise LrbenchError(f"--shards must look like 3, 0-9, 0,4,7 or K/N (got {spec!r})") from None


def sample_arrays(task: Task, seed: int, split: str, first: int, n: int, tick: Callable[[], None] | None = None):
    """Samples first..first+n-1 stacked per field in on-disk dtypes (ragged fields padded), plus
    ``lengths`` when a field is ragged and ``digest`` when the task asks for one."""
    features = task.features
    arrays = {name: np.empty((n, *f.shape), dtype=f.dtype) for name, f in features.items()}  # every row filled
    ragged = any(f.ragged for f in features.values())
    if ragged:
        arrays["lengths"] = np.zeros(n, dtype=np.int32)
    if task.spec.digest:
        arrays["digest"] = np.zeros((n, 16), dtype=np.uint8)
    for k in range(n):
        sample = task.sample(first + k, split, seed)
        if set(sample) != set(features):
            raise RuntimeError(f"{task.name} produced fields {sorted(sample)}, declared {sorted(features)}")
        for name, f in features.items():
            a = np.asarray(sample[name])
            if f.ragged:
                if a.shape[1:] != f.shape[1:] or len(a) > f.shape[0]:
                    raise RuntimeError(f"{task.name}.{name} has shape {a.shape}, declared at most {f.shape}")
                arrays["lengths"][k] = len(a)
            elif a.shape != f.shape:
                raise RuntimeError(f"{task.name}.{name} has shape {a.shape}, declared {f.shape}")
            f.stack([a], out=arrays[name][k:k + 1])  # padded to the declared maximum when ragged
        if task.spec.digest:
            arrays["digest"][k] = sample_digest(sample["inputs"], features["inputs"].dtype)
        if tick:
            tick()
    return arrays


def shard_attrs(task: Task, seed: int, job: ShardJob) -> dict:
    return {
        "format_version": SHARD_FORMAT, "task": task.name, "config": config_json(task.config), "seed": seed,
        "split": job.split, "first_index": job.first_index, "num_samples": job.num_samples,
        "shard": job.shard, "num_shards": job.count,
    }


def write_job(task: Task, seed: int, directory: Path, job: ShardJob, tick=None) -> ShardInfo:
    arrays = sample_arrays(task, seed, job.split, job.first_index, job.num_samples, tick)
    compress = {name for name, f in task.features.items() if f.compress}
    return write_shard(directory / job.file, arrays, shard_attrs(task, seed, job), compress)


# --- worker processes -------------------------------------------------------------------------

_counter = None


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _init_worker(counter, parent: int) -> None:
    global _counter
    _counter = counter
    _die_with(parent)


def _die_with(parent: int) -> None:
    """End this worker as soon as the process that started it is gone, however that one ended
    (SIGKILL included): otherwise a worker finishes its shard, minutes perhaps, and the pool's
    resource tracker waits for it. Linux sends us SIGKILL when the parent dies (PR_SET_PDEATHSIG);
    elsewhere a thread watches the parent's pid. A parent already gone is caught by the last check."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="lrbench-parent-watch").start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


def _tick() -> None:
    with _counter.get_lock():
        _counter.value += 1


def _run_job(task: Task, seed: int, directory: str, job: ShardJob) -> ShardInfo:
    """One shard in a worker process. The task travels by value (its entry holds module-level
    functions), so a task registered at run time is generated there too."""
    return write_job(task, seed, Path(directory), job, _tick)


@contextmanager
def one_blas_thread():
    """One worker process per core already: BLAS thread pools inside each would only oversubscribe.
    Spawned workers (started on demand by submit) read these when they import numpy; a user's own
    setting wins, and the parent's environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    for k in BLAS_THREAD_VARS:
        os.environ.setdefault(k, "1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


# --- locking ----------------------------------------------------------------------------------

class DirLock:
    """An flock on DIR/.lock: exclusive for a whole-dataset run, shared for ``--shards`` runs (which
    then lock each of their shards exclusively). The kernel drops it when the holder dies, so a
    killed run never blocks the rerun."""

    def __init__(self, directory: Path, shared: bool):
        self.path = directory / LOCK
        self.fd = open_lock_file(self.path)
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            holder = " ".join(os.pread(self.fd, 200, 0).decode(errors="replace").split()) or "another process"
            os.close(self.fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise LrbenchError(f"{directory} is being written by {holder}; wait for it or use another --out",
                                   RUNTIME) from None
            raise
        if not shared:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"lrbench generate (pid {os.getpid()} on {socket.gethostname()})".encode())

    def close(self) -> None:
        os.close(self.fd)  # releases the flock


def open_lock_file(path: Path) -> int:
    """Open (or create) a lock file, never through a symbolic link: the writer truncates and writes
    its lock, so a planted link would let it overwrite any file its user may write. A link there is
    refused with exit code 2, like a directory holding another dataset: rerunning cannot help, the
    user must remove it or pick another --out."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise LrbenchError(f"{path} is a symbolic link; lrbench never opens its lock files through one: "
                            "remove it, or use another --out") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = describe_file(st.st_mode) if not stat.S_ISREG(st.st_mode) else "a hard link to another file"
        raise LrbenchError(f"{path} is {what}, not a lock file lrbench made: remove it, or use another --out")
    return fd


def _shard_locks(directory: Path, jobs: list[ShardJob]) -> list[int]:
    fds = []
    try:
        for job in jobs:
            fd = open_lock_file(directory / f".{job.file}.lock")
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise LrbenchError(f"shard {job.file} in {directory} is being written by another process",
                                   RUNTIME) from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


# --- the whole run ----------------------------------------------------------------------------

@dataclass
class Result:
    directory: Path
    written: list[str]
    skipped: list[str]
    missing: list[str]  # shards of the dataset still absent or not matching their record (subset runs)
    manifest: manifest_mod.Manifest | None  # written when the dataset is complete


def _check_same_dataset(directory: Path, task: Task, seed: int, old: manifest_mod.Manifest | None) -> None:
    if old is None:
        return
    same = (old.task, old.config, old.seed) == (task.name, config_dict(task.config), seed)
    if not same:
        raise LrbenchError(
            f"{directory} holds another dataset ({old.task}, seed {old.seed}, config {json.dumps(old.config)}); "
            "use another --out, or --force to replace it")


def _merge_sizes(directory: Path, old: manifest_mod.Manifest | None, sizes: dict[str, int]) -> dict[str, int]:
    merged = {s: entry.num_samples for s, entry in old.splits.items()} if old else {}
    for split, n in sizes.items():
        if split in merged and merged[split] != n:
            raise LrbenchError(
                f"split {split} in {directory} already has {merged[split]} samples (asked for {n}); "
                "use --force to regenerate")
        merged[split] = n
    return {s: merged[s] for s in SPLITS if s in merged}


def _clear(directory: Path) -> None:
    for path in directory.iterdir():
        if path.suffix == ".h5" or path.name in (manifest_mod.MANIFEST, "README.md") or ".tmp-" in path.name \
                or path.name.endswith(".h5.sha256"):
            path.unlink()


def generate(task: Task, out: str | Path, *, seed: int = 0, sizes: dict[str, int], shard_size: int | None = None,
             workers: int = 1, shards: str | None = None, force: bool = False,
             progress: Callable[[int, int], None] | None = None) -> Result:
    """Write (or resume) the dataset of ``task`` under ``out`` and return what happened.

    ``sizes`` maps the splits to write to their number of samples; splits already in the
    directory's manifest are kept. ``shards`` restricts the run to a subset (see select_shards).
    """
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise LrbenchError(f"--out {directory} exists and is not a directory")
    seed, sizes, shard_size, workers = check_request(task, seed, sizes, shard_size, workers)
    directory.mkdir(parents=True, exist_ok=True)

    lock = DirLock(directory, shared=shards is not None)
    shard_fds: list[int] = []
    try:
        if force:
            if shards is not None:
                raise LrbenchError("--force cannot be combined with --shards")
            _clear(directory)
        try:
            old = manifest_mod.read(directory)
        except LrbenchError:
            old = None
        _check_same_dataset(directory, task, seed, old)
        sizes = _merge_sizes(directory, old, sizes)
        jobs = []
        for split, n in sizes.items():
            if old and split in old.splits:  # a complete split keeps the shard layout it was written with
                entries = old.splits[split].shards
                jobs += [ShardJob(split, i, len(entries), s.first_index, s.num_samples) for i, s in enumerate(entries)]
            else:
                jobs += plan_shards({split: n}, shard_size)
        chosen = jobs if shards is None else select_shards(jobs, shards)
        if shards is not None:
            shard_fds = _shard_locks(directory, chosen)
        # temporaries of killed runs: all of them under the exclusive lock, else those of our shards
        patterns = [".*.tmp-*"] if shards is None else \
            [p for job in chosen for p in (f".{job.file}.tmp-*", f"..{job.file}.sha256.tmp-*")]
        for pattern in patterns:
            for tmp in directory.glob(pattern):
                tmp.unlink(missing_ok=True)

        listed = _listed(old)
        with ThreadPoolExecutor(min(workers, 8)) as pool:  # hashing drops the GIL
            found = list(pool.map(lambda job: _kept(directory, job, shard_attrs(task, seed, job), listed), chosen))
        records = {job.file: info for job, info in zip(chosen, found) if info is not None}
        skipped = list(records)
        todo = [job for job in chosen if job.file not in records]
        records.update(_run(task, seed, directory, todo, workers, progress))

        others = [job for job in jobs if job.file not in records]  # shards of the other --shards runs
        if others and all(os.path.lexists(directory / job.file) for job in others):  # this run may finish the set
            for job in others:
                info = _kept(directory, job, shard_attrs(task, seed, job), listed)
                if info is not None:
                    records[job.file] = info
        missing = [job.file for job in jobs if job.file not in records]
        result = Result(directory, [j.file for j in todo], skipped, missing, None)
        if not missing:
            by_split: dict[str, list[ShardInfo]] = {s: [] for s in sizes}
            for job in jobs:
                by_split[job.split].append(records[job.file])
            result.manifest = manifest_mod.build(task, seed, by_split, sizes)
            cards.write_dataset_card(directory, task, result.manifest)  # first: a manifest means complete
            manifest_mod.write(directory, result.manifest)
        return result
    finally:
        for fd in shard_fds:
            os.close(fd)
        lock.close()


def attrs_match(attrs: dict, expected: dict) -> bool:
    """A shard from an earlier, interrupted run of the same dataset and layout."""
    return all(attrs.get(k) == v for k, v in expected.items())


def _listed(manifest: manifest_mod.Manifest | None) -> dict[str, ShardInfo]:
    """The shards a manifest lists, by file name: the records of datasets written before shards had
    records of their own beside them."""
    if manifest is None:
        return {}
    return {s.file: s for entry in manifest.splits.values() for s in entry.shards}


def _kept(directory: Path, job: ShardJob, expected: dict, listed: dict[str, ShardInfo]) -> ShardInfo | None:
    """The record of a finished shard to keep, or None when the shard must be written (again).

    A shard is kept only when its bytes match the checksum recorded when it was written (its record
    beside it, else its manifest entry). Absent, debris, damaged, a link or no record at all: it is
    written again, never blessed by hashing whatever is there. A readable shard of other parameters
    is an error: the user picked the wrong --out or options.
    """
    path = directory / job.file
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    attrs = read_attrs(path) if stat.S_ISREG(st.st_mode) else None
    if attrs is None:
        return None
    if not attrs_match(attrs, expected):
        raise LrbenchError(
            f"{path} was written with other parameters (task, config, seed or shard size); "
            "use the original ones, another --out, or --force")
    record = read_record(path) or listed.get(job.file)
    if record is None or (record.file, record.first_index, record.num_samples, record.bytes) != \
            (job.file, job.first_index, job.num_samples, st.st_size):
        return None
    try:
        return record if sha256_file(path) == record.sha256 else None
    except OSError:  # swapped for a link or removed meanwhile
        return None


def _run(task: Task, seed: int, directory: Path, jobs: list[ShardJob], workers: int, progress) -> dict[str, ShardInfo]:
    total = sum(j.num_samples for j in jobs)
    done = 0
    infos: dict[str, ShardInfo] = {}
    if progress:
        progress(0, total)
    if not jobs:
        return infos
    if workers == 1 or len(jobs) == 1:
        def tick():
            nonlocal done
            done += 1
            if progress and (done % 16 == 0 or done == total):
                progress(done, total)

        for job in jobs:
            infos[job.file] = write_job(task, seed, directory, job, tick)
        return infos

    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    with one_blas_thread(), ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker,
                                                initargs=(counter, os.getpid())) as pool:
        try:
            pending = {pool.submit(_run_job, task, seed, str(directory), job): job for job in jobs}
            while pending:
                finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = pending.pop(fut)
                    infos[job.file] = fut.result()
                if progress:
                    progress(counter.value, total)
        except BaseException:  # a failed shard, Ctrl-C, SIGTERM: stop now, not when running shards are done
            _kill_workers(pool)
            raise
    return infos


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the shards not started and kill the workers: the ones running would otherwise finish
    their shards first. What they leave behind is a temporary file, removed by the next run."""
    if hasattr(pool, "kill_workers"):  # Python >= 3.14
        pool.kill_workers()
        return
    for process in list((pool._processes or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)

