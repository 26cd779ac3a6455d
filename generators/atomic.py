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

try:  # the compiled D = 4 MIPS search (setup.py); optional, the numpy paths give the same bytes
    from lrbench.generators import _mips as _mips_c
except ImportError:  # not built: no C compiler at install, or a plain checkout
    _mips_c = None

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
    """Stack per-position channels [T] or [T, c] and append the positional channels: [T, C+2].

    Starts from a cached float32 template holding the positional channels (one memcpy, far cheaper
    than writing two strided columns) and fills the other channels straight in float32 (assignment
    rounds exactly as astype does), skipping a float64 copy.
    """
    T = len(columns[0])
    widths = [1 if c.ndim == 1 else c.shape[1] for c in columns]
    out = _template32(T, sum(widths)).copy()
    k = 0
    for c, w in zip(columns, widths):
        out[:, k:k + w] = c.reshape(T, w)
        k += w
    return out


@lru_cache(maxsize=64)
def _positional32(T: int) -> np.ndarray:
    pos = positional(T).astype(np.float32)
    pos.flags.writeable = False
    return pos


@lru_cache(maxsize=8)
def _template32(T: int, width: int) -> np.ndarray:
    """[T, width + 2] float32: zeros, then the positional channels (read-only, cached)."""
    out = np.zeros((T, width + 2), dtype=np.float32)
    out[:, width:] = _positional32(T)
    out.flags.writeable = False
    return out


def _signal(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal(n)
    x /= max(x.max(), -x.min())  # = max|x|, without an |x| temporary
    return x


def shift_offsets(length: int, num_shifts: int) -> np.ndarray:
    """The right shifts of the C output channels: s_j = floor(j * E / (C - 1)), E = floor(L - L/C).

    C points evenly spaced from 0 to E, floored: the paper's code spaces them so, which is
    floor(j L / C) whenever C divides L (L = 100, C = 8: E = 87, s = 0 12 24 37 49 62 74 87).
    E = L - ceil(L / C) in exact integers; s_0 = 0 when C = 1.
    """
    if num_shifts == 1:
        return np.zeros(1, dtype=np.int64)
    end = length - -(-length // num_shifts)
    return np.arange(num_shifts) * end // (num_shifts - 1)


def shift(rng: np.random.Generator, cfg: ShiftConfig) -> dict[str, np.ndarray]:
    """Uniformly spaced right shifts: y[i, j] = x[i - s_j], zero where i < s_j.

    L=4, C=2 (s = 0, 2):  x = [.5 -1 .2 .7]  ->  y[:, 0] = [.5 -1 .2 .7], y[:, 1] = [0 0 .5 -1]
    """
    L = cfg.length
    x = _signal(rng, L)
    x32 = x.astype(np.float32)  # the copies are exact, so shift the float32 values directly
    y = np.zeros((L, cfg.num_shifts), dtype=np.float32)  # (L, C)
    for j, s in enumerate(shift_offsets(L, cfg.num_shifts)):
        y[s:, j] = x32[: L - s]
    return {"inputs": _inputs(x32), "targets": y}


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
    n = len(x)
    inputs = _template32(n + M, 2).copy()  # value and marker channels start at zero: the padding
    inputs[:n, 0] = x
    inputs[positions, 1] = 1.0
    return {"inputs": inputs, "targets": x[positions, None].astype(np.float32)}


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
    """Rows divided by sqrt(((a_0² + a_1²) + a_2²) + ...), summed left to right as _mips_dot does."""
    return a / np.sqrt(_mips_dot(a, a))[..., None]


def causal_mips(q: np.ndarray, k: np.ndarray, block: int = 512) -> np.ndarray:
    """i' = argmax_{j<=i} <q_i, k_j>, ties to the smallest j, for every i (q, k: [L, D]).

    Exact. The score of a pair is the float64 inner product summed left to right,
    ((q_0 k_0 + q_1 k_1) + q_2 k_2) + ..., one rounding per operation, so equal keys always score
    equally and ties really go to the smallest j (a BLAS product does not promise that: its rounding
    depends on where a key sits in the matrix). Every path returns exactly these indices; the fast
    ones only skip keys that provably score strictly lower.

    - unit rows, D = 4, when the compiled module is built: a grid search with a certificate
      (generators/_mips.c);
    - unit rows, 2 <= D <= 4, L >= 512: a k-d tree gives each query its nearest keys, with a
      certificate that no other key scores as high (_mips_tree);
    - D = 1 with entries exactly ±1 (what mips draws for D = 1): the first key with the query's sign;
    - otherwise blocked brute force over j <= i, memory O(block · L): a BLAS product screens and the
      exact scores decide; inf/nan inputs are scored directly (argmax then picks the first nan).
    """
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if q.ndim != 2 or q.shape != k.shape:
        raise ValueError(f"q and k must both be [L, D] (got {q.shape} and {k.shape})")
    L, D = q.shape
    if L == 0 or D == 0:
        return np.zeros(L, dtype=np.int64)
    block = max(1, int(block))
    rows = np.arange(L)
    if not max(np.abs(q).max(), np.abs(k).max()) <= _MIPS_MAX_ABS:  # inf, nan, or could overflow
        return _mips_scores(q, k, rows, block)
    if D == 1 and (np.abs(q) == 1).all() and (np.abs(k) == 1).all():
        return _mips_signs(q[:, 0], k[:, 0])
    if D == 4 and _mips_c is not None and _unit_rows_ok(q) and _unit_rows_ok(k):
        out = np.empty(L, dtype=np.int64)
        _mips_c.search(np.ascontiguousarray(q), np.ascontiguousarray(k), out, L)
        return out
    if 2 <= D <= _MIPS_TREE_MAX_DIM and L >= _MIPS_TREE_MIN_LEN and _unit_rows_ok(q) and _unit_rows_ok(k):
        return _mips_tree(q, k, block)
    return _mips_screened(q, k, rows, block)


_MIPS_MAX_ABS = 1e150  # larger entries could overflow a product: no error bound, scored directly
_MIPS_TREE_MAX_DIM = 4  # k-d trees beat the brute force only in low dimension
_MIPS_TREE_MIN_LEN = 512
_MIPS_NEIGHBOURS = 8  # nearest keys per query; the best eligible key is almost always among them
_MIPS_NORM_TOL = 1e-8  # allowed |‖x‖² - 1| for the tree's distance -> inner product bound
_EPS = 2.0**-53  # float64 unit roundoff


def _mips_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Scores of paired rows [..., D], summed left to right (the definition used by causal_mips)."""
    s = a[..., 0] * b[..., 0]
    for d in range(1, a.shape[-1]):
        s = s + a[..., d] * b[..., d]
    return s


def _unit_rows_ok(x: np.ndarray) -> bool:
    return bool(np.abs(_mips_dot(x, x) - 1.0).max() <= _MIPS_NORM_TOL)


def _mips_blocks(rows: np.ndarray, block: int, budget: int):
    """Consecutive chunks of the ascending query indices `rows`: at most `block` rows and about
    `budget` scores [rows, i_max + 1] per chunk, so small chunks skip most of the causal triangle."""
    s = 0
    while s < len(rows):
        n = int(rows[min(len(rows), s + block) - 1]) + 1
        b = min(block, max(8, budget // n))
        yield rows[s : s + b]
        s += b


def _mips_scores(q: np.ndarray, k: np.ndarray, rows: np.ndarray, block: int) -> np.ndarray:
    """Brute force for the queries `rows` (ascending): every eligible score, numpy's argmax (first
    maximum). No BLAS, so also right for inf/nan and cheap for the few rows _mips_tree hands over."""
    D = q.shape[1]
    kT = np.ascontiguousarray(k[: int(rows[-1]) + 1].T) if len(rows) else k.T
    out = np.empty(len(rows), dtype=np.int64)
    s = 0
    with np.errstate(all="ignore"):
        for I in _mips_blocks(rows, block, 1 << 16):
            n = int(I[-1]) + 1
            qI = q[I]
            scores = np.multiply.outer(qI[:, 0], kT[0, :n])  # (b, n)
            term = np.empty_like(scores)
            for d in range(1, D):
                np.multiply.outer(qI[:, d], kT[d, :n], out=term)
                scores += term
            lo = int(I[0]) + 1  # keys before lo are eligible for every query of the chunk
            if lo < n:
                scores[:, lo:][np.arange(lo, n)[None, :] > I[:, None]] = -np.inf
            out[s : s + len(I)] = scores.argmax(axis=1)
            s += len(I)
    return out


def _mips_screened(q: np.ndarray, k: np.ndarray, rows: np.ndarray, block: int) -> np.ndarray:
    """Brute force for the queries `rows` (ascending): a BLAS product to screen, exact scores to decide.

    A BLAS score and the exact one of the same pair differ by at most 2·γ_D·‖q‖‖k‖ (γ_D = D·u/(1-D·u),
    any summation order), so the winner and all its ties lie within 4·γ_D·‖q‖·max‖k‖ of the row's BLAS
    maximum; only those keys are rescored.
    """
    D = q.shape[1]
    gamma = D * _EPS / (1 - D * _EPS)
    kmax = np.sqrt(_mips_dot(k, k).max())
    out = np.empty(len(rows), dtype=np.int64)
    s = 0
    for I in _mips_blocks(rows, block, block * 512):
        n = int(I[-1]) + 1
        scores = q[I] @ k[:n].T  # (b, n)
        lo = int(I[0]) + 1
        if lo < n:
            scores[:, lo:][np.arange(lo, n)[None, :] > I[:, None]] = -np.inf
        tol = 4.01 * gamma * np.sqrt(_mips_dot(q[I], q[I])) * kmax + 1e-290
        r, c = np.divmod(np.flatnonzero(scores >= (scores.max(axis=1) - tol)[:, None]), n)
        exact = _mips_dot(q[I[r]], k[c])
        # r is ascending and has every row: per row the best exact score, then its smallest c
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        top = np.repeat(np.maximum.reduceat(exact, starts), np.diff(np.r_[starts, len(r)]))
        out[s : s + len(I)] = np.minimum.reduceat(np.where(exact == top, c, n), starts)
        s += len(I)
    return out


def _mips_signs(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """D = 1, entries ±1: scores are exactly ±1, so i' is the first key equal to q_i if it is at or
    before i, else 0 (all eligible keys then score -1)."""
    L = len(q)
    first_pos = (np.flatnonzero(k > 0)[:1].tolist() or [L])[0]
    first_neg = (np.flatnonzero(k < 0)[:1].tolist() or [L])[0]
    j = np.where(q > 0, first_pos, first_neg)
    return np.where(j <= np.arange(L), j, 0).astype(np.int64)


def _mips_tree(q: np.ndarray, k: np.ndarray, block: int) -> np.ndarray:
    """The K nearest keys (Euclidean) of every query from a k-d tree over all keys, then a proof.

    A key not listed for query i is at computed distance >= d_K, so at true distance >= d_K - 1e-9,
    so <q_i, k> = (‖q_i‖² + ‖k‖² - ‖q_i - k‖²)/2 < bound_i below (rounding in all of this is ~1e-15,
    against margins of 1e-9 and 1e-12). If the best eligible listed key scores above bound_i, it beats
    every unlisted key, so the winner and all its ties are listed. Queries without such a proof, and
    the first L/8 (few eligible keys, so often none listed), take the brute force.
    """
    from scipy.spatial import cKDTree

    L = len(q)
    n0 = L // 8
    tree = cKDTree(k, leafsize=16, balanced_tree=False, compact_nodes=False)
    dist, near = tree.query(q[n0:], k=_MIPS_NEIGHBOURS)  # (L - n0, K), ascending distance
    rows = np.arange(n0, L)
    scores = _mips_dot(q[n0:, None, :], k[near])
    scores[near > rows[:, None]] = -np.inf  # keys after the query
    top = scores.max(axis=1)
    best = np.empty(L, dtype=np.int64)
    best[n0:] = np.where(scores == top[:, None], near, L).min(axis=1)
    dk = np.maximum(dist[:, -1] - 1e-9, 0.0)
    bound = (_mips_dot(q[n0:], q[n0:]) + _mips_dot(k, k).max() - dk * dk) / 2 + 1e-12
    brute = np.concatenate([np.arange(n0), rows[~(top > bound)]])
    best[brute] = _mips_scores(q, k, brute, block)
    return best


def mips(rng: np.random.Generator, cfg: MipsConfig) -> dict[str, np.ndarray]:
    """Maximum inner product search over the keys up to each position: y_i = v_{i'},
    i' = argmax_{j<=i} <q_i, k_j> (ties to the smallest j); q, k, v rows are unit vectors.

    D = 1: q = [1 1 -1], k = [-1 1 1], v = [a b c]  ->  i' = [0 1 0], y = [a b a]
    """
    L, D = cfg.length, cfg.dim
    x = rng.standard_normal((3, L, D))
    if D == 4 and _mips_c is not None:  # the same steps as below, compiled
        inputs, targets = np.empty((L, 14), np.float32), np.empty((L, 4), np.float32)
        _mips_c.sample(x, _positional32(L), inputs, targets, L)
        return {"inputs": inputs, "targets": targets}
    q, k, v = _unit_rows(x)  # each (L, D)
    y = v[causal_mips(q, k)]
    return {"inputs": _inputs(q, k, v), "targets": y.astype(np.float32)}


def context_shift(rng: np.random.Generator, cfg: AtomicConfig) -> dict[str, np.ndarray]:
    """The shift s is announced in the input: x' = (cos 2πs/L, sin 2πs/L, x), y_i = x'_{i-s};
    s is uniform in {0, ..., L-3} (the paper's code; its text says L-2).

    L = 5, s = 2, x = [.3 -.6 1]: x' = [cos sin .3 -.6 1], y = [0 0 cos sin .3]
    """
    L = cfg.length
    x = _signal(rng, L - 2)
    s = int(rng.integers(0, L - 2))  # uniform in {0, ..., L-3}, as the paper's code draws it
    xp = np.concatenate([[np.cos(2 * np.pi * s / L), np.sin(2 * np.pi * s / L)], x])
    y = np.zeros(L)
    y[s:] = xp[: L - s]
    return {"inputs": _inputs(xp), "targets": y[:, None].astype(np.float32)}


def solve_size(length: int) -> int:
    """N = the largest n with n² + 2n <= L, in exact integers.

    The paper's code takes the largest floating-point root of n² + 2n - L instead, which comes out
    one lower at some L where L + 1 is a perfect square (L = 63: 6.999... -> 6); lrbench keeps 7.
    """
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
