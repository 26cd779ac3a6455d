"""The paper's metrics: R², token accuracy, macro-F1, macro accuracy (DLR paper §3.3, §3.4), and
accuracy, the token accuracy of a classification task (one class per sample: LRA's tasks).

Two protocols, chosen with ``per_batch``:

* ``per_batch=None`` (default): the metric over the whole evaluated set, exactly. The streaming
  accumulators (``R2Accumulator``, ``AccuracyAccumulator``, ``ConfusionAccumulator``) give the same
  number batch by batch as the function gives on the concatenation.
* ``per_batch=B``: the paper's protocol. The first axis is the sample axis; the metric is computed on
  each run of B consecutive samples and the per-batch values are averaged. R² per batch is
  ``1 - MSE / max(Var, 1e-5)`` with Var the mean squared deviation from the batch's scalar mean;
  macro metrics use the classes present in that batch. A last, shorter batch is scored like the
  others and weighted by its number of samples (so every sample weighs the same; with full batches
  this is the plain mean). A batch with no evaluated position is left out of the average.

Inputs: ``pred`` holds values (regression), or logits ``[..., C]`` or integer class ids (tagging): a
``pred`` with one more axis than ``target`` is logits and is reduced by argmax (ties go to the lowest
class), one with the same shape holds class ids. In tagging targets, ``-100`` marks ignored
positions. Arrays may be numpy arrays or torch tensors (converted with ``.detach().cpu()``; torch is
never imported here). Every function takes ``mask`` (boolean, target-shaped, True = evaluated) for
padded data.

Errors (``ValueError``, one sentence saying what is wrong): shape mismatches, NaN or inf at an
evaluated position (predictions and targets; values at ignored or masked positions are not looked
at, so NaN padding is fine), class ids out of range, and an empty evaluation: when every position is
ignored the metric is undefined, and we raise rather than return nan so that a broken mask cannot
pass silently. Exact R² on targets with zero variance is undefined too and raises; the per-batch
protocol floors the variance instead, as the paper did.

Across processes (DDP ranks, workers) an accumulator travels as numbers: ``acc.pack()`` is its state
as a float64 vector, and ``acc.merge_packed([state_0, state_1, ...])`` makes it the merge of those
states, equal to one accumulator that saw every rank's batches.

    >>> import numpy as np
    >>> y = np.array([[0.0, 1.0, 2.0, 3.0]])
    >>> round(r2(y + 0.5, y), 3)       # 1 - 4*0.25 / 5
    0.8
    >>> token_accuracy(np.array([1, 2, 0]), np.array([1, -100, 2]))
    0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

IGNORE_INDEX = -100
R2_VARIANCE_FLOOR = 1e-5
_CHUNK = 1 << 22  # elements per float64 pass in R²: bounds temporary memory on big arrays

__all__ = [
    "IGNORE_INDEX", "R2_VARIANCE_FLOOR", "METRICS",
    "r2", "token_accuracy", "accuracy", "macro_f1", "macro_accuracy", "accuracy_by", "per_class_f1",
    "R2Accumulator", "AccuracyAccumulator", "ConfusionAccumulator", "GroupAccuracyAccumulator",
    "BatchMeanAccumulator", "make_accumulator", "to_numpy",
]


# ---------------------------------------------------------------------------------------------
# input handling


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view of ``x``; torch tensors go through ``.detach().cpu()`` (bfloat16 -> float32)."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        t = x.detach()
        if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            t = t.float()
        return np.asarray(t.cpu())
    return np.asarray(x)


def _check_finite(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "fc":
        return
    finite = np.isfinite(a)
    if finite.all():
        return
    flat = finite.reshape(-1)
    first = int(np.argmin(flat))
    bad = int(flat.size - np.count_nonzero(flat))
    raise ValueError(
        f"{what} contain {bad} NaN or inf value{'s' if bad > 1 else ''} at evaluated positions "
        f"(the first is {float(a.reshape(-1)[first])}); metrics need finite values"
    )


def _check_numeric(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be a numeric array (got dtype {a.dtype})")


def _as_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = to_numpy(mask)
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} does not match target shape {shape}")
    if m.dtype != np.bool_:
        raise ValueError(f"mask must be boolean (got dtype {m.dtype})")
    return m


def _check_batch_size(per_batch: Any) -> int:
    if isinstance(per_batch, bool) or not isinstance(per_batch, (int, np.integer)) or per_batch < 1:
        raise ValueError(f"per_batch must be a positive integer number of samples (got {per_batch!r})")
    return int(per_batch)


def _regression_arrays(pred, target, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated (pred, target) elements as flat arrays, validated."""
    p, t = to_numpy(pred), to_numpy(target)
    if p.shape != t.shape:
        raise ValueError(
            f"pred shape {p.shape} does not match target shape {t.shape}; "
            "regression predictions must have exactly the target's shape"
        )
    _check_numeric(p, "pred")
    _check_numeric(t, "target")
    m = _as_mask(mask, t.shape)
    if m is not None:
        p, t = p[m], t[m]
    _check_finite(p, "predictions")
    _check_finite(t, "targets")
    return p.reshape(-1), t.reshape(-1)


def _tagging_arrays(pred, target, mask=None, ignore_index: int | None = IGNORE_INDEX,
                    num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated (predicted class, target class) pairs as flat int64 arrays, validated."""
    p, t = to_numpy(pred), to_numpy(target)
    if t.dtype.kind not in "biu":
        raise ValueError(f"tagging targets must be integer class ids (got dtype {t.dtype})")
    _check_numeric(p, "pred")
    if p.ndim == t.ndim + 1:
        if p.shape[:-1] != t.shape:
            raise ValueError(
                f"logits shape {p.shape} does not match target shape {t.shape}; "
                f"logits must be {t.shape + ('C',)}"
            )
        if p.shape[-1] == 0:
            raise ValueError("logits have an empty class axis")
        if num_classes is not None and p.shape[-1] != num_classes:
            raise ValueError(f"logits have {p.shape[-1]} classes on the last axis; expected {num_classes}")
        logits = True
    elif p.ndim == t.ndim:
        if p.shape != t.shape:
            raise ValueError(
                f"pred shape {p.shape} does not match target shape {t.shape}; class-id predictions "
                f"must have the target's shape, logits one more axis {t.shape + ('C',)}"
            )
        logits = False
    else:
        raise ValueError(
            f"pred shape {p.shape} fits neither class ids {t.shape} nor logits {t.shape + ('C',)} "
            f"for target shape {t.shape}"
        )

    valid = np.ones(t.shape, dtype=bool) if ignore_index is None else (t != ignore_index)
    m = _as_mask(mask, t.shape)
    if m is not None:
        valid &= m
    everything = bool(valid.all())
    tv = (t.reshape(-1) if everything else t[valid]).astype(np.int64, copy=False)
    if logits:
        lv = p.reshape(-1, p.shape[-1]) if everything else p[valid]  # (n, C)
        _check_finite(lv, "logits")
        ids = lv.argmax(axis=-1).astype(np.int64, copy=False)
    else:
        pv = p.reshape(-1) if everything else p[valid]
        if pv.dtype.kind == "f":
            _check_finite(pv, "predictions")
            if not np.array_equal(pv, np.round(pv)):
                raise ValueError(
                    "class-id predictions must be whole numbers (got fractional values); "
                    f"pass logits with a class axis {t.shape + ('C',)} instead"
                )
        ids = pv.astype(np.int64)
        if ids.size and ids.min() < 0:
            raise ValueError(f"predicted class ids must be >= 0 (got {int(ids.min())})")
        if num_classes is not None and ids.size and ids.max() >= num_classes:
            raise ValueError(f"predicted class ids must be < {num_classes} (got {int(ids.max())})")
    if tv.size and tv.min() < 0:
        raise ValueError(
            f"targets hold {int(tv.min())} at an evaluated position; class ids are >= 0 and only "
            f"{ignore_index} marks an ignored position"
        )
    if num_classes is not None and tv.size and tv.max() >= num_classes:
        raise ValueError(f"target class ids must be < {num_classes} (got {int(tv.max())})")
    return ids, tv


def _empty_error(what: str = "position") -> ValueError:
    return ValueError(
        f"no evaluated {what}: every target is ignored (-100) or masked out, so the metric is undefined"
    )


# ---------------------------------------------------------------------------------------------
# streaming accumulators (exact over everything they have seen)


class R2Accumulator:
    """Exact R² over a stream: float64 running mean and M2 of the targets (Chan et al. merging)
    plus the residual sum of squares, so the result equals R² on the concatenation."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0  # Σ (y - ȳ)²
        self.sse = 0.0  # Σ (ŷ - y)²

    def _merge_moments(self, n: int, mean: float, m2: float) -> None:
        if n == 0:
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def update(self, pred, target, mask=None) -> "R2Accumulator":
        p, t = _regression_arrays(pred, target, mask)
        for s in range(0, t.size, _CHUNK):
            tc = t[s:s + _CHUNK].astype(np.float64)
            pc = p[s:s + _CHUNK].astype(np.float64)
            mean = float(tc.mean())
            self._merge_moments(tc.size, mean, float(np.square(tc - mean).sum()))
            self.sse += float(np.square(pc - tc).sum())
        return self

    def merge(self, other: "R2Accumulator") -> "R2Accumulator":
        """Fold in another accumulator (e.g. one per worker or rank)."""
        self._merge_moments(other.count, other.mean, other.m2)
        self.sse += other.sse
        return self

    def pack(self) -> np.ndarray:
        """The state as float64 numbers, to be sent between processes (see ``merge_packed``)."""
        return np.array([self.count, self.mean, self.m2, self.sse], dtype=np.float64)

    def merge_packed(self, states: list[np.ndarray]) -> "R2Accumulator":
        """Become the merge of packed states (one per rank, in rank order)."""
        self.count, self.mean, self.m2, self.sse = 0, 0.0, 0.0, 0.0
        for s in states:
            part = R2Accumulator()
            part.count, part.mean, part.m2, part.sse = int(s[0]), float(s[1]), float(s[2]), float(s[3])
            self.merge(part)
        return self

    def result(self) -> float:
        if self.count == 0:
            raise _empty_error("element")
        if self.m2 == 0.0:
            raise ValueError(
                f"targets are constant over all {self.count} evaluated elements, so R² is undefined "
                "(zero variance); the per-batch protocol (per_batch=B) floors the variance at 1e-5"
            )
        return 1.0 - self.sse / self.m2


class AccuracyAccumulator:
    """Token accuracy over a stream: correct / evaluated positions."""

    def __init__(self, ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> None:
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.correct = 0
        self.count = 0

    def update(self, pred, target, mask=None) -> "AccuracyAccumulator":
        ids, tv = _tagging_arrays(pred, target, mask, self.ignore_index, self.num_classes)
        self.correct += int(np.count_nonzero(ids == tv))
        self.count += int(tv.size)
        return self

    def merge(self, other: "AccuracyAccumulator") -> "AccuracyAccumulator":
        self.correct += other.correct
        self.count += other.count
        return self

    def pack(self) -> np.ndarray:
        return np.array([self.correct, self.count], dtype=np.float64)

    def merge_packed(self, states: list[np.ndarray]) -> "AccuracyAccumulator":
        self.correct, self.count = (int(sum(s[i] for s in states)) for i in (0, 1))
        return self

    def result(self) -> float:
        if self.count == 0:
            raise _empty_error()
        return self.correct / self.count


class ConfusionAccumulator:
    """Confusion matrix over a stream (rows = target class, columns = predicted class).

    ``num_classes=None`` grows the matrix to the largest class id seen. Classes with neither support
    nor predictions are left out of the macro means; macro accuracy (mean per-class recall) also
    leaves out classes with predictions but no support, whose recall is undefined — as scikit-learn's
    ``balanced_accuracy_score`` does. A class predicted but never true gets F1 = 0.
    """

    def __init__(self, num_classes: int | None = None, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes or 0,) * 2, dtype=np.int64)

    def _grow(self, k: int) -> None:
        if k > self.matrix.shape[0]:
            grown = np.zeros((k, k), dtype=np.int64)
            c = self.matrix.shape[0]
            grown[:c, :c] = self.matrix
            self.matrix = grown

    def update(self, pred, target, mask=None) -> "ConfusionAccumulator":
        ids, tv = _tagging_arrays(pred, target, mask, self.ignore_index, self.num_classes)
        if tv.size == 0:
            return self
        self._grow(int(max(ids.max(), tv.max())) + 1)
        c = self.matrix.shape[0]
        self.matrix += np.bincount(tv * c + ids, minlength=c * c).reshape(c, c)
        return self

    def pack(self) -> np.ndarray:
        """The matrix as float64 numbers; every rank's matrix must have the same size (give
        ``num_classes``)."""
        return self.matrix.astype(np.float64).ravel()

    def merge_packed(self, states: list[np.ndarray]) -> "ConfusionAccumulator":
        self.matrix = np.rint(sum(states)).astype(np.int64).reshape(self.matrix.shape)
        return self

    def merge(self, other: "ConfusionAccumulator") -> "ConfusionAccumulator":
        self._grow(other.matrix.shape[0])
        c = other.matrix.shape[0]
        self.matrix[:c, :c] += other.matrix
        return self

    @property
    def count(self) -> int:
        return int(self.matrix.sum())

    def _parts(self):
        if self.count == 0:
            raise _empty_error()
        m = self.matrix
        return np.diag(m).astype(np.float64), m.sum(axis=1), m.sum(axis=0)  # tp, support, predicted

    def per_class_f1(self) -> dict[int, float]:
        """{class: F1} for every class with support or predictions."""
        tp, support, predicted = self._parts()
        seen = np.flatnonzero(support + predicted)
        return {int(c): float(2 * tp[c] / (support[c] + predicted[c])) for c in seen}

    def per_class(self) -> dict[int, dict[str, Any]]:
        """{class: {f1, recall (None without support), support, predicted}} for seen classes."""
        tp, support, predicted = self._parts()
        out = {}
        for c in np.flatnonzero(support + predicted):
            out[int(c)] = {
                "f1": float(2 * tp[c] / (support[c] + predicted[c])),
                "recall": float(tp[c] / support[c]) if support[c] else None,
                "support": int(support[c]),
                "predicted": int(predicted[c]),
            }
        return out

    def macro_f1(self) -> float:
        return float(np.mean(list(self.per_class_f1().values())))

    def macro_accuracy(self) -> float:
        tp, support, _ = self._parts()
        has = support > 0
        return float(np.mean(tp[has] / support[has]))

    def accuracy(self) -> float:
        tp, _, _ = self._parts()
        return float(tp.sum() / self.count)

    def result(self) -> dict[str, float]:
        return {"macro_f1": self.macro_f1(), "macro_accuracy": self.macro_accuracy(),
                "token_accuracy": self.accuracy()}


class GroupAccuracyAccumulator:
    """Accuracy broken down by a per-position group label (e.g. ListOps node height or operator)."""

    def __init__(self, ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> None:
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.correct: dict[int, int] = {}
        self.counts: dict[int, int] = {}

    def update(self, pred, target, groups, mask=None) -> "GroupAccuracyAccumulator":
        t = to_numpy(target)
        g = to_numpy(groups)
        if g.shape != t.shape:
            raise ValueError(f"groups shape {g.shape} does not match target shape {t.shape}")
        if g.dtype.kind not in "biu":
            raise ValueError(f"groups must be integer labels (got dtype {g.dtype})")
        ids, tv = _tagging_arrays(pred, t, mask, self.ignore_index, self.num_classes)
        valid = np.ones(t.shape, dtype=bool) if self.ignore_index is None else (t != self.ignore_index)
        m = _as_mask(mask, t.shape)
        if m is not None:
            valid &= m
        gv = g[valid].astype(np.int64)  # same order as ids / tv
        labels, inverse = np.unique(gv, return_inverse=True)
        hits = np.bincount(inverse, weights=(ids == tv), minlength=labels.size)
        total = np.bincount(inverse, minlength=labels.size)
        for label, h, n in zip(labels.tolist(), hits.tolist(), total.tolist()):
            self.correct[label] = self.correct.get(label, 0) + int(h)
            self.counts[label] = self.counts.get(label, 0) + int(n)
        return self

    def result(self) -> dict[int, float]:
        if not self.counts:
            raise _empty_error()
        return {k: self.correct[k] / self.counts[k] for k in sorted(self.counts)}


def _r2_floored(pred, target, mask=None) -> float | None:
    """The paper's per-batch R²: 1 - MSE / max(Var, 1e-5), scalar batch mean."""
    p, t = _regression_arrays(pred, target, mask)
    if t.size == 0:
        return None
    acc = R2Accumulator()
    acc.update(p, t)
    mse, var = acc.sse / acc.count, acc.m2 / acc.count
    return 1.0 - mse / max(var, R2_VARIANCE_FLOOR)


def _batch_value(name: str, kw: dict):
    """metric name -> f(pred, target, mask) giving that metric on one batch (None when empty)."""
    if name == "r2":
        return _r2_floored

    def tagging(pred, target, mask=None):
        acc = ConfusionAccumulator(**kw).update(pred, target, mask)
        if acc.count == 0:
            return None
        return {"token_accuracy": acc.accuracy, "accuracy": acc.accuracy, "macro_f1": acc.macro_f1,
                "macro_accuracy": acc.macro_accuracy}[name]()

    return tagging


class BatchMeanAccumulator:
    """The paper's protocol as a stream: each ``update`` is one batch (first axis = samples); the
    result is the per-batch metric averaged over batches, weighted by samples per batch."""

    def __init__(self, metric: str, ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
        self.metric = metric
        kw = {} if metric == "r2" else {"ignore_index": ignore_index, "num_classes": num_classes}
        self._value = _batch_value(metric, kw)
        self.weighted_sum = 0.0
        self.weight = 0
        self.batches = 0

    def update(self, pred, target, mask=None) -> "BatchMeanAccumulator":
        t = to_numpy(target)
        if t.ndim == 0:
            raise ValueError("per-batch metrics need a sample axis: target must have at least one dimension")
        value = self._value(pred, t, mask)
        if value is not None:
            self.weighted_sum += value * t.shape[0]
            self.weight += t.shape[0]
            self.batches += 1
        return self

    def pack(self) -> np.ndarray:
        return np.array([self.weighted_sum, self.weight, self.batches], dtype=np.float64)

    def merge_packed(self, states: list[np.ndarray]) -> "BatchMeanAccumulator":
        self.weighted_sum = float(sum(s[0] for s in states))
        self.weight, self.batches = (int(sum(s[i] for s in states)) for i in (1, 2))
        return self

    def result(self) -> float:
        if self.weight == 0:
            raise _empty_error()
        return self.weighted_sum / self.weight


def make_accumulator(metric: str, per_batch: int | None = None, **kw):
    """A fresh streaming accumulator whose ``.result()`` is ``metric`` (a float).

    With ``per_batch`` set, feed it batches of exactly that many samples (the last may be shorter).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    if metric == "r2" and kw:
        raise ValueError(f"r2 takes no {', '.join(sorted(kw))} (regression has no classes or ignore index)")
    if per_batch is not None:
        _check_batch_size(per_batch)
        return BatchMeanAccumulator(metric, **kw)
    if metric == "r2":
        return R2Accumulator()
    if metric in ("token_accuracy", "accuracy"):
        return AccuracyAccumulator(**kw)
    return _ConfusionMetric(metric, **kw)


class _ConfusionMetric(ConfusionAccumulator):
    """A ConfusionAccumulator whose result() is one macro metric."""

    def __init__(self, metric: str, **kw) -> None:
        super().__init__(**kw)
        self.metric = metric

    def result(self) -> float:
        return self.macro_f1() if self.metric == "macro_f1" else self.macro_accuracy()


# ---------------------------------------------------------------------------------------------
# functions


def _compute(metric: str, pred, target, per_batch, mask, **kw) -> float:
    if per_batch is None:
        return make_accumulator(metric, **kw).update(pred, target, mask).result()
    b = _check_batch_size(per_batch)
    p, t = to_numpy(pred), to_numpy(target)
    m = None if mask is None else _as_mask(mask, t.shape)
    # validate the whole arrays first, so that a mismatch is never hidden by slicing
    if metric == "r2":
        if p.shape != t.shape:
            _regression_arrays(p, t)
    elif p.shape[: t.ndim] != t.shape or p.ndim not in (t.ndim, t.ndim + 1):
        _tagging_arrays(p, t, ignore_index=None)
    if t.ndim == 0:
        raise ValueError("per-batch metrics need a sample axis: target must have at least one dimension")
    acc = BatchMeanAccumulator(metric, **kw)
    for s in range(0, t.shape[0], b):
        acc.update(p[s:s + b], t[s:s + b], None if m is None else m[s:s + b])
    return acc.result()


def r2(pred, target, per_batch: int | None = None, *, mask=None) -> float:
    """R² = 1 - Σ(ŷ - y)² / Σ(y - ȳ)² over every target element (ȳ their mean).

    ``per_batch=B``: the paper's per-batch R² (variance floored at 1e-5), averaged over batches.
    """
    return _compute("r2", pred, target, per_batch, mask)


def token_accuracy(pred, target, per_batch: int | None = None, *, mask=None,
                   ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> float:
    """Fraction of positions with target != -100 where the predicted class equals the target."""
    return _compute("token_accuracy", pred, target, per_batch, mask,
                    ignore_index=ignore_index, num_classes=num_classes)


def accuracy(pred, target, per_batch: int | None = None, *, mask=None,
             ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> float:
    """Fraction of samples whose predicted class equals the target (classification: pred [N] class
    ids or [N, C] logits, target [N]); the same count as token_accuracy, one position per sample.

    >>> accuracy(np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 1.0]]), np.array([1, 1, 1]))
    0.6666666666666666
    """
    return _compute("accuracy", pred, target, per_batch, mask,
                    ignore_index=ignore_index, num_classes=num_classes)


def macro_f1(pred, target, per_batch: int | None = None, *, mask=None,
             ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> float:
    """Mean over classes of F1 = 2TP / (2TP + FP + FN); classes never true nor predicted are left out."""
    return _compute("macro_f1", pred, target, per_batch, mask,
                    ignore_index=ignore_index, num_classes=num_classes)


def macro_accuracy(pred, target, per_batch: int | None = None, *, mask=None,
                   ignore_index: int | None = IGNORE_INDEX, num_classes: int | None = None) -> float:
    """Mean per-class recall over the classes that occur in the targets (balanced accuracy)."""
    return _compute("macro_accuracy", pred, target, per_batch, mask,
                    ignore_index=ignore_index, num_classes=num_classes)


def accuracy_by(pred, target, groups, *, mask=None, ignore_index: int | None = IGNORE_INDEX,
                num_classes: int | None = None) -> dict[int, float]:
    """{group label: token accuracy of the evaluated positions with that label}.

    ``groups`` is an integer array shaped like ``target``, e.g. ListOps ``node_height`` or
    ``node_op`` (paper Figure 2). Groups with no evaluated position do not appear.
    """
    acc = GroupAccuracyAccumulator(ignore_index=ignore_index, num_classes=num_classes)
    return acc.update(pred, target, groups, mask).result()


def per_class_f1(pred, target, *, mask=None, ignore_index: int | None = IGNORE_INDEX,
                 num_classes: int | None = None) -> dict[int, float]:
    """{class: F1} for every class that is true or predicted somewhere (Pathfinder-Segmentation)."""
    acc = ConfusionAccumulator(num_classes=num_classes, ignore_index=ignore_index)
    return acc.update(pred, target, mask).per_class_f1()


METRICS = {"r2": r2, "token_accuracy": token_accuracy, "accuracy": accuracy, "macro_f1": macro_f1,
           "macro_accuracy": macro_accuracy}
