"""Views of one sample for ``lrbench show``: text, or a PNG picture. Every view asks the task for its
facts (registry: ``describe``, ``picture``, ``legend``, ``channels``, ``token_names``/``token_kinds``)
and never tests its name; a task without them gets the generic view drawn from its fields.

Text: the task's own ``describe``, else the first positions and the first scored ones (a regression
task's targets sit under its last t_out positions), with the channels named.

Pictures (``show -o``):
- a signal task: a matplotlib figure, one panel per input channel group and per target channel on
  one position axis; the targets under the positions they score, marker channels (Select's) drawn
  across every panel, positional channels left out (the title says so);
- a token task: its first tokens in rows, coloured by kind, each target under its token (matplotlib);
- an image task, or a task with its own ``picture``: that picture enlarged by a whole factor with
  nearest-neighbour pixels, a pixel ruler, a caption and the task's legend, drawn with PIL alone.

matplotlib is an optional extra (``pip install 'lrbench-synth[plot]'``), imported only to draw.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lrbench.figures import figure
from lrbench.registry import ChannelGroup
from lrbench.storage import atomic_write_bytes

MAX_PANELS = 8  # target channels drawn, one panel each; beyond it the title says which are
MAX_ROWS = 32  # channels of an input group drawn as the rows of one heat map (likewise)
TOKENS_SHOWN, TOKENS_PER_ROW = 256, 32
LONG = 1024  # a series longer than this is drawn as a band (see _line)
MIN_SIDE = 512  # an image picture is enlarged by a whole factor until it is at least this tall
INPUT, TARGET, MARK, UNSCORED = "#1f5fa8", "#d9730d", "#c0392b", "#ececec"


# -- text ---------------------------------------------------------------------------------------


def describe(task, sample: dict[str, np.ndarray], rows: int = 8) -> str:
    if task.spec.describe is not None:
        return task.spec.describe(sample, task.config)
    inputs, targets = _rows(sample["inputs"]), np.asarray(sample["targets"])
    lines = [f"{task.name} {task.config}"]
    for name, a in sample.items():
        a = np.asarray(a)
        lines.append(f"  {name}: {a.dtype} {list(a.shape)}  min {a.min():.4g}  max {a.max():.4g}")
    groups = channel_groups(task, "inputs", inputs.shape[1])
    lines.append("  input channels: " + " | ".join(_group_label(g) for g in groups))
    if targets.ndim == 2:
        named = channel_groups(task, "targets", targets.shape[1])
        lines.append("  target channels: " + " | ".join(_group_label(g) for g in named))
    lines += [f"  {name} at positions {_some(where)}" for name, where in _marked(groups, inputs)]
    if targets.ndim == 0:
        lines.append(f"target (one per sample): {_value(targets)}; first {rows} positions:")
        return "\n".join(lines + _table(inputs, None, 0, range(min(rows, len(inputs)))))
    targets = _rows(targets)
    first = len(inputs) - len(targets) if task.t_out is not None else 0
    if first == 0:
        lines.append(f"first {rows} positions (inputs) and their targets (one per position):")
        return "\n".join(lines + _table(inputs, targets, 0, range(min(rows, len(inputs)))))
    last = len(inputs) - 1
    lines.append(f"first {rows} positions (inputs); the targets sit under the last {len(targets)} positions, "
                 f"{first}..{last}:")
    lines += _table(inputs, targets, first, range(min(rows, first)))
    shown = range(first, min(first + rows, len(inputs)))
    lines.append(f"first {len(shown)} scored positions, {shown[0]}..{shown[-1]}, and their targets:")
    return "\n".join(lines + _table(inputs, targets, first, shown))


def _table(inputs: np.ndarray, targets: np.ndarray | None, first: int, positions) -> list[str]:
    """One line per position: its inputs, and its targets where it carries them ('-' elsewhere)."""
    lines = []
    for i in positions:
        x = " ".join(_value(v) for v in inputs[i])
        j = i - first
        y = " ".join(_value(v) for v in targets[j]) if targets is not None and 0 <= j < len(targets) else "-"
        lines.append(f"  {i:>6}  x: {x}   y: {y}")
    return lines


def _rows(a) -> np.ndarray:
    """A field as [positions, channels]: a sequence of scalars gets one channel, an image its pixels
    in row-major order (the sequence view)."""
    a = np.asarray(a)
    return a.reshape(-1, 1) if a.ndim != 2 or a.dtype == np.uint8 else a


def _value(v) -> str:
    return f"{v:+.4f}" if np.issubdtype(np.asarray(v).dtype, np.floating) else f"{int(v):d}"


def _some(where: np.ndarray, n: int = 16) -> str:
    more = f", ... ({len(where)} in all)" if len(where) > n else ""
    return ", ".join(str(int(i)) for i in where[:n]) + more


def channel_groups(task, key: str, width: int) -> tuple[ChannelGroup, ...]:
    """The channel groups of a field [T, width]: the task's, else one per channel."""
    groups = task.spec.channels(task.config).get(key) if task.spec.channels is not None else None
    return tuple(groups) if groups else tuple(ChannelGroup(f"{key}[:, {c}]") for c in range(width))


def _group_label(g: ChannelGroup) -> str:
    return g.name + (f": {g.width} channels" if g.width > 1 else "") + (" (0/1 marker)" if g.role == "marker" else "")


def _slices(groups) -> list[tuple[ChannelGroup, slice]]:
    out, start = [], 0
    for g in groups:
        out.append((g, slice(start, start + g.width)))
        start += g.width
    return out


def _marked(groups, inputs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(name, positions) of each marker group: the positions where any of its channels is set."""
    return [(g.name, np.flatnonzero(inputs[:, s].any(axis=1))) for g, s in _slices(groups) if g.role == "marker"]


# -- the PNG file ---------------------------------------------------------------------------------


def save_png(task, sample: dict[str, np.ndarray], path: str | Path) -> None:
    """Draw the sample and write the PNG atomically: an earlier file stays until the new one is whole."""
    atomic_write_bytes(path, png_bytes(task, sample))


def png_bytes(task, sample: dict[str, np.ndarray]) -> bytes:
    if task.spec.picture is not None or task.view == "image":
        img = framed_image(task, sample)[0]
    else:
        fig = token_figure(task, sample) if task.view == "tokens" else signal_figure(task, sample)
        fig.canvas.draw()
        # a plot holds few colours: a 128-colour palette keeps its PNG a few times smaller than RGBA
        rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[:, :, :3])
        img = rgb.quantize(colors=128, dither=0)  # 0: no dithering, whose noise would not compress
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _figure(task, width: float, height: float):
    """An empty figure to draw `task` on; without matplotlib, a one-line error naming the extra."""
    return figure(f"show -o draws {task.name} as a plot and needs matplotlib: pip install 'lrbench-synth[plot]'",
                  figsize=(width, height), dpi=100)


# -- signal tasks: one panel per input group and per target channel --------------------------------


def signal_figure(task, sample: dict[str, np.ndarray]):
    """The sample as a matplotlib Figure: input panels, then target panels on the same position
    axis, then (when the scored positions are a short tail) those positions again, enlarged."""
    x = _rows(sample["inputs"]).astype(np.float64)  # (T, C)
    T = len(x)
    parts = _slices(channel_groups(task, "inputs", x.shape[1]))
    values = [(g, x[:, s]) for g, s in parts if g.role == "value"]
    marks = _marked([g for g, _ in parts], x)
    y, first = _scored(task, sample)
    targets = _target_channels(task, y)
    shown = targets[:MAX_PANELS]
    zoom = y is not None and 4 * len(y) <= T
    n = max(1, len(values) + len(shown) + zoom)
    fig = _figure(task, 12.0, 1.1 + 1.55 * n)
    axes = [fig.add_subplot(n, 1, 1)]
    axes += [fig.add_subplot(n, 1, i + 1, sharex=axes[0]) for i in range(1, len(values) + len(shown))]
    for ax, (g, cols) in zip(axes, values):
        _input_panel(ax, g, cols, marks)
    for ax, (name, col) in zip(axes[len(values):], shown):
        _target_panel(ax, name, col, first)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[0].set_xlim(-0.5, T - 0.5)
    axes[-1].set_xlabel("position")
    if zoom:
        _zoom_panel(fig.add_subplot(n, 1, n), shown, first, T)
    fig.suptitle(_title(task, sample, parts, targets, shown), fontsize=11)
    return fig


def _scored(task, sample) -> tuple[np.ndarray | None, int]:
    """The targets as floats [T_out, C_out] (NaN where a ragged field holds its pad) and the first
    position they score; (None, 0) for one target per sample."""
    y = np.asarray(sample["targets"])
    if y.ndim == 0:
        return None, 0
    y = _rows(y).astype(np.float64)
    feature = task.features["targets"]
    if feature.ragged:
        y[y == feature.pad] = np.nan
    first = len(_rows(sample["inputs"])) - len(y) if task.t_out is not None else 0
    return y, first


def _target_channels(task, y: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """(name, values) of every target channel, named by the task's groups."""
    if y is None:
        return []
    names = []
    for g in channel_groups(task, "targets", y.shape[1]):
        names += [g.name] if g.width == 1 else [f"{g.name} [{c}]" for c in range(g.width)]
    return list(zip(names, y.T))


def _title(task, sample, parts, targets, shown) -> str:
    notes = [f"not drawn: {g.name}" for g, _ in parts if g.role == "position"]
    if np.ndim(sample["targets"]) == 0:
        notes.append(f"target (one per sample): {_value(np.asarray(sample['targets']))}")
    if len(shown) < len(targets):
        notes.append(f"targets: channels 0-{len(shown) - 1} of {len(targets)} shown")
    return f"{task.name}  {task.config}" + ("\n" + "; ".join(notes) if notes else "")


def _style(ax, title: str) -> None:
    ax.set_title(title, loc="left", fontsize=9)
    ax.tick_params(labelsize=8)
    if not ax.images:
        ax.grid(True, color="#dddddd", linewidth=0.5)


def _line(n: int) -> dict:
    """A series of n points: smooth when short; thin and not anti-aliased when long, where it is a
    dense band either way and anti-aliasing would make the PNG several times larger."""
    return dict(linewidth=0.8) if n <= LONG else dict(linewidth=0.6, antialiased=False)


def _input_panel(ax, g: ChannelGroup, cols: np.ndarray, marks) -> None:
    """One channel as a line, several as a heat map (a row per channel, its first MAX_ROWS); each
    marker group as thin lines across the panel at its positions, with the values there as dots."""
    if cols.shape[1] == 1:
        ax.plot(np.arange(len(cols)), cols[:, 0], color=INPUT, **_line(len(cols)))
        for name, where in marks:
            ax.plot(where, cols[where, 0], "o", color=MARK, markersize=3.5, label=f"value where {name}")
        title = g.name
    else:
        title = _heat_map(ax, g, cols)
    for name, where in marks:
        ax.vlines(where, 0, 1, transform=ax.get_xaxis_transform(), colors=MARK, linewidth=0.8, alpha=0.45,
                  label=name, zorder=3)
    _style(ax, title)
    if marks:  # above the panel, right of its title
        ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2 * len(marks),
                  frameon=False, borderaxespad=0.1)


def _heat_map(ax, g: ChannelGroup, cols: np.ndarray) -> str:
    """Channels as rows of colour, blue (negative) to red (positive); returns the panel's title. (No
    colour bar: it would narrow this panel and break the shared position axis.)"""
    from matplotlib import colormaps

    k = min(cols.shape[1], MAX_ROWS)
    heat = colormaps["RdBu_r"].resampled(11)  # 11 shades, readable (and a long map stays a small PNG)
    bound = float(np.abs(cols[:, :k]).max()) or 1.0
    ax.imshow(cols[:, :k].T, aspect="auto", cmap=heat, vmin=-bound, vmax=bound, interpolation="nearest",
              extent=(-0.5, len(cols) - 0.5, k - 0.5, -0.5))
    ax.set_yticks(range(k) if k <= 8 else range(0, k, max(1, k // 8)))
    ax.set_ylabel("channel", fontsize=8)
    more = f"channels 0-{k - 1} of {cols.shape[1]}" if k < cols.shape[1] else f"{k} channels"
    return f"{g.name}: {more} as rows, blue {-bound:.2g} .. white 0 .. red {bound:.2g}"


def _target_panel(ax, name: str, col: np.ndarray, first: int) -> None:
    """A target channel under the positions it scores; the unscored ones shaded."""
    pos = np.arange(first, first + len(col))
    gaps = np.isnan(col).any()  # unscored positions inside (a ragged field's pad): dots, or lone values vanish
    style = dict(marker="o", markersize=3) if len(col) <= 64 else dict(marker=".", markersize=2) if gaps else {}
    ax.plot(pos, col, color=TARGET, **_line(len(col)), **style)
    if first > 0:
        ax.axvspan(-0.5, first - 0.5, color=UNSCORED, zorder=0)
        name += f"  (scores positions {first}..{first + len(col) - 1}; none before)"
    _style(ax, name)


def _zoom_panel(ax, shown, first: int, T: int) -> None:
    pos = np.arange(first, T)
    for c, (name, col) in enumerate(shown):
        ax.plot(pos, col, marker="o", markersize=3, linewidth=0.8, color=TARGET if len(shown) == 1 else f"C{c % 10}")
    ax.set_xlim(first - 0.5, T - 0.5)
    ax.set_xlabel("position")
    _style(ax, f"the scored positions {first}..{T - 1} enlarged: targets")


# -- token tasks: rows of tokens, each target under its token -----------------------------------------


def token_cells(task, sample: dict[str, np.ndarray], limit: int = TOKENS_SHOWN) -> tuple[list[str], list[str], int]:
    """The names of the first ``limit`` tokens (padding left out), the target under each ('' where a
    token carries none) and how many tokens the sample has."""
    tokens, n = _tokens(task, sample)
    y = np.asarray(sample["targets"])
    per_position = y.ndim == 1 and len(y) >= n
    pad = task.features["targets"].pad if task.features["targets"].ragged else None
    names = task.spec.token_names
    shown = range(min(limit, n))
    cells = [names[t] if names else str(t) for t in tokens[: len(shown)]]
    values = [_value(y[i]) if per_position and y[i] != pad else "" for i in shown]
    return cells, values, n


def _tokens(task, sample) -> tuple[np.ndarray, int]:
    """The token ids and their count: a ragged field's trailing padding left out."""
    tokens = np.asarray(sample["inputs"]).astype(np.int64)
    feature = task.features["inputs"]
    if feature.ragged:
        kept = np.flatnonzero(tokens != feature.pad)
        tokens = tokens[: kept[-1] + 1] if len(kept) else tokens[:0]
    return tokens, len(tokens)


KIND_COLOURS = ("#cfe2f3", "#f9cb9c", "#b6d7a8", "#d9d2e9", "#ead1dc", "#fff2cc", "#d0e0e3", "#f4cccc")
TARGET_CELL = "#fff5b8"


def token_figure(task, sample: dict[str, np.ndarray]):
    """The first TOKENS_SHOWN tokens in rows of TOKENS_PER_ROW, each cell coloured by the token's kind
    and named, with the target under each token that carries one (one target per sample: the title)."""
    cells, values, n = token_cells(task, sample)
    tokens = _tokens(task, sample)[0][: len(cells)]
    rows, band = max(1, -(-len(cells) // TOKENS_PER_ROW)), 3 if any(values) else 2  # names, [targets,] gap
    fig = _figure(task, 12.0, 1.4 + 0.2 * band * rows)
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    kinds, colour_of = _kind_colours(task)
    grid = np.ones((band * rows, TOKENS_PER_ROW, 3))
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, value) in enumerate(zip(cells, values)):
        r, c = divmod(i, TOKENS_PER_ROW)
        grid[band * r, c] = to_rgb(colour_of[kinds[tokens[i]]])
        ax.text(c, band * r, name, ha="center", va="center", fontsize=7)
        if value:
            grid[band * r + 1, c] = to_rgb(TARGET_CELL)
            ax.text(c, band * r + 1, value, ha="center", va="center", fontsize=8, fontweight="bold")
    ax.imshow(grid[:-1], aspect="auto", interpolation="nearest")  # the last gap left out
    ax.vlines(np.arange(TOKENS_PER_ROW + 1) - 0.5, -0.5, band * rows - 1.5, colors="white", linewidth=1.5)
    ax.set_yticks(band * np.arange(rows), [str(TOKENS_PER_ROW * r) for r in range(rows)], fontsize=8)
    ax.set_xticks(np.arange(0, TOKENS_PER_ROW, 4), [f"+{c}" for c in range(0, TOKENS_PER_ROW, 4)], fontsize=8)
    ax.set_ylabel("row starts at", fontsize=8)
    handles = [Patch(color=colour_of[k], label=k) for k in colour_of]
    handles += [Patch(color=TARGET_CELL, label="target of the token above")] if band == 3 else []
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(_token_title(task, sample, len(cells), n, any(values)), fontsize=10)
    return fig


def _kind_colours(task) -> tuple[list[str], dict[str, str]]:
    """The kind of every token id (its name when the task gives no kinds) and a colour per kind."""
    kinds = list(task.spec.token_kinds or task.spec.token_names or range(task.vocab_size))
    kinds = [str(k) for k in kinds]
    order = [k for i, k in enumerate(kinds) if k not in kinds[:i] and k != "pad"]
    return kinds, {k: KIND_COLOURS[i % len(KIND_COLOURS)] for i, k in enumerate(order)}


def _token_title(task, sample, shown: int, n: int, any_targets: bool) -> str:
    title = f"{task.name}: tokens 0..{shown - 1} of {n:,}, in rows of {TOKENS_PER_ROW}"
    y = np.asarray(sample["targets"])
    if y.ndim == 0:
        return title + f"; target (one per sample): {_value(y)}"
    return title + ("; each target under the token it scores" if any_targets else "; no target among these tokens")


# -- images: the picture enlarged, with a ruler, a caption and a legend (PIL) ----------------------------


def image_picture(task, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple[str, ...]]:
    """A 2-D uint8 input beside its targets, both grey, the targets stretched to 0..255 (one label
    per image: the image alone, its label in the caption); and the panels' titles."""
    inputs = np.asarray(sample["inputs"], dtype=np.float64)
    targets = np.asarray(sample["targets"], dtype=np.float64)
    if targets.shape != inputs.shape:
        return np.repeat(inputs.astype(np.uint8)[:, :, None], 3, axis=2), ("inputs",)
    span = float(targets.max() - targets.min()) or 1.0
    both = np.concatenate([inputs, (targets - targets.min()) / span * 255.0], axis=1)
    return np.repeat(np.rint(both).astype(np.uint8)[:, :, None], 3, axis=2), ("inputs", "targets, stretched")


def framed_image(task, sample: dict[str, np.ndarray]) -> tuple[Image.Image, tuple[int, int], int]:
    """The task's picture enlarged k times with whole pixels, its panels titled, rulers in image
    pixels along its left and top edges, the text view's first line above it and the task's legend
    below. Returns the image, the (left, top) corner of the enlarged picture in it, and k."""
    if task.spec.picture is not None:
        rgb, panels = np.asarray(task.spec.picture(sample, task.config), dtype=np.uint8), task.spec.panels
    else:
        rgb, panels = image_picture(task, sample)
    k = max(1, MIN_SIDE // rgb.shape[0])
    big = np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    side = np.asarray(sample["inputs"]).shape[0] if task.view == "image" else rgb.shape[0]
    scale = big.shape[0] / side  # screen pixels per image pixel (the task's picture may be enlarged already)
    font = _font(14)
    caption = [describe(task, sample).splitlines()[0],
               f"1 image pixel = {scale:g} x {scale:g} screen pixels; rulers in image pixels"]
    left, top = 60, 2 * LINE + 30 + (LINE if panels else 0)
    rows = _legend_rows(task.spec.legend, font, max(big.shape[1], 600))
    width = max(left + big.shape[1] + 24, 24 + max(_width(font, c) for c in caption))
    img = Image.new("RGB", (width, top + big.shape[0] + 16 + LINE * len(rows) + 8), "white")
    img.paste(Image.fromarray(big), (left, top))
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(caption):
        _text(draw, font, (12, 14 + i * LINE), text)
    edges = [round(p * big.shape[1] / max(1, len(panels))) for p in range(max(1, len(panels)) + 1)]
    for title, a, b in zip(panels, edges, edges[1:]):
        _text(draw, font, (left + (a + b) / 2, top - 38), title, "centre")
    _rulers(draw, font, (left, top), big.shape[0], edges, scale)
    _legend(draw, font, rows, (left, top + big.shape[0] + 12))
    return img, (left, top), k


LINE, INK = 22, (20, 20, 20)  # screen pixels between lines of text; its colour


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the small bitmap font
        return ImageFont.load_default()


def _width(font, text: str) -> int:
    left, _, right, _ = ImageDraw.Draw(Image.new("1", (1, 1))).textbbox((0, 0), text, font=font)
    return right - left


def _text(draw, font, xy: tuple[float, float], text: str, align: str = "left", fill=INK) -> None:
    """``text`` centred vertically on y, starting at x ("left"), ending there ("right") or centred
    on it ("centre"): placed from its bounding box, which every Pillow font gives."""
    l, t, r, b = draw.textbbox((0, 0), text, font=font)
    x = xy[0] - {"left": 0, "right": r - l, "centre": (r - l) / 2}[align] - l
    draw.text((round(x), round(xy[1] - (b + t) / 2)), text, fill=fill, font=font)


def _tick_step(scale: float) -> int:
    """Image pixels between ruler ticks: a power of two, ticks at least 48 screen pixels apart."""
    step = 1
    while step * scale < 48:
        step *= 2
    return step


def _rulers(draw, font, corner: tuple[int, int], height: int, edges: list[int], scale: float) -> None:
    """Ticks every few image pixels down the left edge, and along the top of each panel (between
    screen columns ``edges``), restarting at 0 on each."""
    left, top = corner
    step, ink = _tick_step(scale), (60, 60, 60)
    for v in range(0, round(height / scale) + 1, step):
        y = min(top + round(v * scale), top + height - 1)
        draw.line([(left - 6, y), (left - 1, y)], fill=ink)
        _text(draw, font, (left - 9, y), str(v), "right", ink)
    for p, (a, b) in enumerate(zip(edges, edges[1:])):
        last = p == len(edges) - 2
        for v in range(0, round((b - a) / scale) + last, step):  # a panel's far edge is the next one's 0
            x = min(left + a + round(v * scale), left + b - 1)
            draw.line([(x, top - 6), (x, top - 1)], fill=ink)
            _text(draw, font, (x, top - 16), str(v), "centre", ink)


def _legend_rows(legend, font, width: int) -> list[list[tuple[str, tuple]]]:
    """The legend's entries in rows that fit ``width`` screen pixels."""
    rows, used = [], width
    for name, colour in legend:
        need = 16 + 6 + _width(font, name) + 24
        if used + need > width:
            rows.append([])
            used = 0
        rows[-1].append((name, colour))
        used += need
    return rows


def _legend(draw, font, rows, corner: tuple[int, int]) -> None:
    """A 16-pixel swatch of each colour, then its name."""
    x0, y = corner
    for row in rows:
        x = x0
        for name, colour in row:
            draw.rectangle([x, y, x + 15, y + 15], fill=tuple(colour), outline=(120, 120, 120))
            _text(draw, font, (x + 22, y + 8), name)
            x += 16 + 6 + _width(font, name) + 24
        y += LINE
