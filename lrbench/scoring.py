"""Score a split of an on-disk dataset against a model's predictions (``lrbench score``).

    result = score_dataset("data/shift-L512", "preds.npy", split="test")
    result["metrics"]["r2"]

Predictions: one array ``[num_samples, ...]`` in sample order, given as an array (numpy or torch)
or a file: ``.npy`` (memory-mapped), ``.npz`` (its single array, or the one named ``predictions``;
npz members are read whole), ``.h5``/``.hdf5`` (the dataset ``predictions``, or the only dataset;
read batch by batch). Per sample, what fits the task's ``targets`` of shape S:

* regression: values of shape S (a trailing axis of 1 may be left out);
* tagging: class ids of shape S, or logits S + (C,) with C the task's number of classes; an image
  task also accepts the flattened sequence view, (prod S,) or (prod S, C); a trailing axis of 1
  holds class ids (a single-column "logit" cannot pick one of several classes);
* ragged tasks (ListOps): the first axis may have any width W covering every sample's length,
  padded anyhow (NaN included); positions past a sample's length are not scored.

Targets are read split-wise in batches, so memory stays bounded by the batch, whatever the split
size. Breakdowns, always exact over the split (also with ``per_batch``):

* every tagging task: per-class F1, recall, support and predicted counts (``per_class``);
* every integer field aligned position by position with ``targets`` (ListOps ``node_height`` and
  ``node_op``): accuracy and count per value (``accuracy_by_<field>``, paper Figure 2).
"""

from __future__ import annotations

import contextlib
import os
import stat
import zipfile
from math import prod
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from lrbench import metrics as M
from lrbench.errors import LrbenchError
from lrbench.storage import describe_file

PREDICTION_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")
BATCH_BYTES = 64 << 20  # target bytes of predictions per batch in the exact protocol

# metric names a task spec may use -> lrbench.metrics names
_METRIC_NAMES = {"r2": "r2", "token_accuracy": "token_accuracy", "accuracy": "accuracy",
                 "macro_f1": "macro_f1", "f1_macro": "macro_f1", "macro_accuracy": "macro_accuracy",
                 "balanced_accuracy": "macro_accuracy"}


@contextlib.contextmanager
def open_predictions(source: Any, check: Callable[[tuple[int, ...]], Any] | None = None) -> Iterator[Any]:
    """An array-like of predictions (``.shape``, ``.dtype``, slicing on the first axis).

    ``check(shape)`` may refuse a shape (by raising) before an array is read whole: an .npz member
    is loaded into memory, so its shape is taken from its header first.
    """
    if not isinstance(source, (str, Path)):
        array = M.to_numpy(source)
        yield array
        return
    path = Path(source)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LrbenchError(f"predictions file {path} does not exist") from None
    except OSError as exc:
        raise LrbenchError(f"predictions file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise LrbenchError(f"predictions {path} is {describe_file(mode)}, not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:  # object arrays, bad headers
            raise LrbenchError(f"{path}: cannot read as a numeric .npy array ({exc})") from None
        yield array
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.files)
                key = "predictions" if "predictions" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise LrbenchError(f"{path} holds {len(keys)} arrays ({', '.join(keys[:6])}); "
                                     "name the predictions 'predictions' or store a single array")
                if check is not None:
                    check(_npz_shape(path, key))
                array = npz[key]
        except LrbenchError:
            raise
        except (ValueError, OSError) as exc:
            raise LrbenchError(f"{path}: cannot read as .npz ({exc})") from None
        yield array
    elif suffix in (".h5", ".hdf5"):
        import h5py

        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise LrbenchError(f"{path}: cannot open as HDF5 ({exc})") from None
        with f:
            names: list[str] = []
            f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            key = "predictions" if "predictions" in names else names[0] if len(names) == 1 else None
            if key is None:
                raise LrbenchError(f"{path} holds {len(names)} datasets ({', '.join(names[:6]) or 'none'}); "
                                 "name the predictions 'predictions' or store a single dataset")
            yield f[key]
    else:
        raise LrbenchError(f"predictions must be a {', '.join(PREDICTION_SUFFIXES)} file (got {path.name})")


def _npz_shape(path: Path, key: str) -> tuple[int, ...]:
    """The shape of member ``key`` of an .npz, read from its .npy header without loading it."""
    with zipfile.ZipFile(path) as zf:
        name = f"{key}.npy" if f"{key}.npy" in zf.namelist() else key  # numpy drops the suffix from keys
        with zf.open(name) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, _ = np.lib.format.read_array_header_2_0(member)
            else:
                raise LrbenchError(f"{path}: member {key!r} is a .npy of format {version}, which lrbench does not read")
    return tuple(shape)


def _metric_names(task) -> list[str]:
    out = []
    for name in task.metrics:
        if name not in _METRIC_NAMES:
            raise LrbenchError(f"task {task.name} declares metric {name!r}, which lrbench.metrics does not "
                             f"implement ({', '.join(M.METRICS)})")
        out.append(_METRIC_NAMES[name])
    return out


def _layout(task, pred_shape: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """From the per-sample prediction shape: (the shape to view it as, whether it holds logits).

    The view shape is the target's per-sample shape (first axis = the prediction's width when
    ragged), plus the class axis for logits.
    """
    feat = task.features["targets"]
    shape, rest = tuple(feat.shape), tuple(pred_shape)
    if feat.ragged and rest:
        shape = (rest[0],) + shape[1:]  # any width; checked against the lengths batch by batch
    expect = f"{list(shape)}"
    if task.kind == "regression":
        if rest == shape:
            return shape, False
        if shape and shape[-1] == 1 and rest == shape[:-1]:
            return shape, False
        hint = ""
        if len(rest) == len(shape) and rest[1:] == shape[1:] and rest and shape and rest[0] > shape[0]:
            hint = (f"; targets align with the last {shape[0]} positions of the model output, "
                    f"so keep only those")
        raise LrbenchError(f"predictions are [N, {', '.join(map(str, rest))}] per sample but task "
                         f"{task.name} needs [N, {', '.join(map(str, shape))}]{hint}")
    k = task.num_classes
    if k is None and len(rest) == len(shape) + 1 and rest[:-1] == shape and rest[-1] > 1:
        k = rest[-1]  # a task without a declared class count takes any number of logits
    options = [(shape, shape, False), (shape + (1,), shape, False)]
    if k:
        options.append((shape + (k,), shape + (k,), True))
    if len(shape) > 1 and not feat.ragged:  # the sequence view of an image task
        flat = (prod(shape),)
        options += [(flat, shape, False), (flat + (1,), shape, False)]
        if k:
            options.append((flat + (k,), shape + (k,), True))
    for given, view, logits in options:
        if rest == given:
            return view, logits
    if len(rest) == len(shape) + 1 and rest[:-1] == shape:
        raise LrbenchError(f"predictions have {rest[-1]} logits per position but task {task.name} has "
                         f"{k} classes")
    raise LrbenchError(f"predictions are [N, {', '.join(map(str, rest))}] per sample but task {task.name} "
                     f"needs class ids [N, {expect[1:-1]}] or logits [N, {expect[1:-1]}, {k}]")


def _aligned_group_fields(task) -> list[str]:
    """Integer fields that label each target position (not the inputs)."""
    t = task.features["targets"]
    return [name for name, f in task.features.items()
            if name not in ("inputs", "targets") and np.dtype(f.dtype).kind in "iu"
            and tuple(f.shape) == tuple(t.shape) and f.ragged == t.ragged]


def _batch_size(num_samples: int, pred_shape: tuple[int, ...], itemsize: int) -> int:
    per_sample = max(1, prod(pred_shape) * itemsize)
    return int(max(1, min(num_samples, BATCH_BYTES // per_sample)))


def score_dataset(path: str | Path, predictions: Any, split: str = "test",
                  per_batch: int | None = None) -> dict:
    """Score ``predictions`` against ``split`` of the dataset at ``path``.

    Returns ``{"task", "split", "num_samples", "per_batch", "metrics": {name: value}}`` plus
    ``"breakdowns"`` for tagging tasks. ``per_batch=None`` is exact over the split; ``per_batch=B``
    is the paper's protocol (see ``lrbench.metrics``). Raises ``LrbenchError`` (a ``ValueError``)
    when the predictions do not fit the split, and ``ValueError`` from ``lrbench.metrics`` for
    NaN/inf predictions or out-of-range class ids.
    """
    from lrbench.dataset import open_dataset

    if per_batch is not None:
        per_batch = M._check_batch_size(per_batch)
    ds = open_dataset(path)
    try:
        if split not in ds.splits:
            raise LrbenchError(f"split {split!r} is not in {path}; it has {', '.join(ds.splits)}")
        view = ds[split]
        task = ds.task
        names = _metric_names(task)
        n = len(view)
        def layout_of(shape: tuple[int, ...]) -> tuple[int, ...]:
            if len(shape) == 0 or shape[0] != n:
                got = shape[0] if shape else "a scalar, no"
                raise LrbenchError(f"predictions hold {got} samples but split {split} of {task.name} has {n}")
            return _layout(task, shape[1:])[0]

        with open_predictions(predictions, layout_of) as pred:
            return _score(view, task, names, pred, layout_of(tuple(pred.shape)), split, per_batch)
    finally:
        ds.close()


def _score(view, task, names, pred, layout, split, per_batch) -> dict:
    tagging = task.kind != "regression"  # classes: per position (tagging) or per sample (classification)
    kw = {"num_classes": task.num_classes} if tagging else {}
    accs = {name: M.make_accumulator(name, per_batch, **kw) for name in names}
    confusion = M.ConfusionAccumulator(**kw) if tagging else None
    groups = {f: M.GroupAccuracyAccumulator(**kw) for f in _aligned_group_fields(task)} if tagging else {}
    ragged = task.features["targets"].ragged
    n = len(view)
    b = per_batch or _batch_size(n, pred.shape[1:], np.dtype(pred.dtype).itemsize)
    start = 0
    for batch in view.batches(b):
        target = batch["targets"]
        m = target.shape[0]
        p = np.asarray(pred[start:start + m]).reshape((m,) + layout)
        mask = None
        extra = {f: batch[f] for f in groups}
        if ragged:
            lengths = batch["lengths"]
            width = p.shape[1]
            if lengths.max() > width:
                i = int(np.argmax(lengths))
                raise LrbenchError(f"predictions cover {width} positions per sample but sample "
                                 f"{start + i} of split {split} has length {int(lengths[i])}")
            w = min(width, target.shape[1])
            p, target = p[:, :w], target[:, :w]
            extra = {f: a[:, :w] for f, a in extra.items()}
            mask = np.arange(w)[None, :] < lengths[:, None]
            if target.ndim > 2:
                mask = np.broadcast_to(mask.reshape(mask.shape + (1,) * (target.ndim - 2)), target.shape)
        for acc in accs.values():
            acc.update(p, target, mask)
        if confusion is not None:
            confusion.update(p, target, mask)
        for f, acc in groups.items():
            acc.update(p, target, extra[f], mask)
        start += m

    result = {"task": task.name, "split": split, "num_samples": n, "per_batch": per_batch,
              "metrics": {name: float(acc.result()) for name, acc in accs.items()}}
    breakdowns = {}
    if confusion is not None:
        breakdowns["per_class"] = {str(c): v for c, v in confusion.per_class().items()}
    for f, acc in groups.items():
        labels = dict(enumerate(task.features[f].labels or ()))  # readable names of the values
        breakdowns[f"accuracy_by_{f}"] = {
            str(labels.get(g, g)): {"accuracy": value, "count": acc.counts[g]}
            for g, value in acc.result().items()
        }
    if breakdowns:
        result["breakdowns"] = breakdowns
    return result


def format_result(result: dict) -> str:
    """The result of ``score_dataset`` as readable text (what ``lrbench score`` prints)."""
    b = result.get("per_batch")
    how = f"per batch of {b} samples, averaged" if b else "exact over the split"
    lines = [f"{result['task']} {result['split']}: {result['num_samples']} samples ({how})"]
    lines += [f"  {name:<16} {value:.6f}" for name, value in result["metrics"].items()]
    for name, table in result.get("breakdowns", {}).items():
        lines.append(f"{name}:")
        for key, row in table.items():
            if "accuracy" in row:
                lines.append(f"  {key:>6}  accuracy {row['accuracy']:.4f}  n={row['count']}")
            else:
                recall = "  --  " if row["recall"] is None else f"{row['recall']:.4f}"
                lines.append(f"  {key:>6}  f1 {row['f1']:.4f}  recall {recall}  "
                             f"support {row['support']}  predicted {row['predicted']}")
    return "\n".join(lines)
