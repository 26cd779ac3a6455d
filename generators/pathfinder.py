"""Pathfinder-Segmentation (DLR paper §3.2, Figure 1): label every pixel of a cluttered image by
whether it lies on a main path, and whether that path's two ends both carry a circle.

An image holds two long "main" paths of `contour_length` dashes, `num_distractors` short snakes of
`distractor_length` dashes (each with a circle at its start, "lollipops") and circles of radius
`marker_radius`. connected ~ Bernoulli(0.5): when 1 one main path has a circle at both ends (its
pixels are labelled 2, the other path's 1); when 0 each main path has a circle at one end (all main
path pixels are labelled 1). Everything else is 0.

    inputs (white on black)                        targets
    o- - - - - - - - - -o     main path, 2 circles      2 2 2 2 2 2 2 2 2 2 on its dashes
     - - - - - - - - -        main path, no circle      1 1 1 1 1 1 1 1 1   on its dashes
    o- - -                    distractor                0 (so are circles and background)

The procedure follows the original Pathfinder generator (Linsley et al. 2018, as modified for the
DLR paper); what it does differently is said so below.

- A dash is a segment of `paddle_length` px drawn `paddle_thickness` px wide with flat ends. Each
  image draws one margin m from `margins`. Consecutive dashes meet at a pivot m px beyond the end
  of one and m px before the start of the next, so a straight run has gaps of 2m px (as in the
  original). The turn at each pivot is drawn with density ∝ cos²(continuity · turn),
  |turn| < 90°/continuity, from a grid of turns ~1 px apart at the dash's end (shifted by a random
  fraction of its spacing), among the turns whose dash (and end circle, if any) fits.
- The first main path starts >= 2·`seed_distance` px from every border, the second exactly
  `seed_distance` px from the first; the two then grow alternately, one dash each. A main-path dash
  must leave the path a way to keep turning inside the image (a look-ahead the original lacks: it
  redraws the image instead); at a dead end the path takes back its last dashes (more after
  repeated dead ends) and regrows. A distractor starts uniformly where its first dash and circle
  fit; at a dead end it takes back one dash (twice at most), then starts afresh.
- No collisions ("the margin rule"): shapes of objects that are not neighbours on the same snake
  stay `clearance(m)` = 2m - 1 px apart, checked to within 1.1 px on an occupancy grid (see
  `_Builder`); every shape stays >= 1 px inside the image. The original dilates each shape by m
  and forbids overlaps of the dilated shapes (2m apart), but lets its anti-aliased masks overlap
  by about a pixel, and when a distractor does not fit it simply leaves it out. Here every image
  has exactly `num_distractors` distractors, and 2m - 1 leaves room for them at m = 3 on 128 px.
- A circle sits on the end point of the end dash it marks, for main paths and distractors alike
  (the original centres a distractor's circle m px before its first dash, a main path's on the
  dash's end point: a cue that tells them apart, which this generator avoids).
- Anti-aliasing: every shape is convolved with a separable tent filter of half-width `AA` = 1.5 px
  (about the reach of the original's supersampling + Lanczos resize; it reproduces the original's
  class balance). Dashes have intensity `intensity`, circles 1.0; the image is the pixel-wise
  maximum, scaled to 0..255 and rounded.
- Label pixels of a main path are the pixels where its own rendering is nonzero (>= 1 after
  rounding to uint8); circles and distractors are not part of it. The two main paths keep apart,
  so their labels do not overlap (were they to, the larger label would win).
- When an image cannot be completed it is redrawn from the same random stream, up to
  `MAX_ATTEMPTS` times (then RuntimeError: the config is too crowded); the sample stays a pure
  function of the generator.

Determinism: decisions use only correctly rounded float operations (+, -, *, /, sqrt, rounding)
in numpy and Python's `math` for trigonometry (scalars), so the bytes do not depend on the CPU's
SIMD level.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

SIZES = (128, 256, 512)
AA = 1.5  # half-width (px) of the tent filter used for anti-aliasing
MAX_ATTEMPTS = 100  # full redraws of an image before giving up
SEED_BATCH = 64  # uniform candidate starts drawn at once for a new snake ...
SEED_CHUNK = 16  # ... and tested this many at a time
SNAKE_TRIES = 64  # fresh starts of one distractor before the image counts as full
SNAKE_BACKTRACKS = 2  # dead ends of one distractor that only take back its last dash
BACKTRACKS = 200  # dead ends of the main paths per attempt before the image is redrawn
BACKTRACK_GROWTH = 4  # every this many dead ends of a path, take back one more dash


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class PathfinderConfig:
    """One image family. The literal defaults are the 128 preset; use `make_config(size=...)` for
    the 256 and 512 presets (SPEC §4.3) and to override single fields of a preset."""

    size: int = 128
    contour_length: int = 14  # dashes per main path
    paddle_length: int = 5  # px
    paddle_thickness: float = 1.5  # px
    margins: tuple[int, ...] = (2, 3)  # one is drawn per image
    seed_distance: int = 22  # px between the starts of the two main paths
    marker_radius: float = 2.1  # px
    continuity: float = 1.8  # turns are at most 90°/continuity
    distractor_length: int = 4  # dashes per distractor
    num_distractors: int = 16
    intensity: float = 0.9  # dash brightness; circles are 1.0

    def __post_init__(self):
        def need(ok: bool, name: str, allowed: str):
            if not ok:
                raise ValueError(f"{name} must be {allowed} (got {getattr(self, name)!r})")

        M = self.size
        need(_is_int(M) and M in SIZES, "size", "one of 128, 256, 512")
        need(_is_int(self.contour_length) and 2 <= self.contour_length <= 200, "contour_length", "an integer in [2, 200]")
        need(_is_int(self.paddle_length) and 1 <= self.paddle_length <= M // 4, "paddle_length",
             f"an integer in [1, {M // 4}] (size/4)")
        need(_is_num(self.paddle_thickness) and 0 < self.paddle_thickness <= M / 16, "paddle_thickness",
             f"a number in (0, {M / 16:g}] (size/16)")
        margins = tuple(self.margins) if isinstance(self.margins, (tuple, list)) else self.margins
        need(isinstance(margins, tuple) and len(margins) > 0 and all(_is_int(m) and 1 <= m <= M // 16 for m in margins),
             "margins", f"a non-empty tuple of integers in [1, {M // 16}] (size/16)")
        need(_is_num(self.seed_distance) and 1 <= self.seed_distance < M / 4, "seed_distance",
             f"a number in [1, {M // 4}) (the first path starts 2*seed_distance from every border)")
        need(_is_num(self.marker_radius) and 0.5 <= self.marker_radius <= M / 8, "marker_radius",
             f"a number in [0.5, {M / 8:g}] (size/8)")
        need(_is_num(self.continuity) and 1 <= self.continuity <= 100, "continuity", "a number in [1, 100]")
        need(_is_int(self.distractor_length) and 1 <= self.distractor_length <= 200, "distractor_length",
             "an integer in [1, 200]")
        need(_is_int(self.num_distractors) and 0 <= self.num_distractors <= 1000, "num_distractors",
             "an integer in [0, 1000]")
        need(_is_num(self.intensity) and 0 < self.intensity <= 1, "intensity", "a number in (0, 1]")
        # canonical types, so that equal configs have equal JSON (2 and 2.0, [4] and (4,))
        for name in ("paddle_thickness", "marker_radius", "continuity", "intensity"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("size", "contour_length", "paddle_length", "distractor_length", "num_distractors"):
            object.__setattr__(self, name, int(getattr(self, name)))
        sd = self.seed_distance
        object.__setattr__(self, "seed_distance", int(sd) if float(sd).is_integer() else float(sd))
        object.__setattr__(self, "margins", tuple(int(m) for m in margins))


PRESETS: dict[int, PathfinderConfig] = {
    128: PathfinderConfig(),
    256: PathfinderConfig(size=256, contour_length=16, paddle_length=8, paddle_thickness=2.0, margins=(4,),
                          seed_distance=27, marker_radius=4.2, continuity=2.2, distractor_length=5,
                          num_distractors=16, intensity=1.0),
    512: PathfinderConfig(size=512, contour_length=12, paddle_length=22, paddle_thickness=6.0, margins=(7,),
                          seed_distance=40, marker_radius=9.0, continuity=2.5, distractor_length=4,
                          num_distractors=18, intensity=1.0),
}


def make_config(**params) -> PathfinderConfig:
    """The preset of `size` (default 128) with `params` applied, e.g. make_config(size=256, margins=(3,))."""
    size = params.get("size", 128)
    if not (_is_int(size) and size in PRESETS):
        raise ValueError(f"size must be one of 128, 256, 512 (got {size!r})")
    names = [f.name for f in dataclasses.fields(PathfinderConfig)]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(names)}")
    return dataclasses.replace(PRESETS[int(size)], **params)


# ----------------------------------------------------------------------------------------------
# Geometry: a scene is a list of capsules (segment a-b, radius); circles are segments with a == b.


@dataclass
class Scene:
    """The geometry of one image, in pixel units: x = column, y = row (pixel centres at integers).

    paths / distractors: [n, 4] arrays of dashes (ax, ay, bx, by), in drawing order from the
    start; circles: [k, 2] centres with circle_snake[k] = the snake each marks (0, 1 = main
    paths, 2 + j = distractor j). connected = 1 when path `marked` carries both circles.
    """

    margin: int
    connected: int
    marked: int  # path whose start carries a circle (and, when connected, its end too)
    paths: list[np.ndarray] = field(default_factory=list)
    distractors: list[np.ndarray] = field(default_factory=list)
    circles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    circle_snake: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _point_seg2(x, y, sx, sy, ex, ey):
    """Squared distance from points (x, y) to segments s-e, broadcasting."""
    dx, dy = ex - sx, ey - sy
    t = np.minimum(np.maximum(((x - sx) * dx + (y - sy) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0), 1.0)
    rx, ry = sx + t * dx - x, sy + t * dy - y
    return rx * rx + ry * ry


def _unit_vectors(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n uniform random directions (normalised Gaussian pairs: no trigonometry needed)."""
    g = rng.standard_normal((2, n))
    r = np.sqrt(g[0] * g[0] + g[1] * g[1])
    bad = r < 1e-12  # probability ~0; any fixed direction will do
    r = np.where(bad, 1.0, r)
    return np.where(bad, 1.0, g[0]) / r, np.where(bad, 0.0, g[1]) / r


def clearance(margin: int) -> float:
    """Smallest distance (px) between the shapes of two objects that are not neighbours on one
    snake: the original dilates every shape by the margin and forbids overlaps of the dilated
    shapes, less about a pixel that its anti-aliased masks let overlap."""
    return max(2.0 * margin - 1.0, float(margin))


class _Builder:
    """Places dashes and circles without collisions, using an occupancy grid.

    Every placed object o (a segment a-b of radius r_o; a circle is a segment with a == b) is
    stamped into a count grid over the pixels whose centre lies within r_o + r_dash + clearance of
    its segment: the original generator's dilation. A dash fits when none of the pixels nearest to
    points along its segment (every 0.5 px) is stamped; a circle of radius R fits when the points of
    a 0.5 px lattice within R - r_dash of its centre do. A snake's last dash (with its circle) stays
    pending, unstamped, until the next dash is placed, since that one may come close to it; while
    the two main paths grow side by side, the other path's pending dash is tested at the same
    pixels directly. So shapes of non-neighbours stay more than clearance - 1.1 px apart
    (nearest-pixel rounding and sampling), and about clearance apart on average. Count grids let a
    dead end take dashes back.
    """

    def __init__(self, cfg: PathfinderConfig, margin: int):
        M = cfg.size
        self.cfg, self.m = cfg, float(margin)
        self.L, self.rho, self.R = float(cfg.paddle_length), cfg.paddle_thickness / 2, cfg.marker_radius
        self.gap = clearance(margin)
        self.grid = np.zeros((M, M), dtype=np.int16)
        self.along = np.linspace(0.0, 1.0, max(2, math.ceil(2 * self.L) + 1))  # sample spacing <= 0.5 px
        r = max(self.R - self.rho, 0.0)  # circle samples: a 0.5 px lattice over the disc of radius r
        k = math.floor(2 * r)
        dy, dx = np.mgrid[-k:k + 1, -k:k + 1] / 2.0
        keep = dx * dx + dy * dy <= r * r
        self.disc = (dx[keep], dy[keep])
        self.objects: dict[int, list[tuple]] = {}  # snake -> stamped [(index, ax, ay, bx, by, radius)]
        self.pending: dict[int, list[tuple]] = {}  # snake -> its last dash (and circle), not stamped yet
        self.max_turn = half = math.pi / (2 * cfg.continuity)
        # with every turn maximal a path's pivots (L + 2m apart) lie on a circle of this radius
        self.turn_radius = (self.L + 2 * self.m) / (2 * math.sin(half / 2))
        K = max(3, math.ceil(2 * half * (self.L + self.m)))  # turns ~1 px apart at the dash's end
        grid = [-half + j * (2 * half / K) for j in range(K)]  # shifted by [0, spacing) at each use
        c = cfg.continuity
        self.turn_grid = [np.array([f(a * t) for t in grid]) for a in (1.0, c) for f in (math.cos, math.sin)]
        self.spacing = 2 * half / K

    def lo_hi(self, radius: float) -> tuple[float, float]:
        lo = radius + 1.0  # every shape keeps >= 1 px inside the image
        return lo, self.cfg.size - 1 - lo

    # -- occupancy

    def _reach(self, radius: float) -> float:
        return radius + self.rho + self.gap

    def _stamp(self, obj: tuple, sign: int):
        _, ax, ay, bx, by, r = obj
        M, e = self.cfg.size, self._reach(r) + 1
        c0, c1 = max(0, math.floor(min(ax, bx) - e)), min(M, math.ceil(max(ax, bx) + e) + 1)
        r0, r1 = max(0, math.floor(min(ay, by) - e)), min(M, math.ceil(max(ay, by) + e) + 1)
        X = np.arange(c0, c1, dtype=np.float64)[None, :]
        Y = np.arange(r0, r1, dtype=np.float64)[:, None]
        zone = _point_seg2(X, Y, ax, ay, bx, by) <= self._reach(r) ** 2  # (h, w)
        if sign > 0:
            self.grid[r0:r1, c0:c1] += zone
        else:
            self.grid[r0:r1, c0:c1] -= zone

    def add_dash(self, dash, snake: int, index: int, circle_at=None):
        """Place a dash (and a circle on it). It stays pending, unstamped, while it is the snake's
        last dash: the snake's next dash may come close to it."""
        self.commit(snake)
        self.pending[snake] = [(index, *dash, self.rho)]
        if circle_at is not None:
            self.pending[snake].append((index, *circle_at, *circle_at, self.R))

    def commit(self, snake: int):
        for obj in self.pending.pop(snake, []):
            self._stamp(obj, +1)
            self.objects.setdefault(snake, []).append(obj)

    def remove(self, snake: int, first_index: int = 0):
        """Take back the dashes (and circles) of `snake` from `first_index` on; the dash before
        them becomes pending again."""
        self.pending.pop(snake, None)
        kept = []
        for obj in self.objects.get(snake, []):
            if obj[0] >= first_index - 1:
                self._stamp(obj, -1)
            if obj[0] == first_index - 1:
                self.pending.setdefault(snake, []).append(obj)
            elif obj[0] < first_index - 1:
                kept.append(obj)
        self.objects[snake] = kept

    def _clear(self, x, y, snake: int) -> np.ndarray:
        """Per row of sample points (x, y: [K, P]): none lands on a pixel within reach of an
        object of another snake or a non-neighbour of the same snake."""
        M = self.cfg.size
        ix = np.minimum(np.maximum(np.rint(x), 0), M - 1)  # nearest pixels
        iy = np.minimum(np.maximum(np.rint(y), 0), M - 1)
        hit = self.grid[iy.astype(np.intp), ix.astype(np.intp)] > 0
        for other, objs in self.pending.items():  # the other main path's last dash while both grow
            if other != snake:
                for _, oax, oay, obx, oby, r in objs:
                    hit |= _point_seg2(ix, iy, oax, oay, obx, oby) <= self._reach(r) ** 2
        return ~hit.any(axis=1)

    def fits(self, ax, ay, bx, by, snake: int) -> np.ndarray:
        """Which candidate dashes (arrays [K]) lie inside the image, clear of non-neighbours."""
        lo, hi = self.lo_hi(self.rho)
        ok = ((np.minimum(ax, bx) >= lo) & (np.maximum(ax, bx) <= hi)
              & (np.minimum(ay, by) >= lo) & (np.maximum(ay, by) <= hi))
        t = self.along
        return ok & self._clear(ax[:, None] + t * (bx - ax)[:, None], ay[:, None] + t * (by - ay)[:, None], snake)

    def circle_fits(self, cx, cy, snake: int) -> np.ndarray:
        """Which candidate circles (centres: arrays [K]) lie inside the image, clear of non-neighbours."""
        lo, hi = self.lo_hi(self.R)
        ok = (cx >= lo) & (cx <= hi) & (cy >= lo) & (cy <= hi)
        dx, dy = self.disc
        return ok & self._clear(cx[:, None] + dx, cy[:, None] + dy, snake)

    def fits_with_circle(self, ax, ay, bx, by, cx, cy, snake: int) -> np.ndarray:
        return self.fits(ax, ay, bx, by, snake) & self.circle_fits(cx, cy, snake)

    # -- growth

    def can_turn_away(self, bx, by, vx, vy) -> np.ndarray:
        """Look-ahead for main paths: after a dash ending at b with direction v, could the path keep
        turning maximally one way without leaving the image? (Else it is doomed at the border.)"""
        R = self.turn_radius
        lo, hi = self.lo_hi(self.rho)
        if hi - lo < 2 * R:
            return np.ones(bx.shape, dtype=bool)
        qx, qy = bx + self.m * vx, by + self.m * vy  # next pivot
        ok = np.zeros(bx.shape, dtype=bool)
        for side in (1.0, -1.0):
            cx, cy = qx - side * R * vy, qy + side * R * vx  # centre of the turning circle
            ok |= (cx >= lo + R) & (cx <= hi - R) & (cy >= lo + R) & (cy <= hi - R)
        return ok

    def seed(self, rng, px, py, snake: int, circle: bool, ahead: bool = False):
        """The first of the candidate starts (arrays) whose dash, in a random direction, fits."""
        ux, uy = _unit_vectors(rng, len(px))
        bx, by = px + self.L * ux, py + self.L * uy
        for c in range(0, len(px), SEED_CHUNK):  # the same first hit as testing all at once, sooner
            part = slice(c, c + SEED_CHUNK)
            ok = self.fits(px[part], py[part], bx[part], by[part], snake)
            if ahead:
                ok &= self.can_turn_away(bx[part], by[part], ux[part], uy[part])
            if circle and ok.any():
                ok[ok] = self.circle_fits(px[part][ok], py[part][ok], snake)
            hits = np.flatnonzero(ok)
            if len(hits):
                break
        else:
            return None
        i = c + hits[0]
        dash = (float(px[i]), float(py[i]), float(bx[i]), float(by[i]))
        self.add_dash(dash, snake, 0, dash[:2] if circle else None)
        return dash

    def extend(self, rng, dash, k: int, snake: int, end_circle: bool = False, ahead: bool = False):
        """Dash k after `dash`: every turn of a grid (~1 px apart at the dash's end, shifted by a
        random fraction of its spacing) that fits, chosen with probability ∝ cos²(continuity · turn)."""
        ax, ay, bx, by = dash
        ux, uy = (bx - ax) / self.L, (by - ay) / self.L
        px, py = bx + self.m * ux, by + self.m * uy  # pivot
        shift = float(rng.random()) * self.spacing
        c = self.cfg.continuity
        cg, sg, ccg, scg = self.turn_grid
        cs, ss = math.cos(shift), math.sin(shift)
        cos_t, sin_t = cg * cs - sg * ss, sg * cs + cg * ss  # cos, sin of (grid + shift)
        w = ccg * math.cos(c * shift) - scg * math.sin(c * shift)  # cos(c (grid + shift))
        vx, vy = ux * cos_t - uy * sin_t, ux * sin_t + uy * cos_t  # turned directions (K,)
        nax, nay = px + self.m * vx, py + self.m * vy
        nbx, nby = nax + self.L * vx, nay + self.L * vy
        if end_circle:
            ok = self.fits_with_circle(nax, nay, nbx, nby, nbx, nby, snake)
        else:
            ok = self.fits(nax, nay, nbx, nby, snake)
        if ahead:
            ok &= self.can_turn_away(nbx, nby, vx, vy)
        cum = np.cumsum(np.where(ok, w * w, 0.0))
        if cum[-1] <= 0:
            return None
        j = min(int(np.searchsorted(cum, float(rng.random()) * cum[-1], side="right")), len(cum) - 1)
        new = (float(nax[j]), float(nay[j]), float(nbx[j]), float(nby[j]))
        self.add_dash(new, snake, k, new[2:] if end_circle else None)
        return new


def _try_scene(rng: np.random.Generator, cfg: PathfinderConfig, scene: Scene, builder=None) -> bool:
    n_main, n_dis = cfg.contour_length, cfg.distractor_length
    b = (builder or _Builder)(cfg, scene.margin)  # benchmarks pass a slow full-frame builder
    start_circle = [scene.marked == 0, scene.marked == 1]
    end_circle = [False, False]
    end_circle[scene.marked if scene.connected else 1 - scene.marked] = True

    # the two main paths start seed_distance apart, the first 2*seed_distance from every border
    M, sd = cfg.size, float(cfg.seed_distance)
    p = rng.uniform(2 * sd, M - 1 - 2 * sd, size=(2, SEED_BATCH))
    first = b.seed(rng, p[0], p[1], 0, start_circle[0], ahead=True)
    if first is None:
        return False
    dx, dy = _unit_vectors(rng, SEED_BATCH)
    second = b.seed(rng, first[0] + sd * dx, first[1] + sd * dy, 1, start_circle[1], ahead=True)
    if second is None:
        return False
    paths = [[first], [second]]
    # grow alternately, as the original does; at a dead end take back the last few dashes of that
    # path (more after repeated dead ends) instead of redrawing everything
    dead_ends, budget = [0, 0], BACKTRACKS
    while min(len(paths[0]), len(paths[1])) < n_main:
        s = 0 if len(paths[0]) <= len(paths[1]) else 1
        k = len(paths[s])
        new = b.extend(rng, paths[s][-1], k, s, end_circle[s] and k == n_main - 1, ahead=k < n_main - 1)
        if new is not None:
            paths[s].append(new)
            continue
        depth = min(k - 1, 1 + dead_ends[s] // BACKTRACK_GROWTH)
        dead_ends[s] += 1
        budget -= 1
        if depth == 0 or budget < 0:
            return False
        b.remove(s, k - depth)
        del paths[s][k - depth:]
    b.commit(0), b.commit(1)

    # distractors: a start (uniform where its first dash and circle fit), then turns as for the
    # main paths; a dead end takes back one dash (twice at most), then the snake starts afresh
    distractors = []
    lo, hi = b.lo_hi(max(b.rho, b.R))
    for j in range(cfg.num_distractors):
        snake, dashes = 2 + j, []
        for _ in range(SNAKE_TRIES):
            p = rng.uniform(lo, hi, size=(2, SEED_BATCH))
            first = b.seed(rng, p[0], p[1], snake, True)
            if first is None:
                continue
            dashes, dead_ends = [first], 0
            while 0 < len(dashes) < n_dis:
                new = b.extend(rng, dashes[-1], len(dashes), snake)
                if new is not None:
                    dashes.append(new)
                elif dead_ends < SNAKE_BACKTRACKS and len(dashes) > 1:
                    dead_ends += 1
                    b.remove(snake, len(dashes) - 1)
                    dashes.pop()
                else:
                    b.remove(snake)
                    dashes = []
            if dashes:
                b.commit(snake)
                break
        if not dashes:
            return False  # no room for another distractor
        distractors.append(dashes)

    scene.paths = [np.array(d) for d in paths]
    scene.distractors = [np.array(d).reshape(-1, 4) for d in distractors]
    circles, owners = [], []
    for s in (0, 1):
        if start_circle[s]:
            circles.append(scene.paths[s][0, :2]), owners.append(s)
        if end_circle[s]:
            circles.append(scene.paths[s][-1, 2:]), owners.append(s)
    for j, d in enumerate(scene.distractors):
        circles.append(d[0, :2]), owners.append(2 + j)
    scene.circles = np.array(circles).reshape(-1, 2)
    scene.circle_snake = np.array(owners, dtype=np.int64)
    return True


def sample_scene(rng: np.random.Generator, cfg: PathfinderConfig) -> Scene:
    """Draw the geometry of one image (redrawing it, from the same stream, after a dead end)."""
    connected = int(rng.integers(0, 2))
    margin = int(cfg.margins[int(rng.integers(0, len(cfg.margins)))])
    marked = int(rng.integers(0, 2))
    for _ in range(MAX_ATTEMPTS):
        scene = Scene(margin=margin, connected=connected, marked=marked)
        if _try_scene(rng, cfg, scene):
            return scene
    raise RuntimeError(
        f"pathfinder-seg: could not fit two main paths of {cfg.contour_length} dashes and {cfg.num_distractors} "
        f"distractors into a {cfg.size}x{cfg.size} image in {MAX_ATTEMPTS} attempts; use fewer or shorter "
        f"paths, smaller margins or a larger size")


# ----------------------------------------------------------------------------------------------
# Rendering: each shape convolved with a tent filter of half-width AA, evaluated on its bounding box.


def _tent_cdf(x: np.ndarray) -> np.ndarray:
    z = np.clip(x / AA, -1.0, 1.0)
    return 0.5 + z - 0.5 * z * np.abs(z)


def _box_profile(u: np.ndarray, half: float) -> np.ndarray:
    """A box of half-width `half` convolved with the tent, at offset u from its centre."""
    u = np.abs(u)
    return _tent_cdf(half - u) + _tent_cdf(half + u) - 1.0


def _window(cx: float, cy: float, ex: float, ey: float, M: int):
    """Pixel rows/cols within (ex, ey) of (cx, cy), clipped to the image."""
    c0, c1 = max(0, math.floor(cx - ex)), min(M - 1, math.ceil(cx + ex))
    r0, r1 = max(0, math.floor(cy - ey)), min(M - 1, math.ceil(cy + ey))
    return r0, r1 + 1, c0, c1 + 1


def _dash_patch(dash, length: float, thickness: float, M: int):
    """(rows slice, cols slice, values in [0, 1]) of one dash."""
    ax, ay, bx, by = dash
    cx, cy = (ax + bx) / 2, (ay + by) / 2
    ux, uy = (bx - ax) / length, (by - ay) / length
    hl, ht = length / 2 + AA, thickness / 2 + AA
    r0, r1, c0, c1 = _window(cx, cy, abs(ux) * hl + abs(uy) * ht, abs(uy) * hl + abs(ux) * ht, M)
    X = np.arange(c0, c1, dtype=np.float64)[None, :] - cx  # (1, w)
    Y = np.arange(r0, r1, dtype=np.float64)[:, None] - cy  # (h, 1)
    along, across = X * ux + Y * uy, Y * ux - X * uy  # (h, w)
    v = _box_profile(along, length / 2) * _box_profile(across, thickness / 2)
    return slice(r0, r1), slice(c0, c1), v


def _circle_patch(cx: float, cy: float, radius: float, M: int):
    e = radius + AA
    r0, r1, c0, c1 = _window(cx, cy, e, e, M)
    X = np.arange(c0, c1, dtype=np.float64)[None, :] - cx
    Y = np.arange(r0, r1, dtype=np.float64)[:, None] - cy
    d = np.sqrt(X * X + Y * Y)  # (h, w)
    return slice(r0, r1), slice(c0, c1), _box_profile(d, radius)


def render_scene(scene: Scene, cfg: PathfinderConfig) -> dict[str, np.ndarray]:
    """inputs uint8 [M, M], targets uint8 [M, M], connected uint8 []."""
    M, L, T = cfg.size, float(cfg.paddle_length), cfg.paddle_thickness
    canvas = np.zeros((M, M))  # float brightness in [0, 1]
    targets = np.zeros((M, M), dtype=np.uint8)
    labels = [1, 1]
    if scene.connected:
        labels[scene.marked] = 2
    for s, path in enumerate(scene.paths):
        for dash in path:
            rows, cols, v = _dash_patch(dash, L, T, M)
            v = v * cfg.intensity
            np.maximum(canvas[rows, cols], v, out=canvas[rows, cols])
            touched = np.rint(v * 255.0) >= 1  # this path's own rendering is nonzero here
            np.maximum(targets[rows, cols], np.where(touched, labels[s], 0).astype(np.uint8), out=targets[rows, cols])
    for snake in scene.distractors:
        for dash in snake:
            rows, cols, v = _dash_patch(dash, L, T, M)
            np.maximum(canvas[rows, cols], v * cfg.intensity, out=canvas[rows, cols])
    for cx, cy in scene.circles:
        rows, cols, v = _circle_patch(cx, cy, cfg.marker_radius, M)
        np.maximum(canvas[rows, cols], v, out=canvas[rows, cols])
    inputs = np.rint(canvas * 255.0).astype(np.uint8)
    return {"inputs": inputs, "targets": targets, "connected": np.array(scene.connected, dtype=np.uint8)}


def pathfinder_seg(rng: np.random.Generator, cfg: PathfinderConfig) -> dict[str, np.ndarray]:
    """One Pathfinder-Segmentation image and its per-pixel labels.

    M = 128 (defaults): inputs uint8 [128, 128], white dashed strokes on black; targets uint8
    [128, 128] with ~94 % zeros; connected = 1  ->  the 14 dashes of the path with two circles are
    labelled 2, the 14 dashes of the other main path 1, distractors, circles and background 0.
    connected = 0  ->  both main paths are labelled 1 and no pixel is 2.
    """
    return render_scene(sample_scene(rng, cfg), cfg)


# ----------------------------------------------------------------------------------------------
# Views for `lrbench show` (text) and `lrbench show -o file.png` (picture).


def describe(sample: dict[str, np.ndarray], cfg: PathfinderConfig | None = None, width: int = 64) -> str:
    """A text view: class shares, then the image at most `width` characters wide, one character
    per block of pixels: '2' / '1' where the block holds label-2 / label-1 pixels, 'o' a circle
    (pixels >= 240), '.' other lit pixels (distractors), ' ' black."""
    img, lab = np.asarray(sample["inputs"]), np.asarray(sample["targets"])
    M = img.shape[0]
    f = max(1, -(-M // width))  # block size
    counts = np.bincount(lab.ravel(), minlength=3)
    lines = [f"pathfinder-seg {M}x{M}  connected={int(sample['connected'])}  labels 0/1/2: "
             + " / ".join(f"{c:,} ({100 * c / lab.size:.1f} %)" for c in counts)
             + f"  lit pixels {100 * (img > 0).mean():.1f} %",
             f"1 character = {f}x{f} pixels; 2/1 = main path labels, o = circle, . = other lit pixels"]
    blocks = lambda a: a[: M // f * f, : M // f * f].reshape(M // f, f, M // f, f).max(axis=(1, 3))
    lab_b, lit_b, circ_b = blocks(lab), blocks(img > 0), blocks(img >= 240)
    chars = np.where(lab_b == 2, "2", np.where(lab_b == 1, "1", np.where(circ_b, "o", np.where(lit_b, ".", " "))))
    lines += ["".join(row).rstrip() for row in chars]
    return "\n".join(lines)



LABEL_COLOURS = np.array([[0, 0, 0], [230, 159, 0], [86, 180, 233]], dtype=np.float64)  # 0, 1, 2


def picture(sample: dict[str, np.ndarray], cfg: PathfinderConfig | None = None) -> np.ndarray:
    """RGB uint8 [M, 2M, 3]: the image (left) beside its colour-coded mask (right).

    Mask colours: label 1 orange, label 2 sky blue; where the label is 0 the image shows through
    at 30 % brightness so distractors and circles stay visible. E.g. a connected sample shows one
    blue path with circles at both ends, one orange path, and grey lollipops.
    """
    img = np.asarray(sample["inputs"], dtype=np.float64)  # (M, M)
    lab = np.asarray(sample["targets"]).astype(np.int64)
    left = np.repeat(img[:, :, None], 3, axis=2)
    right = LABEL_COLOURS[lab] * (img[:, :, None] / 255.0) ** 0.5  # fades with the anti-aliased rim
    right = np.where(lab[:, :, None] > 0, right, 0.3 * left)
    return np.rint(np.concatenate([left, right], axis=1)).astype(np.uint8)
