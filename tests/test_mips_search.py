"""causal_mips (the MIPS target search) against brute force written here, on random and adversarial inputs.

The score of (i, j) is the float64 inner product summed left to right, ((q_0 k_0 + q_1 k_1) + ...), so
equal keys score equally and ties go to the smallest j. Every path of causal_mips (k-d tree, ±1 signs,
BLAS screening, direct scores, and the compiled grid search of generators/_mips.c for D = 4) must
return exactly the indices of that definition. Every test runs three times: with the compiled module
(when it is built) screening with AVX2 + FMA (where the CPU has them), with its portable screens, and
with the numpy paths alone.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrbench
from lrbench.generators import atomic
from lrbench.seeding import sample_rng

COMPILED = atomic._mips_c  # None when the extension was not built


@pytest.fixture(autouse=True, params=["compiled", "compiled-portable", "numpy"])
def impl(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setattr(atomic, "_mips_c", None)
        yield request.param
        return
    if COMPILED is None:
        pytest.skip("generators/_mips.c is not built")
    simd = COMPILED.simd(request.param == "compiled")
    if request.param == "compiled" and not simd:
        pytest.skip("this CPU has no AVX2 + FMA: the compiled path is the portable one")
    try:
        yield request.param
    finally:
        COMPILED.simd(True)


def reference(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Masked [rows, i+1] score matrices in blocks; numpy's argmax takes the first maximum."""
    L, D = q.shape
    out = np.empty(L, dtype=np.int64)
    for i0 in range(0, L, 128):
        i1 = min(L, i0 + 128)
        s = q[i0:i1, None, 0] * k[None, :i1, 0]
        for d in range(1, D):
            s = s + q[i0:i1, None, d] * k[None, :i1, d]
        s[np.arange(i1)[None, :] > np.arange(i0, i1)[:, None]] = -np.inf
        out[i0:i1] = s.argmax(axis=1)
    return out


def reference_loops(q: np.ndarray, k: np.ndarray) -> list[int]:
    """The definition with Python floats: strict > keeps the first (smallest j) of tied maxima."""
    out = []
    for i in range(len(q)):
        best_j, best_s = 0, None
        for j in range(i + 1):
            s = 0.0
            for a in range(q.shape[1]):
                s = s + float(q[i, a]) * float(k[j, a])
            if best_s is None or s > best_s:
                best_j, best_s = j, s
        out.append(best_j)
    return out


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def unit_left_to_right(x: np.ndarray) -> np.ndarray:
    """The generator's normalisation: each row over sqrt(((x_0² + x_1²) + x_2²) + ...)."""
    n2 = x[..., 0] * x[..., 0]
    for d in range(1, x.shape[-1]):
        n2 = n2 + x[..., d] * x[..., d]
    return x / np.sqrt(n2)[..., None]


def check(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    q0, k0 = q.copy(), k.copy()
    got = atomic.causal_mips(q, k)
    want = reference(q, k)
    assert got.dtype == np.int64 and got.shape == (len(q),)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(q, q0)  # inputs untouched
    np.testing.assert_array_equal(k, k0)
    return got


def test_reference_matches_plain_loops():
    rng = np.random.default_rng(0)
    for L, D in [(1, 1), (5, 1), (40, 2), (60, 4), (30, 7)]:
        q, k = unit(rng.standard_normal((2, L, D)))
        assert reference(q, k).tolist() == reference_loops(q, k)
    # exact ties: D = 1 with ±1 entries
    q, k = rng.choice([-1.0, 1.0], size=(2, 50, 1))
    assert reference(q, k).tolist() == reference_loops(q, k)


CASES = [(L, D) for L in (1, 2, 3, 16, 17, 100, 1000, 4096) for D in (1, 2, 4, 8, 64) if not (L == 4096 and D == 64)]


@pytest.mark.parametrize("L,D", CASES)
def test_random_unit_vectors(L, D):
    rng = np.random.default_rng(1000 * L + D)
    q, k = unit(rng.standard_normal((2, L, D)))
    check(q, k)


@pytest.mark.parametrize("D", [2, 3, 4])
def test_tree_path_many_seeds(D):
    # _mips_tree directly (causal_mips routes unit rows with 2 <= D <= 4 and L >= 512 there)
    for seed in range(12):
        rng = np.random.default_rng(seed)
        L = int(rng.integers(512, 1600))
        q, k = unit(rng.standard_normal((2, L, D)))
        np.testing.assert_array_equal(atomic._mips_tree(q, k, 512), reference(q, k))


def test_brute_paths_agree():
    rng = np.random.default_rng(5)
    for L, D in [(700, 3), (300, 16), (129, 1)]:
        q, k = rng.standard_normal((2, L, D))  # not unit: BLAS screening must still be exact
        rows = np.arange(L)
        want = reference(q, k)
        for block in (1, 7, 512):
            np.testing.assert_array_equal(atomic._mips_screened(q, k, rows, block), want)
            np.testing.assert_array_equal(atomic._mips_scores(q, k, rows, block), want)


@pytest.mark.parametrize("L", [1, 2, 17, 4096])
def test_d1_signs_exact_ties(L):
    rng = np.random.default_rng(L)
    q, k = rng.choice([-1.0, 1.0], size=(2, L, 1))
    got = check(q, k)
    # the definition in words: first key with the query's sign, else 0
    i = np.arange(L)
    for sign in (1.0, -1.0):
        first = np.flatnonzero(k[:, 0] == sign)
        f = first[0] if len(first) else L
        expect = np.where(f <= i, f, 0)
        np.testing.assert_array_equal(got[q[:, 0] == sign], expect[q[:, 0] == sign])


def test_d1_one_sign_only():
    L = 300
    q = np.where(np.arange(L)[:, None] % 3 == 0, 1.0, -1.0)
    for kval in (1.0, -1.0):
        k = np.full((L, 1), kval)
        got = check(q, k)
        # every key scores the same for a given query: the answer is always 0
        np.testing.assert_array_equal(got, np.zeros(L))


def test_d1_not_unit():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((500, 1))
    k = rng.choice([-2.0, -0.5, 0.0, 0.5, 2.0], size=(500, 1))  # many exact ties
    check(q, k)


@pytest.mark.parametrize("D", [2, 4])
def test_duplicated_keys(D):
    rng = np.random.default_rng(D)
    pool = unit(rng.standard_normal((40, D)))
    L = 4096
    k = pool[rng.integers(0, 40, L)]  # every key has many exact copies
    q = unit(rng.standard_normal((L, D)))
    got = check(q, k)
    assert (got == np.array([np.flatnonzero((k[: i + 1] == k[got[i]]).all(1))[0] for i in range(L)])).all()
    q2 = pool[rng.integers(0, 40, L)]  # queries equal to keys as well
    check(q2, k)


def test_keys_in_pairs():
    # every key twice: the two copies of the winner are often both among a query's nearest keys,
    # with the rest farther away, so the tie is decided on the fast path and must go to the first copy
    rng = np.random.default_rng(17)
    for D, L in [(4, 4096), (3, 2000), (2, 1024)]:
        k = unit(rng.standard_normal((L // 2, D)))[rng.permutation(np.arange(L) // 2)]
        q = unit(rng.standard_normal((L, D)))
        got = check(q, k)
        twin = np.array([np.flatnonzero((k == k[g]).all(1)) for g in got])  # both copies, ascending
        assert (got == twin[:, 0]).all() and (twin[:, 1] <= np.arange(L)).sum() > L // 4


def test_identical_rows():
    rng = np.random.default_rng(11)
    v = unit(rng.standard_normal(4))
    L = 2000
    k = np.tile(v, (L, 1))
    q = unit(rng.standard_normal((L, 4)))
    np.testing.assert_array_equal(check(q, k), np.zeros(L))
    check(np.tile(v, (L, 1)), unit(rng.standard_normal((L, 4))))


def test_exact_ties_between_different_keys():
    # q = e_0 scores k by its first coordinate exactly; first coordinates from a small set
    rng = np.random.default_rng(12)
    L = 3000
    a = rng.choice([-0.5, 0.25, 0.5, 0.75], size=L)
    rest = unit(rng.standard_normal((L, 3))) * np.sqrt(1 - a * a)[:, None]
    k = np.concatenate([a[:, None], rest], axis=1)
    q = np.zeros((L, 4))
    q[:, 0] = 1.0
    assert atomic._unit_rows_ok(k)  # so causal_mips takes the tree path
    got = check(q, k)
    first = {v: int(np.flatnonzero(a == v)[0]) for v in np.unique(a)}
    for i in (0, 10, 100, L - 1):
        assert a[got[i]] == a[: i + 1].max() and got[i] == first[a[: i + 1].max()]


def test_near_ties_one_ulp():
    # keys one ulp apart: the winner is decided by the last bit of the exact-order scores
    rng = np.random.default_rng(13)
    L, D = 1500, 4
    base = unit(rng.standard_normal((30, D)))
    k = base[rng.integers(0, 30, L)]
    k = k + rng.integers(-1, 2, size=k.shape) * np.spacing(k)
    q = base[rng.integers(0, 30, L)]
    check(q, k)
    check(unit(rng.standard_normal((L, D))), k)


def test_duplicated_keys_not_unit():
    # screened brute force: BLAS may round copies of a key differently, the rescoring must not care
    rng = np.random.default_rng(16)
    pool = rng.standard_normal((25, 4)) * 2.0
    for L in (700, 2500):
        check(rng.standard_normal((L, 4)), pool[rng.integers(0, 25, L)])
        check(pool[rng.integers(0, 25, L)], pool[rng.integers(0, 25, L)])


def test_not_unit_and_nonfinite_inputs():
    rng = np.random.default_rng(14)
    q, k = rng.standard_normal((2, 800, 4)) * 3.0
    check(q, k)  # not unit: screened brute force
    q[5, 1] = np.nan
    k[17, 2] = np.inf
    got = atomic.causal_mips(q, k)
    np.testing.assert_array_equal(got, reference(q, k))
    assert ((0 <= got) & (got <= np.arange(800))).all()


def test_shapes():
    assert atomic.causal_mips(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)
    with pytest.raises(ValueError):
        atomic.causal_mips(np.zeros((3, 4)), np.zeros((3, 5)))


@pytest.mark.parametrize("L,D", [(16, 4), (100, 1), (333, 2), (4096, 4)])
def test_task_targets(L, D):
    task = lrbench.get_task("mips", length=L, dim=D)
    for index, split in [(0, "train"), (7, "test")]:
        sample = task.sample(index, split=split, seed=3)
        rng = sample_rng(task.id, 3, split, index)  # the generator's own draws, in float64
        q, k, v = unit_left_to_right(rng.standard_normal((3, L, D)))
        want = reference(q, k)
        np.testing.assert_array_equal(sample["targets"], v[want].astype(np.float32))
        x = sample["inputs"]
        np.testing.assert_array_equal(x[:, :D], q.astype(np.float32))
        np.testing.assert_array_equal(x[:, D : 2 * D], k.astype(np.float32))
        np.testing.assert_array_equal(x[:, 2 * D : 3 * D], v.astype(np.float32))


def test_same_indices_as_blas_brute_force_on_generator_draws():
    # the previous implementation (one BLAS product per block, argmax) on random draws:
    # near-ties at the last bit do not occur there, so the datasets do not change
    rng = np.random.default_rng(15)
    for D in (4, 2):
        for _ in range(3):
            q, k, _v = atomic._unit_rows(rng.standard_normal((3, 4096, D)))
            old = np.empty(4096, dtype=np.int64)
            for i0 in range(0, 4096, 512):
                s = q[i0 : i0 + 512] @ k[: i0 + 512].T
                s[np.arange(i0 + 512)[None, :] > np.arange(i0, i0 + 512)[:, None]] = -np.inf
                old[i0 : i0 + 512] = s.argmax(axis=1)
            np.testing.assert_array_equal(atomic.causal_mips(q, k), old)


def test_keys_on_cell_boundaries():
    # unit vectors with coordinates 0, ±1/2 and ±1 lie exactly on the borders of the compiled grid's
    # cells (and the k-d tree's splits); with many copies, ties must still go to the first copy
    rng = np.random.default_rng(18)
    axes = np.concatenate([np.eye(4), -np.eye(4)])
    halves = np.array([[a, b, c, d] for a in (-.5, .5) for b in (-.5, .5) for c in (-.5, .5) for d in (-.5, .5)])
    pool = np.concatenate([axes, halves])
    for L in (16, 333, 4096):
        k = pool[rng.integers(0, len(pool), L)]
        check(unit(rng.standard_normal((L, 4))), k)
        check(pool[rng.integers(0, len(pool), L)], k)
        mixed = np.where(rng.random((L, 1)) < 0.5, k, unit(rng.standard_normal((L, 4))))
        check(unit(rng.standard_normal((L, 4))), mixed)


@pytest.mark.parametrize("L", [5000, 12000])
def test_long_sequences(L):
    # a finer grid and, at 12000, the few late queries whose nearest key is far away
    rng = np.random.default_rng(L)
    q, k = unit(rng.standard_normal((2, L, 4)))
    check(q, k)
