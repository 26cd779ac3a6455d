"""Views of one sample for ``lrbench show``: text, or a PNG picture.

Tasks may provide their own views in the registry (``describe``, ``picture``); the regression tasks
use the generic ones here: a short table, and a line plot of the signal above its targets.
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
    T_out = len(sample["targets"])
    offset = len(sample["inputs"]) - T_out
    lines.append(f"first {rows} positions (inputs) and their targets (aligned to the last {T_out} outputs):")
    for i in range(min(rows, len(sample["inputs"]))):
        x = " ".join(f"{v:+.4f}" for v in sample["inputs"][i])
        j = i - offset
        y = " ".join(f"{v:+.4f}" for v in sample["targets"][j]) if 0 <= j < T_out else "-"
        lines.append(f"  {i:>6}  x: {x}   y: {y}")
    return "\n".join(lines)


def _plot(draw: ImageDraw.ImageDraw, top: int, series: np.ndarray, colour: tuple, label: str) -> None:
    """One panel: the series as a polyline over the full width, scaled to its own range."""
    draw.rectangle([PAD, top, PAD + PANEL_W, top + PANEL_H], outline=(90, 90, 90))
    draw.text((PAD + 4, top + 2), label, fill=(220, 220, 220))
    n = len(series)
    if n == 0:
        return
    lo, hi = float(series.min()), float(series.max())
    span = hi - lo or 1.0
    xs = PAD + np.arange(n) * (PANEL_W / max(1, n - 1))
    ys = top + PANEL_H - 4 - (series - lo) / span * (PANEL_H - 8)
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=1)


def regression_picture(task, sample: dict[str, np.ndarray]) -> np.ndarray:
    """The first input channel (the signal) above each target channel (up to 4)."""
    targets = np.asarray(sample["targets"])
    panels = [("inputs[:, 0]", np.asarray(sample["inputs"])[:, 0], (120, 180, 255))]
    panels += [(f"targets[:, {c}]", targets[:, c], (255, 170, 80)) for c in range(min(4, targets.shape[1]))]
    img = Image.new("RGB", (PANEL_W + 2 * PAD, len(panels) * (PANEL_H + PAD) + PAD), (16, 16, 16))
    draw = ImageDraw.Draw(img)
    for k, (label, series, colour) in enumerate(panels):
        _plot(draw, PAD + k * (PANEL_H + PAD), series.astype(np.float64), colour, f"{task.name} {label}")
    return np.asarray(img)


def save_png(task, sample: dict[str, np.ndarray], path: str | Path) -> None:
    if task.spec.picture is not None:
        rgb = task.spec.picture(sample, task.config)
    elif task.kind == "regression":
        rgb = regression_picture(task, sample)
    else:
        raise ValueError(f"{task.name} has no picture view")
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(path, optimize=True)
