"""The 11 atomic regression tasks of the DLR paper (§3.1), one pure function per task.

Each function takes a ``numpy.random.Generator`` and a frozen config and returns
``{"inputs": float32 [T, C_in], "targets": float32 [T_out, C_out]}``. The targets are aligned with
the *last* T_out positions of a model's output. Signals x ~ N(0, 1) are divided by max|x|; every input
ends with two positional channels cos(2πi/T), sin(2πi/T) over its full (padded) length T.

Arithmetic runs in float64 and is cast once at the end, so copied values (Shift, Reverse, Sort,
Select, ContextShift) are bit-identical between inputs and targets.

The fixed variants take their fixed structure as an argument (``positions`` for SelectFixed,
``matrix`` for SolveFixed); the registry derives it from the seed with its own key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MIN_LENGTH = 16


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an integer {rng} (got {value!r})")


@dataclass(frozen=True)
class AtomicConfig:
    """CumSum, CumMax, Reverse, Sort, ContextShift, Solve and SolveFixed need only the length."""

    length: int = 4096

    def __post_init__(self):
        _check_int("length", self.length, MIN_LENGTH)


@dataclass(frozen=True)
class ShiftConfig:
    length: int = 4096
    num_shifts: int = 8

    def __post_init__(self):
        _check_int("length", self.length, MIN_LENGTH)
        _check_int("num_shifts", self.num_shifts, 1, self.length)


@dataclass(frozen=True)
class SelectConfig:
    length: int = 4096
    num_selected: int = 32

    def __post_init__(self):
        _check_int("length", self.length, MIN_LENGTH)
        _check_int("num_selected", self.num_selected, 1)


@dataclass(frozen=True)
class MipsConfig:
    length: int = 4096
    dim: int = 4

    def __post_init__(self):
        _check_int("length", self.length, MIN_LENGTH)
        _check_int("dim", self.dim, 1, 1024)


@lru_cache(maxsize=64)
def positional(T: int) -> np.ndarray:
    """cos(2πi/T), sin(2πi/T) for i = 0..T-1, as [T, 2] float64 (read-only, cached)."""
    angle = 2.0 * np.pi * np.arange(T) / T
    pos = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    pos.flags.writeable = False
    return pos


def _inputs(*columns: np.ndarray) -> np.ndarray:
    """Stack per-position channels [T] or [T, c] and append the positional channels: [T, C+2]."""
    T = len(columns[0])
    cols = [c[:, None] if c.ndim == 1 else c for c in columns]
    return np.concatenate(cols + [positional(T)], axis=1).astype(np.float32)


def _signal(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal(n)
    return x / np.abs(x).max()


def shift_offsets(length: int, num_shifts: int) -> np.ndarray:
    """s_j = floor(j L / C), the right shifts of the C output channels."""
    return np.arange(num_shifts) * length // num_shifts


def shift(rng: np.random.Generator, cfg: ShiftConfig) -> dict[str, np.ndarray]:
    """Uniformly spaced right shifts: y[i, j] = x[i - s_j], zero where i < s_j.

    L=4, C=2 (s = 0, 2):  x = [.5 -1 .2 .7]  ->  y[:, 0] = [.5 -1 .2 .7], y[:, 1] = [0 0 .5 -1]
    """
    L = cfg.length
    x = _signal(rng, L)
    y = np.zeros((L, cfg.num_shifts))  # (L, C)
    for j, s in enumerate(shift_offsets(L, cfg.num_shifts)):
        y[s:, j] = x[: L - s]
    return {"inputs": _inputs(x), "targets": y.astype(np.float32)}


def cumsum(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """Scaled running sum: y_i = (i+1)^(-1/2) Σ_{j<=i} x_j.

    x = [1 -.5 .5]  ->  y = [1, .5/√2, 1/√3] = [1 .354 .577]
    """
    x = _signal(rng, cfg.length)
    y = np.cumsum(x) / np.sqrt(np.arange(1, cfg.length + 1))
    return {"inputs": _inputs(x), "targets": y[:, None].astype(np.float32)}


def cummax(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """Running maximum: y_i = max_{j<=i} x_j.

    x = [-.3 .2 -1 .9 .1]  ->  y = [-.3 .2 .2 .9 .9]
    """
    x = _signal(rng, cfg.length)
    y = np.maximum.accumulate(x)
    return {"inputs": _inputs(x), "targets": y[:, None].astype(np.float32)}


def reverse(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """Input x padded with L zeros (length 2L); the last L outputs are x reversed.

    x = [.1 .2 .3]  ->  inputs[:, 0] = [.1 .2 .3 0 0 0], y = [.3 .2 .1]
    """
    L = cfg.length
    x = _signal(rng, L)
    padded = np.concatenate([x, np.zeros(L)])
    return {"inputs": _inputs(padded), "targets": x[::-1, None].astype(np.float32)}


def sort(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """Input padded to 2L as in Reverse; y = x ordered by |x_i - x_0| ascending (stable), y_0 = x_0.

    x = [.1 .9 -.2 .3]  ->  distances [0 .8 .3 .2]  ->  y = [.1 .3 -.2 .9]
    """
    L = cfg.length
    x = _signal(rng, L)
    order = np.argsort(np.abs(x - x[0]), kind="stable")
    padded = np.concatenate([x, np.zeros(L)])
    return {"inputs": _inputs(padded), "targets": x[order, None].astype(np.float32)}


def _select_from(x: np.ndarray, positions: np.ndarray, M: int) -> dict[str, np.ndarray]:
    padded = np.concatenate([x, np.zeros(M)])  # (L + 2M,)
    marker = np.zeros(len(padded))
    marker[positions] = 1.0
    return {"inputs": _inputs(padded, marker), "targets": x[positions, None].astype(np.float32)}


def select_positions(rng: np.random.Generator, cfg: SelectConfig) -> np.ndarray:
    """M distinct sorted positions from 0 .. L+M-1."""
    n = cfg.length + cfg.num_selected
    return np.sort(rng.choice(n, size=cfg.num_selected, replace=False))


def select(rng: np.random.Generator, cfg: SelectConfig) -> dict[str, np.ndarray]:
    """x has L+M values, M of them marked; after M zeros of padding the model outputs them in order.

    L+M = 4, M = 2, marked {1, 3}: inputs = [(.4,0) (-.7,1) (.1,0) (.5,1) (0,0) (0,0)] + pos,
    y = [-.7 .5]
    """
    x = _signal(rng, cfg.length + cfg.num_selected)
    positions = select_positions(rng, cfg)
    return _select_from(x, positions, cfg.num_selected)


def select_fixed(rng: np.random.Generator, cfg: SelectConfig, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Select with the same marked positions in every sample (the registry derives them from the seed)."""
    x = _signal(rng, cfg.length + cfg.num_selected)
    return _select_from(x, positions, cfg.num_selected)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def causal_mips(q: np.ndarray, k: np.ndarray, block: int = 512) -> np.ndarray:
    """i' = argmax_{j<=i} <q_i, k_j>, ties to the smallest j, for every i. Exact, O(L² D) work in
    blocks of queries so memory stays O(block · L)."""
    L = len(q)
    best = np.empty(L, dtype=np.int64)
    for i0 in range(0, L, block):
        i1 = min(L, i0 + block)
        scores = q[i0:i1] @ k[:i1].T  # (b, i1)
        rows = np.arange(i0, i1)
        scores[np.arange(i1)[None, :] > rows[:, None]] = -np.inf  # keys right of the query
        best[i0:i1] = scores.argmax(axis=1)  # argmax returns the first maximum
    return best


def mips(rng: np.random.Generator, cfg: MipsConfig) -> dict[str, np.ndarray]:
    """Maximum inner product search over the keys up to each position: y_i = v_{i'},
    i' = argmax_{j<=i} <q_i, k_j> (ties to the smallest j); q, k, v rows are unit vectors.

    D = 1: q = [1 1 -1], k = [-1 1 1], v = [a b c]  ->  i' = [0 1 0], y = [a b a]
    """
    L, D = cfg.length, cfg.dim
    q, k, v = _unit_rows(rng.standard_normal((3, L, D)))  # each (L, D)
    y = v[causal_mips(q, k)]
    return {"inputs": _inputs(q, k, v), "targets": y.astype(np.float32)}


def context_shift(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """The shift s is announced in the input: x' = (cos 2πs/L, sin 2πs/L, x), y_i = x'_{i-s}.

    L = 5, s = 2, x = [.3 -.6 1]: x' = [cos sin .3 -.6 1], y = [0 0 cos sin .3]
    """
    L = cfg.length
    x = _signal(rng, L - 2)
    s = int(rng.integers(0, L - 1))  # uniform in {0, ..., L-2}
    xp = np.concatenate([[np.cos(2 * np.pi * s / L), np.sin(2 * np.pi * s / L)], x])
    y = np.zeros(L)
    y[s:] = xp[: L - s]
    return {"inputs": _inputs(xp), "targets": y[:, None].astype(np.float32)}


def solve_size(length: int) -> int:
    """N = the largest n with n² + 2n <= L (exact integer arithmetic)."""
    n = 0
    while (n + 1) ** 2 + 2 * (n + 1) <= length:
        n += 1
    return n


def haar_orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Haar-distributed orthogonal matrix: QR of a Gaussian matrix with R's diagonal made positive."""
    z = rng.standard_normal((n, n))
    q, r = np.linalg.qr(z)
    return q * np.sign(np.diag(r))


def _solve_from(rng: np.random.Generator, A: np.ndarray, length: int) -> dict[str, np.ndarray]:
    N = len(A)
    X = _unit_rows(rng.standard_normal(N))
    B = A @ X  # (N,)
    x = np.zeros(length)
    x[: N * (N + 1)] = np.concatenate([A, B[:, None]], axis=1).ravel()  # a_1, b_1, ..., a_N, b_N
    return {"inputs": _inputs(x), "targets": X[:, None].astype(np.float32)}


def solve(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """Read an orthogonal system A X = B row by row (a_i then b_i) and output X.

    N = 2 (L >= 8): A = [[0 1] [1 0]], X = [.6 .8]  ->  x = [0 1 .8 1 0 .6 0 ...], y = [.6 .8]
    """
    A = haar_orthogonal(rng, solve_size(cfg.length))
    return _solve_from(rng, A, cfg.length)


def solve_fixed(rng: np.random.Generator, cfg: AtomicConfig, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Solve with the same A in every sample (the registry derives it from the seed); X varies."""
    return _solve_from(rng, matrix, cfg.length)
