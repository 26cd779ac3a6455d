"""HDF5 shards: a dumb, crash-safe writer and a checked reader. Knows nothing about tasks.

A shard holds one HDF5 dataset per field, first axis = sample, with explicit chunks of whole
samples. Writes go to a temporary name in the same directory, are flushed and fsynced, then
renamed, so a shard either exists complete under its final name or not at all.

Beside each shard the writer leaves its record, ``.<shard>.sha256``: the size and sha256 computed
from the bytes it wrote, before the shard took its final name. A rerun keeps a shard only when its
bytes still match that record, so a checksum is never derived from bytes found on disk.

Files the writer creates (temporaries, records) are created exclusively under fresh names and
never opened through a symbolic link someone planted in the directory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SHARD_FORMAT = 1
CHUNK_BYTES = 1 << 16  # aim for ~64 KiB chunks, always a whole number of samples


@dataclass(frozen=True)
class ShardInfo:
    file: str
    first_index: int
    num_samples: int
    bytes: int
    sha256: str

    def to_json(self) -> dict:
        return {"file": self.file, "first_index": self.first_index, "num_samples": self.num_samples,
                "bytes": self.bytes, "sha256": self.sha256}


def shard_name(split: str, i: int, n: int) -> str:
    return f"{split}-{i:05d}-of-{n:05d}.h5"


def sample_digest(inputs: np.ndarray, dtype: str) -> np.ndarray:
    """16-byte blake2b of a sample's inputs in their on-disk dtype: equal digests, equal inputs. Tasks
    that ask for it store one per sample (field ``digest``), so that ``verify`` finds a sample stored
    in two splits."""
    tokens = np.ascontiguousarray(inputs, dtype=dtype)
    return np.frombuffer(hashlib.blake2b(tokens.tobytes(), digest_size=16).digest(), np.uint8)


def describe_file(mode: int) -> str:
    """What a non-regular file is, for messages: "a directory", "a FIFO", ..."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, follow: bool = False) -> int:
    """A read-only descriptor of the regular file at ``path``; OSError naming what else it is.

    Without ``follow`` a symbolic link is refused (ELOOP). Opening never blocks on a FIFO.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "is a symbolic link", str(path)) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"is {describe_file(mode)}, not a regular file", str(path))
    os.set_blocking(fd, True)
    return fd


def sha256_file(path: str | Path) -> str:
    """sha256 of a regular file, never read through a symbolic link."""
    with os.fdopen(open_regular(path), "rb") as f:
        return _sha256(f)


def _sha256(f, block: int = 1 << 22) -> str:
    if hasattr(hashlib, "file_digest"):  # Python >= 3.11: reads into one reused buffer
        return hashlib.file_digest(f, "sha256").hexdigest()
    h = hashlib.sha256()
    while chunk := f.read(block):
        h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path``; the pid says whose it was, the random part makes it
    unguessable (a planted file or link under it is refused, see create_exclusive)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def create_exclusive(path: str | Path) -> int:
    """Create ``path`` for writing; FileExistsError if anything, a symbolic link included, is there."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary name, fsync and rename."""
    path = Path(path)
    tmp = temporary_name(path)
    fd = create_exclusive(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


# --- write-time records -----------------------------------------------------------------------

RECORD_MAX_BYTES = 4096
SHA256 = re.compile(r"[0-9a-f]{64}")


def record_path(shard: Path) -> Path:
    """Where the record of the shard at ``shard`` lives: ``.<name>.sha256`` beside it."""
    return shard.with_name(f".{shard.name}.sha256")


def write_record(shard: Path, info: ShardInfo) -> None:
    atomic_write_bytes(record_path(shard), (json.dumps(info.to_json()) + "\n").encode())


def read_record(shard: Path) -> ShardInfo | None:
    """The record written with the shard at ``shard``, or None when there is none that reads as one
    (absent, a link, not a file, malformed: a shard without a usable record is written again)."""
    try:
        with os.fdopen(open_regular(record_path(shard)), "rb") as f:
            text = f.read(RECORD_MAX_BYTES + 1)
        data = json.loads(text) if len(text) <= RECORD_MAX_BYTES else None
        info = ShardInfo(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None
    ints = (info.first_index, info.num_samples, info.bytes) if info else ()
    if not info or not all(type(v) is int and v >= 0 for v in ints) or not isinstance(info.sha256, str) \
            or not SHA256.fullmatch(info.sha256) or info.file != shard.name:
        return None
    return info


def _chunk_rows(row_bytes: int, n: int) -> int:
    return int(max(1, min(n, CHUNK_BYTES // max(1, row_bytes))))


def write_shard(path: str | Path, arrays: dict[str, np.ndarray], attrs: dict, compress: set[str] = frozenset()) -> ShardInfo:
    """Write ``arrays`` (each [n, ...]) as one shard; ``compress`` names the gzip-1 fields.

    ``attrs`` must hold ``first_index``; scalars and strings are stored as file attributes.
    Returns the shard's size and sha256, computed from the written file before it is renamed into
    place; the same values go into the shard's record beside it first (see ``read_record``).
    """
    path = Path(path)
    n = {len(a) for a in arrays.values()}
    if len(n) != 1:
        raise ValueError(f"fields disagree on the number of samples: {sorted(n)}")
    (n,) = n
    tmp = temporary_name(path)
    # "w-": HDF5 creates the file with O_CREAT | O_EXCL, which fails on anything already there, a
    # symbolic link included; the finally below must not remove what someone else put there
    f = h5py.File(tmp, "w-", track_order=False)
    try:
        with f:
            mine = os.fstat(f.id.get_vfd_handle())
            for key, value in attrs.items():
                f.attrs[key] = value
            for name, a in arrays.items():
                if not n:  # nothing to chunk
                    f.create_dataset(name, data=a, track_times=False)
                    continue
                chunks = (_chunk_rows(a[0].nbytes, n),) + a.shape[1:]
                if name in compress:
                    f.create_dataset(name, data=a, chunks=chunks, compression="gzip", compression_opts=1,
                                     track_times=False)
                else:
                    _write_chunks(f.create_dataset(name, a.shape, a.dtype, chunks=chunks, track_times=False), a)
            f.flush()
        # fsync waits on the disk while hashing reads the page cache: do both at once (both drop the GIL)
        with os.fdopen(os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as fh, \
                ThreadPoolExecutor(1) as pool:
            written = os.fstat(fh.fileno())
            if (written.st_dev, written.st_ino) != (mine.st_dev, mine.st_ino):
                raise FileExistsError(errno.EEXIST, "was replaced while being written", str(tmp))
            synced = pool.submit(os.fsync, fh.fileno())
            digest = _sha256(fh)
            synced.result()
            _drop_cache(fh.fileno())
        info = ShardInfo(path.name, int(attrs["first_index"]), n, written.st_size, digest)
        write_record(path, info)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return info


def _write_chunks(dataset: h5py.Dataset, a: np.ndarray) -> None:
    """Hand HDF5 whole chunks of ``a``: its ordinary write path first fills a chunk buffer with the
    fill value and copies the samples into it, and skipping both makes float32 shards markedly
    cheaper to write. The file bytes are the same: the last chunk is zero-padded here as HDF5 pads
    it (zero is the default fill value; a test compares both paths)."""
    a = np.ascontiguousarray(a)
    rows = dataset.chunks[0]
    for start in range(0, len(a), rows):
        block = a[start:start + rows]
        if len(block) < rows:
            block = np.concatenate([block, np.zeros((rows - len(block),) + a.shape[1:], a.dtype)])
        dataset.id.write_direct_chunk((start,) + (0,) * (a.ndim - 1), block)


def _drop_cache(fd: int) -> None:
    """Evict a finished shard's clean pages: a run writes far more than it rereads, and taking fresh
    page-cache memory for every shard costs more than reusing the pages just released."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def attrs_of(f: h5py.File) -> dict:
    """File attributes as plain Python values (str, int, ...)."""
    out = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def open_shard_file(path: str | Path) -> h5py.File:
    """The shard at ``path`` opened read-only, if it is a regular file: never through a symbolic link
    (OSError saying what it is instead)."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.ELOOP if stat.S_ISLNK(st.st_mode) else errno.EINVAL,
                      f"is {describe_file(st.st_mode)}, not a regular file", str(path))
    f = h5py.File(path, "r")
    opened = os.fstat(f.id.get_vfd_handle())
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        f.close()
        raise OSError(errno.EAGAIN, "was replaced while being opened", str(path))
    return f


def read_attrs(path: str | Path) -> dict | None:
    """The attributes of the shard at ``path``, or None when it does not open (truncated debris)."""
    try:
        with h5py.File(path, "r") as f:
            return attrs_of(f)
    except (OSError, ValueError):
        return None
