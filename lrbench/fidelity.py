"""Statistics that compare a Pathfinder image generator with its reference, computed from the
pixels alone (SPEC §4.3, STYLE 16): the same code measures the reference's images and ours.

`image_stats(inputs, targets)` gives one value per statistic for one image (NaN where an image has
nothing to measure, e.g. class-2 share of an unconnected image); `compare(a, b)` puts two samples
of such rows side by side with a two-sample test per statistic. `benchmarks/pathfinder_fidelity.py`
prints the table; the tests hold our generator to the stored reference rows.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, stats

EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity
CIRCLE_LEVEL = 250  # circles reach 255; strokes stay below after the reference's rescaling
CORE_LEVEL = 96  # a dash's bright core

STATS: dict[str, str] = {  # name -> what it measures (per image)
    "connected": "1 when class 2 is present (a Bernoulli(1/2) draw in both generators)",
    "frac_bg": "share of pixels labelled 0 (1 - the main paths' share, whatever the class draw)",
    "share_c2": "class 2 among labelled pixels (connected images only)",
    "frac_lit": "share of pixels with value > 0",
    "lit_components": "8-connected components of lit pixels",
    "bright_blobs": "8-connected components of pixels >= 250 (circles)",
    "label_below_32": "share of labelled pixels with value < 32 (the faint halo in the labels)",
    "label_median": "median value of labelled pixels",
    "lit_le4": "share of lit pixels with value <= 4",
    "lit_ge192": "share of lit pixels with value >= 192",
    "lit_mean": "mean value of lit pixels",
    "dash_length": "median length (px) of main-path dash cores (value >= 96), from second moments",
    "dash_width": "median width (px) of the same cores",
    "main_turn_deg": "mean |direction change| between each main-path dash core and its nearest neighbour",
    "circle_main_px": "circle centre to nearest dash-core centre, circles on a main path",
    "circle_distractor_px": "circle centre to nearest dash-core centre, other circles",
}


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    return ndimage.label(mask, structure=EIGHT)


def _moments(labels: np.ndarray, n: int):
    """Per component 1..n: area, centroid (y, x), and the eigen-decomposition of its covariance."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    area = np.bincount(lab, minlength=n).astype(np.float64)
    cy = np.bincount(lab, ys, n) / area
    cx = np.bincount(lab, xs, n) / area
    dy, dx = ys - cy[lab], xs - cx[lab]
    syy = np.bincount(lab, dy * dy, n) / area
    sxx = np.bincount(lab, dx * dx, n) / area
    sxy = np.bincount(lab, dx * dy, n) / area
    half_trace, det = (syy + sxx) / 2, syy * sxx - sxy * sxy
    disc = np.sqrt(np.maximum(half_trace * half_trace - det, 0.0))
    major, minor = half_trace + disc, np.maximum(half_trace - disc, 0.0)
    orient = 0.5 * np.arctan2(2 * sxy, sxx - syy)  # of the major axis, in (-pi/2, pi/2]
    return area, cy, cx, major, minor, orient


def image_stats(inputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """The STATS of one image (uint8 [M, M] each)."""
    img, lab = np.asarray(inputs), np.asarray(targets)
    n = img.size
    lit = img > 0
    labelled = lab > 0
    counts = np.bincount(lab.ravel(), minlength=3)
    out = {"connected": float(counts[2] > 0), "frac_bg": counts[0] / n,
           "share_c2": counts[2] / (counts[1] + counts[2]) if counts[2] else math.nan,
           "frac_lit": lit.mean()}
    out["lit_components"] = float(_components(lit)[1])
    circles, n_circles = _components(img >= CIRCLE_LEVEL)
    out["bright_blobs"] = float(n_circles)
    values = img[labelled]
    out["label_below_32"] = float((values < 32).mean()) if values.size else math.nan
    out["label_median"] = float(np.median(values)) if values.size else math.nan
    lit_values = img[lit].astype(np.float64)
    out["lit_le4"], out["lit_ge192"] = float((lit_values <= 4).mean()), float((lit_values >= 192).mean())
    out["lit_mean"] = float(lit_values.mean())

    # dash cores: bright stroke pixels away from circles
    near_circle = ndimage.binary_dilation(img >= CIRCLE_LEVEL, structure=EIGHT, iterations=2)
    cores, n_cores = _components((img >= CORE_LEVEL) & ~near_circle)
    if n_cores:
        area, cy, cx, major, minor, orient = _moments(cores, n_cores)
        on_main = ndimage.maximum(labelled, cores, index=np.arange(1, n_cores + 1)).astype(bool) & (area >= 4)
        length, width = np.sqrt(12 * major), np.sqrt(12 * minor)  # a uniform bar of these sides
        out["dash_length"] = float(np.median(length[on_main])) if on_main.any() else math.nan
        out["dash_width"] = float(np.median(width[on_main])) if on_main.any() else math.nan
        idx = np.flatnonzero(on_main)
        if len(idx) >= 2:
            d2 = (cy[idx, None] - cy[None, idx]) ** 2 + (cx[idx, None] - cx[None, idx]) ** 2
            np.fill_diagonal(d2, np.inf)
            nearest = idx[d2.argmin(axis=1)]
            turn = np.abs(orient[idx] - orient[nearest]) % np.pi
            out["main_turn_deg"] = float(np.degrees(np.minimum(turn, np.pi - turn)).mean())
        else:
            out["main_turn_deg"] = math.nan
        if n_circles:
            c_area, c_y, c_x, *_ = _moments(circles, n_circles)
            d = np.sqrt((c_y[:, None] - cy[None, :]) ** 2 + (c_x[:, None] - cx[None, :]) ** 2).min(axis=1)
            touches = ndimage.binary_dilation(labelled, structure=EIGHT)
            main = ndimage.maximum(touches, circles, index=np.arange(1, n_circles + 1)).astype(bool)
            out["circle_main_px"] = float(d[main].mean()) if main.any() else math.nan
            out["circle_distractor_px"] = float(d[~main].mean()) if (~main).any() else math.nan
    for name in STATS:
        out.setdefault(name, math.nan)
    return {k: float(out[k]) for k in STATS}


IMAGE_STATS: dict[str, str] = {  # name -> what it measures, for images without label masks (LRA)
    "frac_lit": STATS["frac_lit"],
    "lit_components": STATS["lit_components"],
    "bright_blobs": "8-connected components of pixels >= 250",
    "lit_le4": STATS["lit_le4"],
    "lit_ge128": "share of lit pixels with value >= 128",
    "lit_mean": STATS["lit_mean"],
    "cores": "8-connected components of pixels >= 96 (dash cores, circles included)",
    "core_length": "median length (px) of those cores, from second moments",
    "core_width": "median width (px) of the same cores",
}


def image_only_stats(inputs: np.ndarray) -> dict[str, float]:
    """The IMAGE_STATS of one image (uint8 [M, M])."""
    img = np.asarray(inputs)
    lit = img > 0
    lit_values = img[lit].astype(np.float64)
    out = {"frac_lit": float(lit.mean()), "lit_components": float(_components(lit)[1]),
           "bright_blobs": float(_components(img >= CIRCLE_LEVEL)[1]),
           "lit_le4": float((lit_values <= 4).mean()) if lit_values.size else math.nan,
           "lit_ge128": float((lit_values >= 128).mean()) if lit_values.size else math.nan,
           "lit_mean": float(lit_values.mean()) if lit_values.size else math.nan}
    cores, n = _components(img >= CORE_LEVEL)
    out["cores"] = float(n)
    if n:
        _, _, _, major, minor, _ = _moments(cores, n)
        out["core_length"], out["core_width"] = float(np.median(np.sqrt(12 * major))), float(np.median(np.sqrt(12 * minor)))
    else:
        out["core_length"] = out["core_width"] = math.nan
    return out


def sample_stats(inputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """STATS per image of a batch ([N, M, M] each): name -> float64 [N]."""
    rows = [image_stats(i, t) for i, t in zip(inputs, targets)]
    return {k: np.array([r[k] for r in rows]) for k in STATS}


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[dict]:
    """Per statistic: means, standard deviations and counts of samples a and b, and the two-sided
    Mann-Whitney U p-value (NaN values left out)."""
    rows = []
    for name in a:
        x, y = np.asarray(a[name], float), np.asarray(b[name], float)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        p = stats.mannwhitneyu(x, y, alternative="two-sided").pvalue if len(x) and len(y) else math.nan
        rows.append({"stat": name, "mean_a": float(x.mean()) if len(x) else math.nan,
                     "sd_a": float(x.std(ddof=1)) if len(x) > 1 else math.nan, "n_a": len(x),
                     "mean_b": float(y.mean()) if len(y) else math.nan,
                     "sd_b": float(y.std(ddof=1)) if len(y) > 1 else math.nan, "n_b": len(y), "p": float(p)})
    return rows
