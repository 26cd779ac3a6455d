"""Pathfinder-Segmentation (DLR paper §3.2, Figure 1): label every pixel of a cluttered image by
whether it lies on a main path, and whether that path's two ends both carry a circle.

An image holds two long "main" paths of `contour_length` dashes, up to `num_distractors` short
snakes of `distractor_length` dashes (each with a circle near its start, "lollipops"), and circles
of radius `marker_radius`. connected ~ Bernoulli(0.5): when 1 one main path has a circle at both
ends (its pixels are labelled 2, the other path's 1); when 0 each main path has a circle at one
end (all main-path pixels are labelled 1). Everything else is 0.

    inputs (white on black)                        targets
    o- - - - - - - - - -o     main path, 2 circles      2 2 2 2 2 2 2 2 2 2 on its dashes
     - - - - - - - - -        main path, no circle      1 1 1 1 1 1 1 1 1   on its dashes
    o - - -                   distractor                0 (so are circles and background)

The default reproduces the process of the DLR paper's own generator (ag1988/dlr,
`src/dataloaders/prepare/pathfinder`: snakes2 run with its wrapper's segmentation settings, and the
targets its Pathfinder-Segmentation loader builds), which made the data behind the paper's Table 3.
It matches that generator in distribution, not in bytes (our draws come from a per-sample numpy
stream); `benchmarks/pathfinder_fidelity.py` measures both side by side. The process, step by step:

- Rendering. A dash is a line of `paddle_length` px drawn `paddle_thickness` px wide, white, on a
  canvas `antialias_scale` times finer than the image, then shrunk with a Lanczos filter (Pillow's),
  which leaves a faint halo (values 1-4 of 255) and small negative lobes (clipped to 0). Each dash
  also has a "mask": the fine line dilated by a disc of radius margin (in fine px), shrunk the same
  way. A circle is a disc of radius `marker_radius` drawn on a whole-image fine canvas and shrunk
  the same way. The image is the pixel-wise maximum of dashes (times `intensity`) and circles,
  rescaled so that its maximum (a circle's Lanczos overshoot) is 255, and rounded.
- Occupancy. A mask image (the image's 1 px frame, then the masks of placed dashes) says what is
  taken: a pixel is free while its mask value is <= 0.3.
- A snake starts at a pixel drawn uniformly from those where its first dash, in a direction drawn
  uniformly from whole degrees, would cover no taken pixel (the saturated part of the dash's mask,
  offset by one pixel, as the reference's dilation kernel is); the dash runs from that pixel
  ("tail") to its head, and the snake's pivot lies `margin` px behind the tail. A start whose head
  or pivot falls outside the image is tried again (3 tries in all).
- A snake grows from a pivot `paddle_length + 2 margin` px beyond the last pivot: the next head is
  one of the pixels on a circle of radius `paddle_length + margin` around it, drawn with weight
  cos²(min(continuity * turn, 90°)) * (1 - the mask dilated by a disc of radius margin), and the
  dash runs from that head back towards the pivot. It must not collide (mask + its mask < 1.8
  everywhere); 3 tries, else the snake fails. The snake's own last dash joins the mask only once the
  next one is placed.
- Main paths: the first starts >= 2 seed_distance px from every border, the second exactly
  seed_distance px from the first (rounded to a pixel, no occupancy check); they then grow
  alternately. If either fails, the image starts again. Only the second path's last dash joins the
  mask afterwards (the first path's last dash stays free for distractors, as in the reference).
- Distractors: `num_distractors` snakes are attempted, each up to 1 + `distractor_retries` times;
  one that does not fit is left out (the reference places 11-16 of 16 at 128). A distractor's
  circle sits on its pivot, `margin` px before its first dash (`distractor_circle="pivot"`); main
  paths' circles sit on the ends of their end dashes. Circles never enter the mask.
- Labels: a main path's pixels are those where its own dashes, rescaled and rounded as the image
  is, are nonzero: the Lanczos halo included, circles and distractors excluded; the connected
  path's pixels get 2, the other's 1 (the larger wins where they overlap).

Improvements over the reference are options, never the default (the default exists so that numbers
compare with the paper's Table 3): `distractor_circle="tip"` puts a distractor's circle on the end
of its first dash, as main paths have theirs, removing a local cue (the circle's distance to its
dash) that tells distractors from main paths; `distractor_retries` > 4 places more distractors.

Determinism: decisions use numpy's correctly rounded operations and Python's `math` for every
trigonometric value (tables cached per angle), and rendering uses Pillow's resampling, so the bytes
do not depend on the CPU's SIMD level.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

try:  # the compiled growth loop (setup.py builds it when a C compiler is present); same bits
    from lrbench.generators import _pathfinder as _pathfinder_c
except ImportError:  # pragma: no cover - exercised by the tests with the module hidden
    _pathfinder_c = None

SIZES = (128, 256, 512)
PADDING = 1  # px of frame that no dash may cover
FREE = 76  # a pixel is free while its mask value (0..255) is <= 0.3 * 255
COLLIDE = 459  # a dash fits while mask + its mask (0..255 each) < 1.8 * 255
MIN_FREE = 0.01  # a distractor needs >= 1 % of the image free to start
SEGMENT_TRIES = 3  # tries of a snake's start, and of each turn
MAX_ATTEMPTS = 100_000  # fresh starts of the main paths before the config counts as impossible
START_CANDIDATES = 64  # uniform candidate starts of a distractor before the exact set is computed
SEED_BATCH = 64  # the first main path, where its clear starts are no rectangle: candidates at once ...
SEED_BATCHES = 8  # ... this many times, before the exact set of starts is computed
SCREEN = 8  # ... each screened by every SCREEN-th footprint pixel first
ATTEMPT_BLOCK = 64  # attempts of the main paths drawn (and run) at once
DISTRACTOR_CIRCLES = ("pivot", "tip")


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
    paddle_thickness: float = 1.5  # px; times antialias_scale must be a whole number
    margins: tuple[int, ...] = (2, 3)  # px; one is drawn per image
    seed_distance: int = 22  # px between the starts of the two main paths
    marker_radius: float = 2.1  # px
    continuity: float = 1.8  # turns beyond 90°/continuity get weight 0
    distractor_length: int = 4  # dashes per distractor
    num_distractors: int = 16  # attempted; those that do not fit are left out
    intensity: float = 0.9  # dash brightness before rescaling; circles are 1.0
    antialias_scale: int = 2  # the fine canvas is this many times the image
    distractor_retries: int = 4  # further attempts of a distractor that did not fit
    distractor_circle: str = "pivot"  # "pivot" (reference): margin px before the first dash; "tip": on its end

    def __post_init__(self):
        need = _validate_snakes(self, SIZES)
        need(_is_num(self.intensity) and 0 < self.intensity <= 1, "intensity", "a number in (0, 1]")
        need(self.distractor_circle in DISTRACTOR_CIRCLES, "distractor_circle", "one of " + ", ".join(DISTRACTOR_CIRCLES))
        object.__setattr__(self, "intensity", float(self.intensity))

    @property
    def style(self) -> "Style":
        return Style(padding=PADDING, quantized=False, main_intensity=self.intensity,
                     distractor_intensity=self.intensity, distractor_circle=self.distractor_circle, rescale="rint")


def _validate_snakes(cfg, sizes: tuple[int, ...]):
    """Check the fields both generators share (ValueError saying what is allowed), make their types
    canonical (so that equal configs have equal JSON: 2 and 2.0, [4] and (4,)), and return the
    `need` checker for the caller's own fields."""
    def need(ok: bool, name: str, allowed: str):
        if not ok:
            raise ValueError(f"{name} must be {allowed} (got {getattr(cfg, name)!r})")

    M = cfg.size
    need(_is_int(M) and M in sizes, "size", "one of " + ", ".join(map(str, sizes)))
    need(_is_int(cfg.contour_length) and 2 <= cfg.contour_length <= 200, "contour_length", "an integer in [2, 200]")
    need(_is_int(cfg.paddle_length) and 1 <= cfg.paddle_length <= M // 4, "paddle_length",
         f"an integer in [1, {M // 4}] (size/4)")
    need(_is_int(cfg.antialias_scale) and 1 <= cfg.antialias_scale <= 8, "antialias_scale", "an integer in [1, 8]")
    need(_is_num(cfg.paddle_thickness) and 0 < cfg.paddle_thickness <= M / 16
         and float(cfg.paddle_thickness * cfg.antialias_scale).is_integer(), "paddle_thickness",
         f"a number in (0, {M / 16:g}] (size/16) that times antialias_scale ({cfg.antialias_scale}) is whole")
    margins = tuple(cfg.margins) if isinstance(cfg.margins, (tuple, list)) else cfg.margins
    need(isinstance(margins, tuple) and len(margins) > 0 and all(_is_int(m) and 1 <= m <= M // 16 for m in margins),
         "margins", f"a non-empty tuple of integers in [1, {M // 16}] (size/16)")
    need(_is_int(cfg.seed_distance) and 1 <= cfg.seed_distance < M // 4, "seed_distance",
         f"an integer in [1, {M // 4}) (the first path starts 2*seed_distance from every border)")
    need(_is_num(cfg.marker_radius) and 0.5 <= cfg.marker_radius <= M / 8, "marker_radius",
         f"a number in [0.5, {M / 8:g}] (size/8)")
    need(_is_num(cfg.continuity) and 1 <= cfg.continuity <= 100, "continuity", "a number in [1, 100]")
    need(_is_int(cfg.distractor_length) and 1 <= cfg.distractor_length <= 200, "distractor_length",
         "an integer in [1, 200]")
    need(_is_int(cfg.num_distractors) and 0 <= cfg.num_distractors <= 1000, "num_distractors", "an integer in [0, 1000]")
    need(_is_int(cfg.distractor_retries) and 0 <= cfg.distractor_retries <= 100, "distractor_retries",
         "an integer in [0, 100]")
    for name in ("paddle_thickness", "marker_radius", "continuity"):
        object.__setattr__(cfg, name, float(getattr(cfg, name)))
    for name in ("size", "contour_length", "paddle_length", "seed_distance", "distractor_length",
                 "num_distractors", "antialias_scale", "distractor_retries"):
        object.__setattr__(cfg, name, int(getattr(cfg, name)))
    object.__setattr__(cfg, "margins", tuple(int(m) for m in margins))
    return need


PRESETS: dict[int, PathfinderConfig] = {  # the reference wrapper's settings for each size
    128: PathfinderConfig(),
    256: PathfinderConfig(size=256, contour_length=16, paddle_length=8, paddle_thickness=2.0, margins=(4,),
                          seed_distance=27, marker_radius=4.2, continuity=2.2, distractor_length=5,
                          num_distractors=16, intensity=1.0, antialias_scale=2),
    512: PathfinderConfig(size=512, contour_length=12, paddle_length=22, paddle_thickness=6.0, margins=(7,),
                          seed_distance=40, marker_radius=9.0, continuity=2.5, distractor_length=4,
                          num_distractors=18, intensity=1.0, antialias_scale=3),
}


LRA_SIZES = (32, 64, 128, 256)
DIFFICULTIES = {"easy": 6, "intermediate": 9, "hard": 14}  # contour_length: LRA's curv_baseline, _9, _14
_LRA_BUDGET = {32: 20, 64: 22, 128: 35, 256: 30}  # num_distractors = budget // distractor_length


@dataclass(frozen=True)
class LRAPathfinderConfig:
    """Long Range Arena's Pathfinder (32, 64), Path-X (128) and Path-256 images: the original snakes2
    (drewlinsley/pathfinder, as LRA ran it) with LRA's settings. The literal defaults are the 32
    preset at the hard difficulty; use `make_lra_config(size=..., difficulty=...)` for the others.
    `difficulty` picks contour_length (easy 6, intermediate 9, hard 14), distractor_length
    (contour_length // 3) and num_distractors (LRA's budget per size // distractor_length); any
    field can be overridden after that."""

    size: int = 32
    difficulty: str = "hard"
    contour_length: int = 14
    paddle_length: int = 2
    paddle_thickness: float = 0.5
    margins: tuple[int, ...] = (1,)
    seed_distance: int = 7
    marker_radius: float = 1.5
    continuity: float = 1.0
    distractor_length: int = 4
    num_distractors: int = 5
    snake_contrast: float = 2.0  # brightness of every dash before rescaling ...
    paddle_contrast: float = 0.75  # ... times this on the two main paths (the original's quirk)
    antialias_scale: int = 2
    padding: int = 1  # px of frame no dash may cover
    distractor_retries: int = 4

    def __post_init__(self):
        need = _validate_snakes(self, LRA_SIZES)
        need(self.difficulty in DIFFICULTIES, "difficulty", "one of " + ", ".join(DIFFICULTIES))
        for name in ("snake_contrast", "paddle_contrast"):
            need(_is_num(getattr(self, name)) and 0 < getattr(self, name) <= 4, name, "a number in (0, 4]")
            object.__setattr__(self, name, float(getattr(self, name)))
        need(_is_int(self.padding) and 1 <= self.padding < self.size // 4, "padding",
             f"an integer in [1, {self.size // 4})")
        object.__setattr__(self, "padding", int(self.padding))

    @property
    def style(self) -> "Style":
        return Style(padding=self.padding, quantized=True, main_intensity=self.paddle_contrast * self.snake_contrast,
                     distractor_intensity=self.snake_contrast, distractor_circle=None, rescale="bytescale")


_LRA_SIZE_SETTINGS = {  # LRA's data docstrings (lra_benchmarks/data/pathfinder.py), size by size
    32: dict(paddle_length=2, paddle_thickness=0.5, margins=(1,), seed_distance=7, marker_radius=1.5, continuity=1.0,
             snake_contrast=2.0, paddle_contrast=0.75, padding=1),
    64: dict(paddle_length=5, paddle_thickness=1.0, margins=(1,), seed_distance=12, marker_radius=2.5, continuity=1.8,
             snake_contrast=0.8, paddle_contrast=1.0, padding=1),
    128: dict(paddle_length=5, paddle_thickness=1.5, margins=(2, 3), seed_distance=20, marker_radius=3.0,
              continuity=1.8, snake_contrast=0.9, paddle_contrast=1.0, padding=1),
    256: dict(paddle_length=5, paddle_thickness=2.0, margins=(3,), seed_distance=27, marker_radius=5.0,
              continuity=1.8, snake_contrast=1.0, paddle_contrast=1.0, padding=22),
}


def lra_preset(size: int, difficulty: str) -> LRAPathfinderConfig:
    cl = DIFFICULTIES[difficulty]
    return LRAPathfinderConfig(size=size, difficulty=difficulty, contour_length=cl, distractor_length=cl // 3,
                               num_distractors=_LRA_BUDGET[size] // (cl // 3), **_LRA_SIZE_SETTINGS[size])


def make_lra_config(**params) -> LRAPathfinderConfig:
    """The LRA preset of `size` (default 32) and `difficulty` (default "hard") with `params` applied."""
    size, difficulty = params.get("size", 32), params.get("difficulty", "hard")
    if not (_is_int(size) and size in LRA_SIZES):
        raise ValueError(f"size must be one of {', '.join(map(str, LRA_SIZES))} (got {size!r})")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)} (got {difficulty!r})")
    names = [f.name for f in dataclasses.fields(LRAPathfinderConfig)]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(names)}")
    return dataclasses.replace(lra_preset(int(size), difficulty), **params)


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
# Shapes. Every dash of an image is one of a finite set (its direction is a whole degree or the
# direction of an integer offset), so its rendering is computed once per process and cached.


@dataclass(frozen=True)
class Pen:
    """What a dash's rendering depends on besides its direction."""

    length: int
    thickness: float
    margin: int
    aa: int
    quantized: bool = False  # shrink the line in 8 bits (scipy.misc.imresize: LRA's generator)

    @property
    def half(self) -> int:
        """A dash's patch is (2 half + 1)^2 px with the dash's start at its centre."""
        return self.length + math.ceil(self.thickness) + self.margin


@dataclass(frozen=True)
class Style:
    """What differs between the DLR paper's generator (ag1988/dlr) and LRA's (the original snakes2
    of drewlinsley/pathfinder) besides the settings: the frame no dash may cover; whether dashes and
    circles are shrunk in float (Pillow, DLR) or in 8 bits (scipy.misc.imresize, LRA); the dashes'
    brightness on main paths and distractors; the distractors' circles ("pivot", "tip", None); and
    how the image is rescaled to 0..255: "rint" = rint((v - lo) / (hi - lo) * 255) (skimage,
    DLR), "bytescale" = floor((v - lo) * (255 / (hi - lo)) + 0.5) (scipy.misc, LRA)."""

    padding: int
    quantized: bool
    main_intensity: float
    distractor_intensity: float
    distractor_circle: str | None
    rescale: str


def _dilate_disc(a: np.ndarray, r: int) -> np.ndarray:
    """Grey dilation of a (>= 0) by the disc dx² + dy² <= r², zero outside: the maximum over the
    disc's rows of 1-D maxima (exact, and fast for large discs)."""
    from scipy import ndimage  # here: importing it takes a second, which every other task would pay

    out = np.zeros_like(a)
    H = a.shape[0]
    for dy in range(r + 1):
        w = math.isqrt(r * r - dy * dy)
        row = ndimage.maximum_filter1d(a, 2 * w + 1, axis=1, mode="constant", cval=0)
        np.maximum(out[:H - dy], row[dy:], out=out[:H - dy])  # out[y] sees row[y + dy] ...
        np.maximum(out[dy:], row[:H - dy], out=out[dy:])  # ... and row[y - dy]
    return out


def _step(y: int, x: int, angle: float, dist: float) -> tuple[int, int]:
    """The reference's coordinate translation: rounded up."""
    return math.ceil(y + dist * math.sin(angle)), math.ceil(x + dist * math.cos(angle))


def _reverse(angle: float) -> float:
    return angle + math.pi if angle < 0 else angle - math.pi


@dataclass(frozen=True)
class Dash:
    """A dash's rendering, centred on its start: line (float32, 0..255 before the intensity, with
    the Lanczos lobes), mask (uint8 0..255), and the mask dilated by a disc of radius margin
    (`grown`, one margin wider on each side)."""

    line: np.ndarray
    mask: np.ndarray
    grown: np.ndarray


@functools.lru_cache(maxsize=None)
def dash_shape(pen: Pen, angle: float) -> Dash:
    K, aa = pen.half, pen.aa
    c = K * aa  # the start, on the fine canvas
    hy, hx = _step(c, c, angle, pen.length * aa)
    fine = Image.new("F", (2 * c + 1, 2 * c + 1), 0.0)
    ImageDraw.Draw(fine).line([(c, c), (hx, hy)], fill=255.0, width=round(pen.thickness * aa))
    size = (2 * K + 1, 2 * K + 1)
    if pen.quantized:  # 0/255 as 8 bits, shrunk in 8 bits: no negative lobes, overshoot clipped
        fine8 = Image.fromarray(np.asarray(fine).astype(np.uint8))
        line = np.asarray(fine8.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    else:
        line = np.asarray(fine.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    # the fine line dilated by a disc of radius margin * aa (on the line's bounding box, grown by it)
    r = pen.margin * aa
    ys, xs = np.nonzero(np.asarray(fine))
    box = (slice(max(ys.min() - r, 0), ys.max() + r + 1), slice(max(xs.min() - r, 0), xs.max() + r + 1))
    fine_mask = np.zeros((2 * c + 1, 2 * c + 1), dtype=np.uint8)
    fine_mask[box] = _dilate_disc((np.asarray(fine)[box] != 0).astype(np.uint8), r) * 255
    mask = np.asarray(Image.fromarray(fine_mask).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
    grown = _dilate_disc(np.pad(mask, pen.margin), pen.margin)
    for a in (line, mask, grown):
        a.setflags(write=False)
    return Dash(line, mask, grown)


@functools.lru_cache(maxsize=None)
def start_footprint(pen: Pen, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dy, dx) of the pixels that must be free for a snake to start at a pixel with its
    first dash pointing at `degree`: where the dash's mask is saturated, drawn from one pixel
    down-right of the start and cropped to the (2 (length + margin) + 1)^2 window, as the
    reference's dilation kernel is."""
    S, K = pen.length + pen.margin, pen.half
    mask = dash_shape(pen, degree * math.pi / 180).mask
    window = np.zeros((2 * S + 1, 2 * S + 1), dtype=np.uint8)
    _paste_max(window, mask, S + 1, S + 1, K)
    dy, dx = np.nonzero(window == 255)
    return dy - S, dx - S


def no_start(foot) -> bool:
    """The reference finds starts with OpenCV's dilation, which gives -inf at a pixel whose kernel
    pixels all fall outside the image; one such pixel makes it see no start anywhere. That happens
    exactly when the kernel is empty or misses one of the four closed quadrants around its anchor
    (then an image corner is such a pixel; else every pixel reaches one inside, for images larger
    than twice the kernel). Thin, short dashes (LRA's 32 and 64 presets) often have such kernels."""
    dy, dx = foot
    if len(dy) == 0:
        return True
    return not all(((sy * dy >= 0) & (sx * dx >= 0)).any() for sy in (1, -1) for sx in (1, -1))


@functools.lru_cache(maxsize=None)
def circle_shape(radius: float, aa: int, cut: tuple[int, int, int, int], quantized: bool = False) -> np.ndarray:
    """A circle on its own window of the image (float32 with the Lanczos lobes; float64 k/255 when
    quantized): a disc of
    radius `radius` drawn on a fine canvas `aa` times the image, centred on a pixel, and shrunk.
    The window reaches W = ceil(radius) + 7 px each way; `cut` = px of it beyond the image
    (top, bottom, left, right), since the filter renormalises at the image's edges. `quantized`:
    drawn as 0/255 and shrunk in 8 bits, then /255 (scipy.misc.imresize, as LRA's generator)."""
    W = math.ceil(radius) + 7  # beyond the disc by more than twice the filter's reach (3 px)
    top, bottom, left, right = cut
    ys = np.arange((top - W) * aa, (W + 1 - bottom) * aa)[:, None]  # fine rows, relative to the centre
    xs = np.arange((left - W) * aa, (W + 1 - right) * aa)[None, :]
    inside = xs * xs + ys * ys <= (radius * aa) ** 2
    size = (2 * W + 1 - left - right, 2 * W + 1 - top - bottom)
    if quantized:
        out = Image.fromarray(np.where(inside, 255, 0).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
        a = np.asarray(out).astype(np.float64) / 255  # (uint8 / 255 in float64, as the reference's markers)
    else:
        out = Image.fromarray(inside.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
        a = np.asarray(out, dtype=np.float32)
    a.setflags(write=False)
    return a


def _paste_max(canvas: np.ndarray, patch: np.ndarray, y: int, x: int, half: int):
    """canvas = max(canvas, patch) with the patch's centre (half, half) at (y, x), cropped to the
    canvas."""
    H, W = canvas.shape
    y0, x0 = y - half, x - half
    r0, r1 = max(y0, 0), min(y0 + patch.shape[0], H)
    c0, c1 = max(x0, 0), min(x0 + patch.shape[1], W)
    if r0 < r1 and c0 < c1:
        region = canvas[r0:r1, c0:c1]
        np.maximum(region, patch[r0 - y0:r1 - y0, c0 - x0:c1 - x0], out=region)


# ----------------------------------------------------------------------------------------------
# The process


@dataclass
class Scene:
    """The geometry of one image. A dash is (y, x, angle): a line of paddle_length px from pixel
    (y, x) towards angle (radians; y grows downwards). paths: the two main paths, dashes in growth
    order; distractors: the snakes that were placed; circles: (y, x) centres with circle_snake =
    0, 1 (main paths) or 2 + j (distractor j); connected = 1 when path `marked` carries both."""

    margin: int
    connected: int
    marked: int
    paths: list[list[tuple[int, int, float]]] = field(default_factory=list)
    distractors: list[list[tuple[int, int, float]]] = field(default_factory=list)
    circles: list[tuple[int, int]] = field(default_factory=list)
    circle_snake: list[int] = field(default_factory=list)
    attempts: int = 0  # fresh starts the main paths needed


SEEDS = 360  # first dashes point at whole degrees -180..179: shape ids 0..359


@dataclass(frozen=True, eq=False)  # hashed by identity: one per (pen, continuity), cached
class _Tables:
    """Everything the growth loop looks up, for one pen (and continuity).

    A shape id names a dash's rendering: 0..359 a first dash pointing at degree id - 180, SEEDS + i
    the dash drawn back from ring head i. The ring: the reference takes one point per ~1 px of arc
    on a circle of radius length + margin around the next pivot (offsets ring_y, ring_x), and each
    point's pixel is a candidate head; an offset (dy, dx) of a head from the (integer) pivot lies in
    [-R, R]^2, and head_of[(dy + R) W + dx + R] says which head it is (-1: none lands there).
    """

    pen: Pen
    R: int
    ring_y: np.ndarray  # float64 [n_ring]
    ring_x: np.ndarray
    head_of: np.ndarray  # int32 [W * W]
    heading: np.ndarray  # float64 [n_shapes]: direction a snake continues in after the shape
    angle: np.ndarray  # float64 [n_shapes]: direction the dash is drawn in from its start
    sin_h: np.ndarray  # sin, cos of heading
    cos_h: np.ndarray
    sin_r: np.ndarray  # sin, cos of a first dash's reversed direction [SEEDS]
    cos_r: np.ndarray
    weight: np.ndarray  # float64 [n_shapes, n_heads]: turn weight of each head after each shape
    foot: np.ndarray  # int32 [SEEDS, 5]: min dy, max dy, min dx, max dx of each start footprint, no_start
    masks: np.ndarray  # uint8 [n_shapes, P, P]
    grown: np.ndarray  # uint8 [n_shapes, G, G]
    mask_span: np.ndarray  # int32 [n_shapes, P, 2]: per patch row, the columns [first, last + 1) not 0
    grown_span: np.ndarray  # int32 [n_shapes, G, 2]
    foot_offsets: np.ndarray  # int32 [n, 2]: start footprints (start_footprint) one after the other ...
    foot_at: np.ndarray  # int32 [SEEDS + 1]: ... seed shape s's at rows [foot_at[s], foot_at[s + 1])
    inner: np.ndarray  # int32 [n, 3]: (dy, dx, head) of the ring's pixels, in ring order, each once,
    #                    around any pivot whose ring lies inside the image (empty: not the same everywhere)

    def for_c(self, M: int) -> tuple:
        """The tables as _pathfinder.c takes them (cached per image size)."""
        return _c_tables(self, M)


@functools.lru_cache(maxsize=None)
def _c_tables(t: "_Tables", M: int) -> tuple:
    p = t.pen
    return (M, p.length, p.margin, p.half, t.R, t.ring_y, t.ring_x, t.head_of, t.sin_h, t.cos_h, t.sin_h[:SEEDS],
            t.cos_h[:SEEDS], t.sin_r, t.cos_r, t.weight, t.foot, t.masks, t.grown, t.mask_span, t.grown_span,
            t.foot_offsets, t.foot_at, t.inner)


def _spans(patches: np.ndarray) -> np.ndarray:
    """int32 [n, rows, 2]: per patch row, [first, last + 1) of its nonzero columns ([0, 0) if none)."""
    nz = patches > 0
    any_ = nz.any(axis=2)
    first = np.where(any_, nz.argmax(axis=2), 0)
    last = np.where(any_, patches.shape[2] - nz[:, :, ::-1].argmax(axis=2), 0)
    return np.stack([first, last], axis=2).astype(np.int32)


def _turn_weight(heading: float, last: float, continuity: float) -> float:
    """cos²(min(continuity · |turn|, 90°)): the reference's weight of a head by its turn."""
    d = abs(heading - last)
    e = 2 * math.pi - d
    t = (e if e < d else d) * continuity
    v = math.cos(0.5 * math.pi if 0.5 * math.pi < t else t)
    v = v if v > 0.0 else 0.0
    return v * v


@functools.lru_cache(maxsize=None)
def _tables(pen: Pen, continuity: float) -> _Tables:
    step = pen.length + pen.margin
    deg_per_px = 360.0 / (2 * step * math.pi)
    points = (np.arange(0, 360, deg_per_px) * math.pi / 180).tolist()
    ring_y = np.array([step * math.sin(a) for a in points])
    ring_x = np.array([step * math.cos(a) for a in points])
    # a head's offset is floor(v) of its point's offset v, or ceil(v) when pivot + v rounds up to it
    R = step + 1
    W = 2 * R + 1
    cells = lambda v: {math.floor(v), math.ceil(v) if math.ceil(v) - v < 1e-9 else math.floor(v)}  # noqa: E731
    offsets = sorted({(dy, dx) for vy, vx in zip(ring_y.tolist(), ring_x.tolist()) for dy in cells(vy) for dx in cells(vx)})
    head_of = np.full(W * W, -1, dtype=np.int32)
    for i, (dy, dx) in enumerate(offsets):
        head_of[(dy + R) * W + dx + R] = i
    seed_angles = [(d - 180) * math.pi / 180 for d in range(SEEDS)]
    head_angles = [math.atan2(dy, dx) for dy, dx in offsets]
    heading = seed_angles + head_angles
    angle = seed_angles + [_reverse(a) for a in head_angles]
    weight = np.array([[_turn_weight(h, last, continuity) for h in head_angles] for last in heading])
    shapes = [dash_shape(pen, a) for a in angle]
    feet = [start_footprint(pen, d - 180) for d in range(SEEDS)]
    foot = np.array([[dy.min(), dy.max(), dx.min(), dx.max(), 0] if not no_start(f) else [0, 0, 0, 0, 1]
                     for f in feet for dy, dx in [f]], dtype=np.int32)
    arrays = dict(
        ring_y=ring_y, ring_x=ring_x, head_of=head_of, heading=np.array(heading), angle=np.array(angle),
        sin_h=np.array([math.sin(a) for a in heading]), cos_h=np.array([math.cos(a) for a in heading]),
        sin_r=np.array([math.sin(_reverse(a)) for a in seed_angles]),
        cos_r=np.array([math.cos(_reverse(a)) for a in seed_angles]),
        weight=weight, foot=foot, masks=np.stack([s.mask for s in shapes]), grown=np.stack([s.grown for s in shapes]))
    # around an inner pivot p a point's pixel is p + floor(v), unless v lies just below a whole number
    # (p + v may round up to it): then the ring's pixels depend on p and the C loop walks the ring
    robust = all(math.ceil(v) - v > 1e-9 or v == math.ceil(v) for v in ring_y.tolist() + ring_x.tolist())
    inner = []
    for vy, vx in zip(ring_y.tolist(), ring_x.tolist()):
        dy, dx = math.floor(vy), math.floor(vx)
        head = int(head_of[(dy + R) * W + dx + R])
        if robust and (dy, dx, head) not in inner:
            inner.append((dy, dx, head))
    arrays.update(mask_span=_spans(arrays["masks"]), grown_span=_spans(arrays["grown"]),
                  inner=np.array(inner, dtype=np.int32).reshape(-1, 3),
                  foot_offsets=np.concatenate([np.stack(f, axis=1) for f in feet]).astype(np.int32),
                  foot_at=np.cumsum([0] + [len(f[0]) for f in feet]).astype(np.int32))
    for a in arrays.values():
        a.setflags(write=False)
    return _Tables(pen=pen, R=R, **arrays)


@functools.lru_cache(maxsize=None)
def _frame(M: int, width: int) -> np.ndarray:
    """uint8 [M, M]: 255 on a frame `width` px wide, 0 inside (read-only)."""
    a = np.zeros((M, M), dtype=np.uint8)
    a[:width], a[-width:], a[:, :width], a[:, -width:] = 255, 255, 255, 255
    a.setflags(write=False)
    return a


class _Occupancy:
    """The reference's mask (uint8 0..255 standing for 0..1) and the mask dilated by a disc of
    radius margin (`grown`, kept up to date patch by patch: dilation commutes with the maximum)."""

    def __init__(self, M: int, pen: Pen, padding: int = PADDING):
        self.pen = pen
        self.mask0 = _frame(M, padding)
        self.grown0 = _frame(M, padding + pen.margin)  # the frame dilated by the disc
        self.mask, self.grown = self.mask0.copy(), self.grown0.copy()

    def reset(self):
        self.mask[...], self.grown[...] = self.mask0, self.grown0

    def add(self, y: int, x: int, mask: np.ndarray, grown: np.ndarray):
        """Put a dash's mask (its start at (y, x)) into the mask, and its dilation into grown."""
        _paste_max(self.mask, mask, y, x, self.pen.half)
        _paste_max(self.grown, grown, y, x, self.pen.half + self.pen.margin)

    def collides(self, y: int, x: int, mask: np.ndarray) -> bool:
        """Would a dash's mask (start at (y, x)) and the mask add up to >= 1.8 anywhere?"""
        K = self.pen.half
        H, W = self.mask.shape
        r0, r1, c0, c1 = max(y - K, 0), min(y + K + 1, H), max(x - K, 0), min(x + K + 1, W)
        if r0 >= r1 or c0 >= c1:
            return False
        mine = mask[r0 - y + K:r1 - y + K, c0 - x + K:c1 - x + K]
        return int((self.mask[r0:r1, c0:c1] + mine.astype(np.int16)).max()) >= COLLIDE


def _grow_one_py(tab: _Tables, occ: _Occupancy, snake: np.ndarray, u: np.ndarray, out: np.ndarray) -> bool:
    """One dash more for a snake (pivot y, x, last dash y, x, shape id), as _pathfinder.c's
    grow_one: candidate heads in ring order, each once; tries u[0], u[1], u[2]."""
    M, L, m, R = occ.mask.shape[0], tab.pen.length, tab.pen.margin, tab.R
    last = int(snake[4])
    py = math.ceil(int(snake[0]) + (L + 2 * m) * float(tab.sin_h[last]))
    px = math.ceil(int(snake[1]) + (L + 2 * m) * float(tab.cos_h[last]))
    fy, fx = py + tab.ring_y, px + tab.ring_x
    inside = (fy >= 0) & (fy < M) & (fx >= 0) & (fx < M)
    hy, hx = fy[inside].astype(np.int64), fx[inside].astype(np.int64)
    cells = (hy - py + R) * (2 * R + 1) + (hx - px + R)
    _, first = np.unique(cells, return_index=True)
    order = np.sort(first)  # each pixel once, in ring order
    hy, hx, heads = hy[order], hx[order], tab.head_of[cells[order]]
    if len(heads) == 0:
        return False
    if (heads < 0).any():
        raise RuntimeError("pathfinder: a head offset has no dash in the ring table")
    cum = np.cumsum((1.0 - occ.grown[hy, hx] / 255.0) * tab.weight[last, heads])  # left to right, as in C
    total = float(cum[-1])
    if total < 1e-4:
        return False
    for t in range(SEGMENT_TRIES):
        i = int(np.searchsorted(cum, u[t] * total, side="right"))  # the first head whose cmf exceeds u[t]
        i = 0 if i == len(cum) else i  # (the reference's argmax quirk; probability ~1e-16)
        shape = SEEDS + int(heads[i])
        if occ.collides(int(hy[i]), int(hx[i]), tab.masks[shape]):
            continue
        occ.add(int(snake[2]), int(snake[3]), tab.masks[last], tab.grown[last])
        snake[:] = py, px, hy[i], hx[i], shape
        out[:] = hy[i], hx[i], shape
        return True
    return False


def _grow_py(tab: _Tables, occ: _Occupancy, snakes: np.ndarray, u: np.ndarray, out: np.ndarray) -> bool:
    """Rounds of one dash per snake, alternately (snakes [S, 5], out [rounds, S, 3]): try t of snake
    s in round r draws u[(r S + s) 3 + t]. As _pathfinder.c's grow_all."""
    S = len(snakes)
    for r in range(len(out)):
        for s in range(S):
            k = (r * S + s) * SEGMENT_TRIES
            if not _grow_one_py(tab, occ, snakes[s], u[k:k + SEGMENT_TRIES], out[r, s]):
                return False
    return True


def _seed_dash(tab: _Tables, M: int, ty: int, tx: int, shape: int, snake: np.ndarray) -> bool:
    """A first dash from tail (ty, tx) pointing at seed `shape`; False when its head or its pivot
    (margin px behind the tail) leaves the image."""
    L, m = tab.pen.length, tab.pen.margin
    hy, hx = math.ceil(ty + L * float(tab.sin_h[shape])), math.ceil(tx + L * float(tab.cos_h[shape]))
    py, px = math.ceil(hy + (L + m) * float(tab.sin_r[shape])), math.ceil(hx + (L + m) * float(tab.cos_r[shape]))
    if not (_inside((hy, hx), M) and _inside((py, px), M)):
        return False
    snake[:] = py, px, ty, tx, shape
    return True


def _main_attempt_py(tab: _Tables, occ: _Occupancy, u: np.ndarray, w: int, sd: int, snakes, out) -> bool:
    """One attempt of the two main paths from a fresh mask, as _pathfinder.c's attempt():
    u[3t:3t+3] = direction, row, column of the first path's start, try t (the clear starts are a
    rectangle, see _Process.rectangle_ok); u[9+2t:11+2t] = direction of the second's first dash and
    where its tail lies from the first's tail; u[15:] the growth."""
    M = occ.mask.shape[0]
    for t in range(SEGMENT_TRIES):
        shape = int(u[3 * t] * SEEDS)
        f = tab.foot[shape]
        if f[4]:
            return False  # the reference's dilation leaves no start at all with this kernel
        y0, y1, x0, x1 = w - int(f[0]), M - 1 - w - int(f[1]), w - int(f[2]), M - 1 - w - int(f[3])
        if y0 > y1 or x0 > x1:
            return False  # no clear start at all
        ty, tx = y0 + int(u[3 * t + 1] * float(y1 - y0 + 1)), x0 + int(u[3 * t + 2] * float(x1 - x0 + 1))
        if _seed_dash(tab, M, ty, tx, shape, snakes[0]):
            break
    else:
        return False
    for t in range(SEGMENT_TRIES):
        shape, away = int(u[9 + 2 * t] * SEEDS), int(u[10 + 2 * t] * SEEDS)
        ty = round(int(snakes[0, 2]) + sd * float(tab.sin_h[away]))
        tx = round(int(snakes[0, 3]) + sd * float(tab.cos_h[away]))
        if _seed_dash(tab, M, ty, tx, shape, snakes[1]):
            break
    else:
        return False
    out[0] = snakes[:, 2:]
    if not _grow_py(tab, occ, snakes, u[15:], out[1:]):
        return False
    occ.add(int(snakes[1, 2]), int(snakes[1, 3]), tab.masks[snakes[1, 4]], tab.grown[snakes[1, 4]])
    return True


def _clear_at(taken: np.ndarray, ys: np.ndarray, xs: np.ndarray, foot) -> np.ndarray:
    """Which candidate starts (arrays [K]) find every footprint pixel inside the image free."""
    M = taken.shape[0]
    Y, X = ys[:, None] + foot[0], xs[:, None] + foot[1]  # (K, F)
    inside = (Y >= 0) & (Y < M) & (X >= 0) & (X < M)
    values = taken[np.clip(Y, 0, M - 1), np.clip(X, 0, M - 1)]
    return ~((values > FREE) & inside).any(axis=1)


def _clear_everywhere(taken: np.ndarray, foot) -> np.ndarray:
    """bool [M, M]: _clear_at for every pixel at once (a correlation, by FFT; exact: counts)."""
    dy, dx = foot
    R = int(max(np.abs(dy).max(), np.abs(dx).max()))
    kernel = np.zeros((2 * R + 1, 2 * R + 1))
    kernel[dy + R, dx + R] = 1.0
    from scipy import signal  # (rarely needed; importing it is slow)

    hits = signal.correlate((taken > FREE).astype(np.float64), kernel, mode="same", method="fft")
    return hits < 0.5


def _distractor_py(tab: _Tables, occ: _Occupancy, u: np.ndarray, N: int, out: np.ndarray, pivot: np.ndarray) -> bool:
    """One attempt of a distractor, as _pathfinder.c's distractor_attempt(). None starts while less
    than MIN_FREE of the image is free. Try t of the start uses u[t (2 + 2N):]: the direction, a
    uniform for the exact draw, then N candidate pixels; the first clear one wins (uniform over the
    clear set), else the clear set is computed (row-major) and drawn from. Then the growth (u after
    the 3 tries); on failure the masks are left as they were."""
    M = occ.mask.shape[0]
    if np.count_nonzero(occ.mask <= FREE) < MIN_FREE * (M * M):
        return False
    snake = np.zeros((1, 5), dtype=np.int64)
    for t in range(SEGMENT_TRIES):
        v = u[t * (2 + 2 * N):(t + 1) * (2 + 2 * N)]
        shape = int(v[0] * SEEDS)
        if tab.foot[shape, 4]:
            return False  # no start at all with this kernel (see no_start)
        foot = start_footprint(tab.pen, shape - 180)
        ys, xs = (v[2::2] * float(M)).astype(np.int64), (v[3::2] * float(M)).astype(np.int64)
        hits = np.flatnonzero(_clear_at(occ.mask, ys, xs, foot))
        if len(hits):
            ty, tx = int(ys[hits[0]]), int(xs[hits[0]])
        else:
            all_y, all_x = np.nonzero(_clear_everywhere(occ.mask, foot))
            if len(all_y) == 0:
                return False  # no clear start at all
            i = int(v[1] * float(len(all_y)))
            ty, tx = int(all_y[i]), int(all_x[i])
        if _seed_dash(tab, M, ty, tx, shape, snake[0]):
            break
    else:
        return False
    pivot[:] = snake[0, :2]
    out[0] = snake[0, 2:]
    saved = occ.mask.copy(), occ.grown.copy()
    rounds = len(out) - 1
    if not _grow_py(tab, occ, snake, u[SEGMENT_TRIES * (2 + 2 * N):], out[1:].reshape(rounds, 1, 3)):
        occ.mask[...], occ.grown[...] = saved
        return False
    occ.add(int(snake[0, 2]), int(snake[0, 3]), tab.masks[snake[0, 4]], tab.grown[snake[0, 4]])
    return True


def _inside(p: tuple[int, int], M: int) -> bool:
    return 0 <= p[0] < M and 0 <= p[1] < M


def _pen(cfg, margin: int) -> Pen:
    return Pen(cfg.paddle_length, cfg.paddle_thickness, margin, cfg.antialias_scale, cfg.style.quantized)


class _Process:
    """One image's draws, in the reference's order of decisions."""

    def __init__(self, rng: np.random.Generator, cfg, margin: int):
        self.rng, self.cfg, self.M = rng, cfg, cfg.size
        self.style = cfg.style
        self.pen = _pen(cfg, margin)
        self.tab = _tables(dataclasses.replace(self.pen, quantized=False), cfg.continuity)  # (masks only)
        self.occ = _Occupancy(cfg.size, self.pen, self.style.padding)

    # -- where a snake may start

    def _uniform_start(self, taken: np.ndarray, foot) -> tuple[int, int] | None:
        """A pixel drawn uniformly from the clear starts, or None when there is none: the first
        clear one of uniform candidates (uniform over the clear set), else an exact draw. (A
        sparse part of the footprint screens the candidates first: a necessary condition.)"""
        sparse = (foot[0][::SCREEN], foot[1][::SCREEN])
        for _ in range(SEED_BATCHES):
            ys, xs = self.rng.integers(0, self.M, size=(2, SEED_BATCH))
            maybe = np.flatnonzero(_clear_at(taken, ys, xs, sparse))
            for c in range(0, len(maybe), 8):
                part = maybe[c:c + 8]
                hits = part[_clear_at(taken, ys[part], xs[part], foot)]
                if len(hits):
                    return int(ys[hits[0]]), int(xs[hits[0]])
        ys, xs = np.nonzero(_clear_everywhere(taken, foot))
        if len(ys) == 0:
            return None
        i = int(self.rng.integers(0, len(ys)))
        return int(ys[i]), int(xs[i])

    def start(self, taken: np.ndarray, snake: np.ndarray) -> bool:
        """A snake's first dash, in a direction of whole degrees, from a pixel drawn uniformly from
        those where it covers nothing `taken`; a start whose head or pivot leaves the image is tried
        again (3 tries in all)."""
        for _ in range(SEGMENT_TRIES):
            shape = int(self.rng.integers(0, SEEDS))
            if self.tab.foot[shape, 4]:
                return False  # no start at all with this kernel (see no_start)
            tail = self._uniform_start(taken, start_footprint(self.tab.pen, shape - 180))
            if tail is None:
                return False
            if _seed_dash(self.tab, self.M, *tail, shape, snake):
                return True
        return False

    # -- the main paths

    def _rectangle_ok(self) -> bool:
        """The first path's start must keep its footprint clear of a frame 2 seed_distance wide.
        When that frame is wider than twice the footprint's reach (length + margin), a footprint
        that would leave the image crosses the frame first, so the clear starts are exactly a
        rectangle per direction and can be drawn directly (every preset)."""
        return 2 * self.cfg.seed_distance > 2 * (self.pen.length + self.pen.margin)

    def _attempt_general(self, snakes: np.ndarray, out: np.ndarray) -> bool:
        """One attempt of the main paths where the clear starts are not a rectangle (Python only)."""
        M, sd = self.M, self.cfg.seed_distance
        self.occ.reset()
        if not self.start(_frame(M, max(self.style.padding, 2 * sd)), snakes[0]):
            return False
        for _ in range(SEGMENT_TRIES):
            shape, away = int(self.rng.integers(0, SEEDS)), int(self.rng.integers(0, SEEDS))
            ty = round(int(snakes[0, 2]) + sd * float(self.tab.sin_h[away]))
            tx = round(int(snakes[0, 3]) + sd * float(self.tab.cos_h[away]))
            if _seed_dash(self.tab, M, ty, tx, shape, snakes[1]):
                break
        else:
            return False
        out[0] = snakes[:, 2:]
        rounds = self.cfg.contour_length - 1
        if not _grow_py(self.tab, self.occ, snakes, self.rng.random(rounds * 2 * SEGMENT_TRIES), out[1:]):
            return False
        self.occ.add(int(snakes[1, 2]), int(snakes[1, 3]), self.tab.masks[snakes[1, 4]], self.tab.grown[snakes[1, 4]])
        return True

    def main_paths(self) -> tuple[np.ndarray, int]:
        """Attempts of the two main paths until one grows both to full length: (dashes [n, 2, 3]
        as (start y, x, shape id), number of attempts). Attempts come in blocks of ATTEMPT_BLOCK,
        each with its own uniforms; the first success in a block counts."""
        cfg, occ, M = self.cfg, self.occ, self.M
        rounds = cfg.contour_length - 1
        snakes = np.zeros((2, 5), dtype=np.int64)
        out = np.zeros((rounds + 1, 2, 3), dtype=np.int64)
        w = max(self.style.padding, 2 * cfg.seed_distance)
        for done in range(0, MAX_ATTEMPTS, ATTEMPT_BLOCK):
            if not self._rectangle_ok():
                if self._attempt_general(snakes, out):
                    return out, done + 1
                continue
            u = self.rng.random((ATTEMPT_BLOCK, 15 + 6 * rounds))
            if _pathfinder_c is not None:
                found = _pathfinder_c.main_paths(self.tab.for_c(M), occ.mask, occ.grown, occ.mask0, occ.grown0, w,
                                                 cfg.seed_distance, u, snakes, out)
            else:
                found = -1
                for a in range(ATTEMPT_BLOCK):
                    occ.reset()
                    if _main_attempt_py(self.tab, occ, u[a], w, cfg.seed_distance, snakes, out):
                        found = a
                        break
            if found >= 0:
                return out, done + found + 1
        raise RuntimeError(
            f"pathfinder: two main paths of {cfg.contour_length} dashes did not fit into a {M}x{M} image in "
            f"{MAX_ATTEMPTS} attempts; use shorter paths, a smaller margin or a larger size")

    # -- distractors

    def distractor(self) -> tuple[np.ndarray, tuple[int, int]] | None:
        """A distractor's dashes [n, 3] (start y, x, shape id) and its start pivot, or None
        (leaving no trace) when it does not fit."""
        rounds = self.cfg.distractor_length - 1
        u = self.rng.random(SEGMENT_TRIES * (2 + 2 * START_CANDIDATES) + SEGMENT_TRIES * rounds)
        out = np.zeros((rounds + 1, 3), dtype=np.int64)
        pivot = np.zeros(2, dtype=np.int64)
        if _pathfinder_c is not None:
            ok = _pathfinder_c.distractor(self.tab.for_c(self.M), self.occ.mask, self.occ.grown, START_CANDIDATES,
                                          u, out, pivot)
        else:
            ok = _distractor_py(self.tab, self.occ, u, START_CANDIDATES, out, pivot)
        return (out, (int(pivot[0]), int(pivot[1]))) if ok else None


def sample_scene(rng: np.random.Generator, cfg) -> Scene:
    """Draw the geometry of one image (cfg: a PathfinderConfig or an LRAPathfinderConfig), as the
    reference does: class, margin, main paths (started afresh until both grow to full length),
    distractors, then which path gets the first circle."""
    connected = int(rng.integers(0, 2))
    margin = int(cfg.margins[int(rng.integers(0, len(cfg.margins)))])
    proc = _Process(rng, cfg, margin)
    out, attempts = proc.main_paths()
    as_dashes = lambda rows: [(int(y), int(x), float(proc.tab.angle[k])) for y, x, k in rows]  # noqa: E731
    paths = [as_dashes(out[:, s]) for s in (0, 1)]
    distractors, circles = [], []
    for _ in range(cfg.num_distractors):
        for _ in range(1 + cfg.distractor_retries):
            placed = proc.distractor()
            if placed is not None:
                dashes, pivot = placed
                distractors.append(as_dashes(dashes))
                if proc.style.distractor_circle is not None:
                    circles.append(distractors[-1][0][:2] if proc.style.distractor_circle == "tip" else pivot)
                break
    marked = int(rng.integers(0, 2))
    other_end = marked if connected else 1 - marked
    main_circles = [paths[marked][0][:2], paths[other_end][-1][:2]]
    return Scene(margin=margin, connected=connected, marked=marked, paths=paths, distractors=distractors,
                 circles=main_circles + circles, circle_snake=[marked, other_end] + [2 + j for j in range(len(circles))],
                 attempts=attempts)


# ----------------------------------------------------------------------------------------------
# Rendering


@functools.lru_cache(maxsize=None)
def _line(pen: Pen, angle: float, intensity: float) -> np.ndarray:
    """A dash's brightness as the reference places it: /255, times the intensity, through a float32
    image."""
    line = dash_shape(pen, angle).line.astype(np.float64) / 255.0
    if intensity != 1.0:
        line = line * intensity
    line = line.astype(np.float32).astype(np.float64)
    line.setflags(write=False)
    return line


def _draw_dashes(canvas: np.ndarray, dashes, pen: Pen, intensity: float):
    for y, x, angle in dashes:
        _paste_max(canvas, _line(pen, angle, intensity), y, x, pen.half)


def _draw_circle(canvas: np.ndarray, y: int, x: int, cfg):
    M, W = cfg.size, math.ceil(cfg.marker_radius) + 7
    cut = (max(0, W - y), max(0, y + W - (M - 1)), max(0, W - x), max(0, x + W - (M - 1)))
    patch = circle_shape(cfg.marker_radius, cfg.antialias_scale, cut, cfg.style.quantized).astype(np.float64)
    region = (slice(y - W + cut[0], y + W + 1 - cut[1]), slice(x - W + cut[2], x + W + 1 - cut[3]))
    np.maximum(canvas[region], patch, out=canvas[region])


def _draw(scene: Scene, cfg) -> tuple[np.ndarray, list[np.ndarray], callable]:
    """The image as floats, each main path alone, and the reference's rescaling to 0..255 (before
    its rounding to uint8) for this image."""
    M, style = cfg.size, cfg.style
    pen = _pen(cfg, scene.margin)
    paths = [np.zeros((M, M)), np.zeros((M, M))]
    for canvas, dashes in zip(paths, scene.paths):
        _draw_dashes(canvas, dashes, pen, style.main_intensity)
    image = np.maximum(paths[0], paths[1])
    for dashes in scene.distractors:
        _draw_dashes(image, dashes, pen, style.distractor_intensity)
    for y, x in scene.circles:
        _draw_circle(image, y, x, cfg)
    lo, hi = float(image.min()), float(image.max())
    if style.rescale == "rint":  # skimage's img_as_ubyte of the min-max rescaled image (DLR)
        to_uint8 = lambda a: np.rint((a - lo) / (hi - lo) * 255.0)  # noqa: E731
    else:  # scipy.misc.bytescale (LRA): a scale factor, then +0.5 and truncation
        scale = 255.0 / (hi - lo if hi > lo else 1.0)
        to_uint8 = lambda a: np.floor(np.clip((a - lo) * scale, 0.0, 255.0) + 0.5)  # noqa: E731
    return image, paths, to_uint8


def render_scene(scene: Scene, cfg: PathfinderConfig) -> dict[str, np.ndarray]:
    """inputs uint8 [M, M], targets uint8 [M, M], connected uint8 []."""
    image, paths, to_uint8 = _draw(scene, cfg)
    targets = np.zeros(image.shape, dtype=np.uint8)
    for s, canvas in enumerate(paths):
        label = 1 + int(scene.connected and s == scene.marked)
        rows, cols = np.nonzero(canvas.any(axis=1))[0], np.nonzero(canvas.any(axis=0))[0]
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # the path's own pixels
        lit = to_uint8(canvas[box]) > 0
        np.maximum(targets[box], np.where(lit, label, 0).astype(np.uint8), out=targets[box])
    return {"inputs": to_uint8(image).astype(np.uint8), "targets": targets,
            "connected": np.array(scene.connected, dtype=np.uint8)}


def lra_pathfinder(rng: np.random.Generator, cfg: LRAPathfinderConfig) -> dict[str, np.ndarray]:
    """One image of LRA's Pathfinder and its label: 1 when one main path carries both circles.

    size 32, hard (defaults): inputs uint8 [32, 32], two dashed paths of 14 dashes among up to 5
    short distractors (no circles on distractors), rescaled so that the brightest pixel is 255;
    targets uint8 [] = 1 (the circles sit on both ends of one path) or 0 (one on each path).
    """
    scene = sample_scene(rng, cfg)
    image, _, to_uint8 = _draw(scene, cfg)
    return {"inputs": to_uint8(image).astype(np.uint8), "targets": np.array(scene.connected, dtype=np.uint8)}


def pathfinder_seg(rng: np.random.Generator, cfg: PathfinderConfig) -> dict[str, np.ndarray]:
    """One Pathfinder-Segmentation image and its per-pixel labels.

    M = 128 (defaults): inputs uint8 [128, 128], white dashed strokes on black; targets uint8
    [128, 128] with ~94 % zeros; connected = 1  ->  the 14 dashes of the path with two circles
    (with their faint halo) are labelled 2, the 14 dashes of the other main path 1; distractors,
    circles and background 0. connected = 0  ->  both main paths are labelled 1, no pixel is 2.
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
LEGEND = tuple((name, tuple(int(v) for v in LABEL_COLOURS[k])) for k, name in (
    (2, "2: the main path with a circle at both ends"), (1, "1: the other main path"))) + (
    ("0: background, the image at 30 %", (77, 77, 77)),)  # the colours of `picture`, named in `show -o`
PANELS = ("inputs: the image", "targets: the labels in colour")  # `picture`'s halves, titled in `show -o`


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


def describe_lra(sample: dict[str, np.ndarray], cfg: LRAPathfinderConfig | None = None, width: int = 64) -> str:
    """A text view of an LRA Pathfinder image: its label, then the image at most `width` characters
    wide, one character per block of pixels by its brightest pixel: '#' >= 192 (circles and the
    brightest dashes), '+' >= 64, '.' other lit pixels, ' ' black."""
    img = np.asarray(sample["inputs"])
    M = img.shape[0]
    f = max(1, -(-M // width))
    label = int(sample["targets"])
    lines = [f"pathfinder {M}x{M}  label={label} ({'the two circles are joined' if label else 'not joined'})"
             f"  lit pixels {100 * (img > 0).mean():.1f} %",
             f"1 character = {f}x{f} pixels; # >= 192, + >= 64, . other lit pixels"]
    b = img[: M // f * f, : M // f * f].reshape(M // f, f, M // f, f).max(axis=(1, 3))
    chars = np.where(b >= 192, "#", np.where(b >= 64, "+", np.where(b > 0, ".", " ")))
    lines += ["".join(row).rstrip() for row in chars]
    return "\n".join(lines)


def picture_lra(sample: dict[str, np.ndarray], cfg: LRAPathfinderConfig | None = None) -> np.ndarray:
    """RGB uint8: the image enlarged to at least 256 px with whole-pixel blocks (nearest), so a
    32 x 32 Pathfinder image is readable; the label is in `describe_lra`."""
    img = np.asarray(sample["inputs"], dtype=np.uint8)
    k = max(1, 256 // img.shape[0])
    big = np.kron(img, np.ones((k, k), dtype=np.uint8))
    return np.repeat(big[:, :, None], 3, axis=2)
