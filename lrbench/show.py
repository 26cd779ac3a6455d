"""Views of one sample for ``lrbench show``: text, or a PNG picture.

A task may provide its own views in the registry (``describe``, ``picture``); every other task gets
the generic ones here, drawn from its fields: a short table of the first positions, and one line
plot per field channel (the signal above its targets). A 2-D uint8 field without a view of its own
is drawn as a grey image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PANEL_W, PANEL_H, PAD = 1024, 160, 24


def describe(task, sample: dict[str, np.ndarray], rows: int = 8) -> str:
    if task.spec.describe is not None:
        return task.spec.describe(sample, task.config)
    lines = [f"{task.name} {task.config}"]
    for name, a in sample.items():
        a = np.asarray(a)
        lines.append(f"  {name}: {a.dtype} {list(a.shape)}  min {a.min():.4g}  max {a.max():.4g}")
    inputs, targets = _rows(sample["inputs"]), _rows(sample["targets"])
    T_out = task.t_out if task.t_out is not None else len(targets)
    offset = len(inputs) - T_out
    where = f"aligned to the last {T_out} outputs" if task.t_out is not None else "one per position"
    lines.append(f"first {rows} positions (inputs) and their targets ({where}):")
    for i in range(min(rows, len(inputs))):
        x = " ".join(_value(v) for v in inputs[i])
        j = i - offset
        y = " ".join(_value(v) for v in targets[j]) if 0 <= j < len(targets) else "-"
        lines.append(f"  {i:>6}  x: {x}   y: {y}")
    return "\n".join(lines)


def _rows(a) -> np.ndarray:
    """A field as [positions, channels]: a sequence of scalars gets one channel, an image its pixels
    in row-major order (the sequence view)."""
    a = np.asarray(a)
    return a.reshape(-1, 1) if a.ndim != 2 or a.dtype == np.uint8 else a


def _value(v) -> str:
    return f"{v:+.4f}" if np.issubdtype(np.asarray(v).dtype, np.floating) else f"{int(v):d}"


def _plot(draw: ImageDraw.ImageDraw, top: int, series: np.ndarray, colour: tuple, label: str) -> None:
    """One panel: the series as a polyline over the full width, scaled to its own range; NaN
    (unscored positions) leaves a gap."""
    draw.rectangle([PAD, top, PAD + PANEL_W, top + PANEL_H], outline=(90, 90, 90))
    draw.text((PAD + 4, top + 2), label, fill=(220, 220, 220))
    n = len(series)
    finite = np.isfinite(series)
    if n == 0 or not finite.any():
        return
    lo, hi = float(series[finite].min()), float(series[finite].max())
    span = hi - lo or 1.0
    xs = PAD + np.arange(n) * (PANEL_W / max(1, n - 1))
    ys = top + PANEL_H - 4 - (series - lo) / span * (PANEL_H - 8)
    # one polyline per run of finite values
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        points = list(zip(xs[start:stop].tolist(), ys[start:stop].tolist()))
        if len(points) == 1:  # an isolated value (a scored position among unscored ones): a dot
            (x, y), = points
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        else:
            draw.line(points, fill=colour, width=1)


def sequence_picture(task, sample: dict[str, np.ndarray]) -> np.ndarray:
    """The first input channel (the signal, or the token ids) above each target channel (up to 4);
    a ragged field's pad value (unscored positions) is left out."""
    features = task.features
    inputs, targets = _rows(sample["inputs"]), _rows(sample["targets"]).astype(np.float64)
    if features["targets"].ragged:
        targets[targets == features["targets"].pad] = np.nan
    panels = [("inputs[:, 0]", inputs[:, 0], (120, 180, 255))]
    panels += [(f"targets[:, {c}]", targets[:, c], (255, 170, 80)) for c in range(min(4, targets.shape[1]))]
    img = Image.new("RGB", (PANEL_W + 2 * PAD, len(panels) * (PANEL_H + PAD) + PAD), (16, 16, 16))
    draw = ImageDraw.Draw(img)
    for k, (label, series, colour) in enumerate(panels):
        _plot(draw, PAD + k * (PANEL_H + PAD), series.astype(np.float64), colour, f"{task.name} {label}")
    return np.asarray(img)


def image_picture(task, sample: dict[str, np.ndarray]) -> np.ndarray:
    """A 2-D uint8 input beside its targets, both grey, the targets stretched to 0..255."""
    inputs = np.asarray(sample["inputs"], dtype=np.float64)
    targets = np.asarray(sample["targets"], dtype=np.float64)
    span = float(targets.max() - targets.min()) or 1.0
    both = np.concatenate([inputs, (targets - targets.min()) / span * 255.0], axis=1)
    return np.repeat(np.rint(both).astype(np.uint8)[:, :, None], 3, axis=2)


def save_png(task, sample: dict[str, np.ndarray], path: str | Path) -> None:
    if task.spec.picture is not None:
        rgb = task.spec.picture(sample, task.config)
    elif task.view == "image":
        rgb = image_picture(task, sample)
    else:
        rgb = sequence_picture(task, sample)
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(path, optimize=True)
