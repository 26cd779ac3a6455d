"""lrbench.metrics against independent computations (scikit-learn as the oracle, hand-written loops)."""

import warnings

import numpy as np
import pytest

from lrbench import metrics as M

sk = pytest.importorskip("sklearn.metrics")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tagging_batch(rng, n=37, t=23, c=4, ignore_frac=0.3):
    target = rng.integers(0, c, size=(n, t))
    target[rng.random((n, t)) < ignore_frac] = M.IGNORE_INDEX
    logits = rng.normal(size=(n, t, c)).astype(np.float32)
    # make half of the scored positions certainly right, so the numbers are not all near 1/c
    hit = np.nonzero((rng.random((n, t)) < 0.5) & (target >= 0))
    logits[hit + (target[hit],)] = 5.0
    return logits, target


def _valid(logits, target):
    keep = target != M.IGNORE_INDEX
    return logits.argmax(-1)[keep], target[keep]


def _random_splits(rng, n):
    """Cut range(n) into consecutive pieces of random sizes (some of size 1)."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, 6), replace=False))
    return np.split(np.arange(n), cuts)


# ------------------------------------------------------------------ exact metrics vs scikit-learn


@pytest.mark.parametrize("shape", [(50,), (16, 40, 3), (7, 128, 1)])
def test_r2_matches_sklearn(shape):
    rng = _rng(1)
    y = rng.normal(size=shape).astype(np.float32)
    pred = (0.7 * y + 0.3 * rng.normal(size=shape)).astype(np.float32)
    want = sk.r2_score(y.reshape(-1).astype(np.float64), pred.reshape(-1).astype(np.float64))
    assert M.r2(pred, y) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_r2_of_the_mean_predictor_is_zero_and_of_the_truth_is_one():
    y = _rng(2).normal(size=(5, 11, 2))
    assert M.r2(np.full_like(y, y.mean()), y) == pytest.approx(0.0, abs=1e-12)
    assert M.r2(y, y) == 1.0
    assert M.r2(np.zeros_like(y), y) == pytest.approx(1 - (y ** 2).sum() / ((y - y.mean()) ** 2).sum())


def test_token_accuracy_matches_sklearn_with_logits_and_ids():
    rng = _rng(3)
    logits, target = _tagging_batch(rng)
    p, t = _valid(logits, target)
    want = sk.accuracy_score(t, p)
    assert M.token_accuracy(logits, target) == pytest.approx(want, abs=0)
    assert M.token_accuracy(logits.argmax(-1), target) == pytest.approx(want, abs=0)
    assert 0.3 < want < 0.95  # the fixture is neither trivial nor hopeless


def test_macro_metrics_match_sklearn():
    rng = _rng(4)
    logits, target = _tagging_batch(rng, c=5)
    p, t = _valid(logits, target)
    assert M.macro_f1(logits, target) == pytest.approx(sk.f1_score(t, p, average="macro"), rel=1e-12)
    assert M.macro_accuracy(logits, target) == pytest.approx(sk.balanced_accuracy_score(t, p), rel=1e-12)


def test_macro_metrics_with_absent_classes():
    # class 3 is never true nor predicted (left out); class 2 is predicted but never true (F1 = 0,
    # no recall); with num_classes=5 the unseen classes 3 and 4 are still left out.
    target = np.array([[0, 0, 1, 1, 1, -100]])
    pred = np.array([[0, 2, 1, 1, 0, 3]])
    p, t = pred[target >= 0], target[target >= 0]
    f1 = sk.f1_score(t, p, average="macro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that y_pred has a class not in y_true
        bacc = sk.balanced_accuracy_score(t, p)
    assert M.macro_f1(pred, target) == pytest.approx(f1)
    assert M.macro_f1(pred, target, num_classes=5) == pytest.approx(f1)
    assert M.macro_accuracy(pred, target, num_classes=5) == pytest.approx(bacc)
    # by hand: F1_0 = 2/(2+2)... tp0=1, support0=2, predicted0=2 -> 0.5; class1 tp=2, s=3, p=2 -> 0.8; class2 -> 0
    assert M.macro_f1(pred, target) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert M.macro_accuracy(pred, target) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_per_class_f1_matches_sklearn():
    rng = _rng(5)
    logits, target = _tagging_batch(rng, c=3)
    p, t = _valid(logits, target)
    labels = np.union1d(p, t)
    want = dict(zip(labels.tolist(), sk.f1_score(t, p, labels=labels, average=None)))
    got = M.per_class_f1(logits, target)
    assert set(got) == set(want)
    for c in want:
        assert got[c] == pytest.approx(want[c], rel=1e-12)


def test_accuracy_by_group_matches_a_loop():
    rng = _rng(6)
    logits, target = _tagging_batch(rng, c=10)
    height = np.where(target >= 0, rng.integers(1, 6, size=target.shape), -1)
    got = M.accuracy_by(logits, target, height)
    pred = logits.argmax(-1)
    want = {}
    for h in range(1, 6):
        sel = (height == h) & (target >= 0)
        if sel.any():
            want[h] = float((pred[sel] == target[sel]).mean())
    assert got == pytest.approx(want)
    assert list(got) == sorted(want)
    # the group accuracies, weighted by their counts, add up to the token accuracy
    counts = {h: int(((height == h) & (target >= 0)).sum()) for h in want}
    total = sum(counts.values())
    assert sum(got[h] * counts[h] for h in got) / total == pytest.approx(M.token_accuracy(logits, target))


# ------------------------------------------------------------------ streaming == concatenation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_r2_equals_concatenation(seed):
    rng = _rng(seed)
    n = int(rng.integers(20, 60))
    y = (rng.normal(size=(n, 31, 2)) * rng.uniform(0.1, 3)).astype(np.float32)
    pred = (y + rng.normal(size=y.shape)).astype(np.float32)
    acc = M.R2Accumulator()
    for idx in _random_splits(rng, n):
        acc.update(pred[idx], y[idx])
    assert acc.count == y.size
    assert acc.result() == pytest.approx(M.r2(pred, y), rel=1e-12)


def test_streaming_r2_is_numerically_sound_with_a_large_offset():
    # Σy² - nȳ² in float64 cancels catastrophically here; mean/M2 merging must not.
    rng = _rng(7)
    y = 1e8 + rng.normal(size=(40, 500))
    pred = y + 0.5 * rng.normal(size=y.shape)
    want = 1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()  # two-pass on the whole set
    acc = M.R2Accumulator()
    for idx in _random_splits(rng, 40):
        acc.update(pred[idx], y[idx])
    assert acc.result() == pytest.approx(want, rel=1e-9)
    assert want == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_tagging_equals_concatenation(seed):
    rng = _rng(seed + 10)
    logits, target = _tagging_batch(rng, n=50, c=6)
    acc, conf, grp = M.AccuracyAccumulator(), M.ConfusionAccumulator(), M.GroupAccuracyAccumulator()
    groups = rng.integers(0, 4, size=target.shape)
    for idx in _random_splits(rng, 50):
        acc.update(logits[idx], target[idx])
        conf.update(logits[idx], target[idx])
        grp.update(logits[idx], target[idx], groups[idx])
    assert acc.result() == M.token_accuracy(logits, target)
    assert conf.macro_f1() == pytest.approx(M.macro_f1(logits, target), rel=1e-12)
    assert conf.macro_accuracy() == pytest.approx(M.macro_accuracy(logits, target), rel=1e-12)
    assert conf.accuracy() == pytest.approx(acc.result(), rel=1e-12)
    assert grp.result() == pytest.approx(M.accuracy_by(logits, target, groups))


def test_confusion_grows_and_merges():
    a = M.ConfusionAccumulator().update(np.array([0, 1]), np.array([0, 1]))
    b = M.ConfusionAccumulator().update(np.array([4, 2]), np.array([4, 3]))
    a.merge(b)
    want = np.zeros((5, 5), dtype=np.int64)
    for t, p in [(0, 0), (1, 1), (4, 4), (3, 2)]:
        want[t, p] += 1
    np.testing.assert_array_equal(a.matrix, want)


def test_merged_r2_accumulators_equal_one():
    rng = _rng(8)
    y, pred = rng.normal(size=(30, 9)), rng.normal(size=(30, 9))
    left, right = M.R2Accumulator().update(pred[:11], y[:11]), M.R2Accumulator().update(pred[11:], y[11:])
    assert left.merge(right).result() == pytest.approx(M.r2(pred, y), rel=1e-12)


def test_make_accumulator_gives_each_metric():
    rng = _rng(9)
    logits, target = _tagging_batch(rng)
    for name in ("token_accuracy", "macro_f1", "macro_accuracy"):
        acc = M.make_accumulator(name)
        acc.update(logits[:10], target[:10]).update(logits[10:], target[10:])
        assert acc.result() == pytest.approx(M.METRICS[name](logits, target), rel=1e-12)
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        M.make_accumulator("f2")


# ------------------------------------------------------------------ the paper's per-batch protocol


def _hand_r2(p, y):
    mse = np.mean((p.astype(np.float64) - y) ** 2)
    var = np.mean((y.astype(np.float64) - y.mean(dtype=np.float64)) ** 2)
    return 1 - mse / max(var, 1e-5)


@pytest.mark.parametrize("B", [1, 4, 7, 64])
def test_per_batch_r2_matches_a_hand_loop(B):
    rng = _rng(11)
    y = rng.normal(size=(30, 20, 2)).astype(np.float32)
    y[8:12] = 0.25  # one constant stretch: batches inside it hit the variance floor
    pred = (y + 0.3 * rng.normal(size=y.shape)).astype(np.float32)
    values, weights = [], []
    for s in range(0, 30, B):
        values.append(_hand_r2(pred[s:s + B], y[s:s + B]))
        weights.append(len(y[s:s + B]))
    want = np.average(values, weights=weights)
    assert M.r2(pred, y, per_batch=B) == pytest.approx(want, rel=1e-9)
    if B == 4:  # 30 = 7*4 + 2: the partial batch weighs 2/30, not 1/8
        assert want != pytest.approx(np.mean(values))


def test_per_batch_differs_from_exact_and_equals_it_with_one_batch():
    rng = _rng(12)
    y = rng.normal(size=(12, 50)) * np.linspace(0.1, 3, 12)[:, None]
    pred = y + rng.normal(size=y.shape)
    assert M.r2(pred, y, per_batch=12) == pytest.approx(M.r2(pred, y), rel=1e-12)
    assert M.r2(pred, y, per_batch=1000) == pytest.approx(M.r2(pred, y), rel=1e-12)
    assert abs(M.r2(pred, y, per_batch=2) - M.r2(pred, y)) > 1e-3


@pytest.mark.parametrize("B", [3, 8])
def test_per_batch_tagging_matches_sklearn_per_batch(B):
    rng = _rng(13)
    logits, target = _tagging_batch(rng, n=26, t=15, c=3)
    target[:3] = np.where(target[:3] == 2, 0, target[:3])  # class 2 absent from the first batch(es)
    f1s, baccs, accs, weights = [], [], [], []
    for s in range(0, 26, B):
        p, t = _valid(logits[s:s + B], target[s:s + B])
        f1s.append(sk.f1_score(t, p, average="macro"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            baccs.append(sk.balanced_accuracy_score(t, p))
        accs.append(sk.accuracy_score(t, p))
        weights.append(len(target[s:s + B]))
    assert M.macro_f1(logits, target, per_batch=B) == pytest.approx(np.average(f1s, weights=weights), rel=1e-12)
    assert M.macro_accuracy(logits, target, per_batch=B) == pytest.approx(np.average(baccs, weights=weights), rel=1e-12)
    assert M.token_accuracy(logits, target, per_batch=B) == pytest.approx(np.average(accs, weights=weights), rel=1e-12)


def test_per_batch_skips_batches_with_nothing_to_score():
    pred = np.array([[1, 1], [0, 0], [1, 0]])
    target = np.array([[1, 0], [-100, -100], [1, 1]])
    # batch 0: 1/2 correct, batch 1: empty (left out), batch 2: 1/2 correct
    assert M.token_accuracy(pred, target, per_batch=1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no evaluated"):
        M.token_accuracy(pred[1:2], target[1:2], per_batch=1)


def test_per_batch_rejects_bad_sizes():
    y = np.zeros((4, 3))
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match="per_batch must be a positive integer"):
            M.r2(y, y, per_batch=bad)


# ------------------------------------------------------------------ edge cases and clear errors


def test_constant_targets():
    y = np.full((4, 10), 0.3)
    pred = y + 0.01
    with pytest.raises(ValueError, match="constant.*undefined"):
        M.r2(pred, y)
    # the paper's protocol floors the variance: 1 - 1e-4 / 1e-5 = -9
    assert M.r2(pred, y, per_batch=2) == pytest.approx(-9.0, rel=1e-9)
    assert M.r2(y, y, per_batch=2) == 1.0


def test_all_positions_ignored_is_a_clear_error():
    target = np.full((3, 5), -100)
    logits = np.zeros((3, 5, 4))
    for fn in (M.token_accuracy, M.macro_f1, M.macro_accuracy, M.per_class_f1):
        with pytest.raises(ValueError, match="no evaluated position"):
            fn(logits, target)
    with pytest.raises(ValueError, match="no evaluated"):
        M.accuracy_by(logits, target, np.zeros((3, 5), dtype=int))
    with pytest.raises(ValueError, match="no evaluated element"):
        M.r2(np.zeros(3), np.zeros(3), mask=np.zeros(3, dtype=bool))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_predictions_are_a_clear_error(bad):
    rng = _rng(14)
    y = rng.normal(size=(4, 6)).astype(np.float32)
    pred = y.copy()
    pred[2, 3] = bad
    with pytest.raises(ValueError, match="predictions contain 1 NaN or inf"):
        M.r2(pred, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        M.r2(pred, y, per_batch=2)
    logits, target = _tagging_batch(rng, n=4, t=6, ignore_frac=0)
    logits[1, 2, 0] = bad
    with pytest.raises(ValueError, match="logits contain 1 NaN or inf"):
        M.token_accuracy(logits, target)
    target[1, 2] = -100  # NaN at an ignored position is padding, not an error
    assert 0 <= M.token_accuracy(logits, target) <= 1


def test_non_finite_targets_are_a_clear_error():
    y = np.zeros((2, 3))
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="targets contain 1 NaN"):
        M.r2(np.zeros((2, 3)), y)


def test_shape_mismatches_are_clear_errors():
    with pytest.raises(ValueError, match=r"pred shape \(4, 5\) does not match target shape \(4, 6\)"):
        M.r2(np.zeros((4, 5)), np.zeros((4, 6)))
    with pytest.raises(ValueError, match="does not match target shape"):
        M.r2(np.zeros((4, 5)), np.zeros((4, 6)), per_batch=2)
    with pytest.raises(ValueError, match="logits shape"):
        M.token_accuracy(np.zeros((4, 7, 3)), np.zeros((4, 6), dtype=int))
    with pytest.raises(ValueError, match="fits neither"):
        M.macro_f1(np.zeros((4,)), np.zeros((4, 6), dtype=int))
    with pytest.raises(ValueError, match="does not match target shape"):
        M.macro_f1(np.zeros((4, 5), dtype=int), np.zeros((4, 6), dtype=int), per_batch=2)
    with pytest.raises(ValueError, match="3 classes on the last axis; expected 4"):
        M.macro_f1(np.zeros((4, 6, 3)), np.zeros((4, 6), dtype=int), num_classes=4)
    with pytest.raises(ValueError, match="groups shape"):
        M.accuracy_by(np.zeros((4, 6), dtype=int), np.zeros((4, 6), dtype=int), np.zeros((4, 5), dtype=int))
    with pytest.raises(ValueError, match="mask shape"):
        M.r2(np.zeros((4, 6)), np.ones((4, 6)), mask=np.ones((4,), dtype=bool))


def test_class_id_validation():
    target = np.array([0, 1, 2])
    assert M.token_accuracy(np.array([0.0, 1.0, 1.0]), target) == pytest.approx(2 / 3)  # whole floats are ids
    with pytest.raises(ValueError, match="whole numbers"):
        M.token_accuracy(np.array([0.2, 1.0, 1.0]), target)
    with pytest.raises(ValueError, match="must be >= 0"):
        M.token_accuracy(np.array([0, -1, 2]), target)
    with pytest.raises(ValueError, match="must be < 3"):
        M.macro_f1(np.array([0, 3, 2]), target, num_classes=3)
    with pytest.raises(ValueError, match="only -100 marks an ignored position"):
        M.token_accuracy(np.array([0, 1, 2]), np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="integer class ids"):
        M.token_accuracy(np.array([0, 1, 2]), np.array([0.0, 1.0, 2.0]))


def test_mask_selects_the_evaluated_elements():
    rng = _rng(15)
    y, pred = rng.normal(size=(6, 10)), rng.normal(size=(6, 10))
    mask = rng.random((6, 10)) < 0.6
    assert M.r2(pred, y, mask=mask) == pytest.approx(M.r2(pred[mask], y[mask]), rel=1e-12)
    pred_nan = np.where(mask, pred, np.nan)  # NaN padding outside the mask is never looked at
    assert M.r2(pred_nan, y, mask=mask) == pytest.approx(M.r2(pred[mask], y[mask]), rel=1e-12)
    logits, target = _tagging_batch(rng, n=6, t=10)
    assert M.token_accuracy(logits, target, mask=mask) == pytest.approx(
        M.token_accuracy(logits[mask], target[mask]))


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    rng = _rng(16)
    y = rng.normal(size=(8, 12, 2)).astype(np.float32)
    pred = (y + rng.normal(size=y.shape)).astype(np.float32)
    tp = torch.from_numpy(pred).requires_grad_(True) * 1.0  # non-leaf tensor that carries grad
    assert M.r2(tp, torch.from_numpy(y)) == pytest.approx(M.r2(pred, y), rel=1e-12)
    assert M.r2(tp, torch.from_numpy(y), per_batch=3) == pytest.approx(M.r2(pred, y, per_batch=3), rel=1e-12)
    logits, target = _tagging_batch(rng, c=3)
    tl, tt = torch.from_numpy(logits), torch.from_numpy(target)
    assert M.macro_f1(tl, tt) == pytest.approx(M.macro_f1(logits, target), rel=1e-12)
    assert M.token_accuracy(tl.argmax(-1), tt) == M.token_accuracy(logits, target)
    bf = tl.to(torch.bfloat16)  # numpy has no bfloat16: converted through float32
    assert M.token_accuracy(bf, tt) == M.token_accuracy(bf.float().numpy(), target)
    acc = M.ConfusionAccumulator()
    acc.update(tl[:5], tt[:5]).update(tl[5:], tt[5:])
    assert acc.macro_accuracy() == pytest.approx(M.macro_accuracy(logits, target), rel=1e-12)


@pytest.mark.parametrize("metric,per_batch", [("r2", None), ("r2", 4), ("token_accuracy", None),
                                              ("macro_f1", None), ("macro_accuracy", 4)])
def test_accumulators_merge_across_ranks_exactly(metric, per_batch):
    rng = np.random.default_rng(0)
    if metric == "r2":
        target = rng.normal(size=(16, 10, 2))
        pred = target + rng.normal(size=target.shape) * 0.3
        kw = {}
    else:
        target = rng.integers(0, 3, size=(16, 20))
        target[:, :3] = -100
        pred = np.where(rng.random(target.shape) < 0.7, np.maximum(target, 0), rng.integers(0, 3, target.shape))
        kw = {"num_classes": 3}
    whole = M.make_accumulator(metric, per_batch, **kw)
    ranks = [M.make_accumulator(metric, per_batch, **kw) for _ in range(2)]
    for b in range(4):  # batches of 4 samples, alternating between two ranks
        sl = slice(4 * b, 4 * b + 4)
        whole.update(pred[sl], target[sl])
        ranks[b % 2].update(pred[sl], target[sl])
    merged = M.make_accumulator(metric, per_batch, **kw).merge_packed([r.pack() for r in ranks])
    assert merged.result() == pytest.approx(whole.result(), rel=1e-12, abs=1e-12)
    assert ranks[0].result() != pytest.approx(whole.result(), rel=1e-9)  # the merge did something
