"""The task registry: one flat dict ``name -> TaskSpec``, the single home of every fact about a task.

A task's entry says what it is (kind, metrics, fields and their value ranges), how a model meets it
(signal channels, token vocabulary or image; outputs or classes; the positions scored at the end),
which splits are finite (the atomic tasks' train split is an endless stream), its identifying
parameter and that parameter's CLI option, the tiny parameters tests and the smoke preset use, and
what the presets need beyond its kind. Presets, evaluate, scoring, the CLI, ``show`` and the cards
ask the task; none of them tests a task's name. The facts come back on the Task:

    >>> import lrbench
    >>> task = lrbench.get_task("select", length=64)
    >>> task.kind, task.metric, task.d_input, task.d_output, task.t_out
    ('regression', 'r2', 4, 1, 32)
    >>> task.finite_splits, task.size_param, task.size_flag
    (('val', 'test'), 'length', '--length')
    >>> ls = lrbench.get_task("listops-subtrees", **lrbench.get_task("listops-subtrees").tiny)
    >>> ls.view, ls.vocab_size, ls.num_classes, ls.t_out
    ('tokens', 16, 10, None)

A new task is one entry: its generator (a pure function in ``generators/``) and a ``TaskSpec``
passed to ``register`` below, or by any code at run time (``register`` checks the entry).

A task id is a frozen integer: it keys every sample's random generator, so changing one changes
every dataset of that task (tests/test_registry.py pins them). New tasks take new ids.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from lrbench.generators import atomic
from lrbench.generators import listops
from lrbench.generators import pathfinder
from lrbench.seeding import SPLITS, fixed_rng, sample_rng

Sample = dict[str, np.ndarray]
KINDS = ("regression", "tagging", "classification")  # regression: values, MSE, R²; tagging: a class per
# position; classification: a class per sample, from the model's outputs averaged over the positions
VIEWS = ("signal", "tokens", "image")  # how inputs meet a model (see TaskSpec.view)


@dataclass(frozen=True)
class Feature:
    """One field of a sample as stored on disk.

    ``shape`` is the per-sample shape; when ``ragged`` the first axis varies per sample, ``shape[0]``
    is its maximum, samples are padded with ``pad`` on disk and a ``lengths`` dataset records the
    true length. ``compress`` selects gzip level 1 (tokens and images; never float noise).
    ``low``/``high`` bound every value (inclusive; None: unbounded), except ``pad`` in a ragged
    field, which also marks positions inside a sample that carry no value (ListOps' -100).
    ``labels`` names the values 0, 1, ... of a categorical field (scores break down by them).
    """

    dtype: str
    shape: tuple[int, ...]
    ragged: bool = False
    pad: int | float = 0
    compress: bool = False
    low: int | float | None = None
    high: int | float | None = None
    labels: tuple[str, ...] | None = None

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "ragged": self.ragged, "pad": self.pad}

    def stack(self, arrays: Sequence[np.ndarray], width: int | None = None,
              out: np.ndarray | None = None) -> np.ndarray:
        """Samples of this field as one array [n, ...] in the stored dtype: the one padding function.

        A ragged field's samples are padded with ``pad`` to ``width`` (default: the longest); ``out``
        (an array [n, width, ...]) is filled in place instead of a new one.

        >>> f = Feature("int8", (8,), ragged=True, pad=-100)
        >>> f.stack([np.array([3, 4, 5]), np.array([1])]).tolist()
        [[3, 4, 5], [1, -100, -100]]
        """
        if not self.ragged:
            if out is None:
                return np.stack(arrays).astype(self.dtype, copy=False)
            for i, a in enumerate(arrays):
                out[i] = a
            return out
        if out is None:
            width = max(len(a) for a in arrays) if width is None else width
            out = np.empty((len(arrays), width) + tuple(self.shape[1:]), dtype=self.dtype)
        for i, a in enumerate(arrays):
            out[i, : len(a)] = a
            out[i, len(a):] = self.pad
        return out


@dataclass(frozen=True)
class SizeParam:
    """The parameter that identifies a task's datasets (their directory names) and the CLI option
    that sets it in ``generate`` and ``show``."""

    name: str  # the config field, e.g. "length"
    flag: str  # the option, e.g. "--length"
    help: str  # the option's help text


@dataclass(frozen=True)
class Hints:
    """What the presets (``lrbench.presets``) need to know about a task beyond its kind.

    ``block``: the settings of the baselines' shared block the paper uses on this task (``glu``,
    ``prenorm``, ``bidirectional``; SPEC §9). ``quick``: task parameters of the ``quick`` preset for a
    tagging task (a smaller instance; regression tasks take its sequence length instead).
    """

    block: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelGroup:
    """Consecutive channels of a signal field that belong together, for ``show``: ``name`` (e.g.
    "q (query)"), ``width`` channels, and a ``role``: "value" (drawn as lines), "marker" (0/1 flags
    that pick out positions, drawn across every panel), "position" (a positional encoding, which
    pictures leave out)."""

    name: str
    width: int = 1
    role: str = "value"  # one of ROLES


ROLES = ("value", "marker", "position")


@dataclass(frozen=True)
class TaskSpec:
    """Everything lrbench knows about a task; the generator itself stays pure.

    generate(rng, cfg[, fixed]) -> sample.  fixed(rng, cfg) -> structure shared by every sample
    (SelectFixed positions, SolveFixed matrix), drawn from the seed with its own key.

    How a model meets it (``view``): "signal", float inputs [T, C] with C = d_input channels;
    "tokens", integer ids [T] below ``vocab_size``; "image", uint8 [M, M] read row-major as
    [M², 1] and scaled to [0, 1]. Regression targets [T_out, C_out] align with the last T_out
    positions of the output; tagging targets label every position with one of ``num_classes``
    classes (-100: not scored).
    """

    name: str  # canonical: lowercase, words joined by "-"
    id: int
    config: type
    generate: Callable[..., Sample]
    features: Callable[[Any], dict[str, Feature]]
    kind: str  # one of KINDS
    metrics: tuple[str, ...]  # lrbench.metrics names; the first selects checkpoints in evaluate
    view: str  # one of VIEWS
    default_splits: dict[str, int]  # full split sizes
    finite_splits: tuple[str, ...]  # splits that are fixed sets, what `generate` writes unless told
    # otherwise; the others are endless index-addressed streams (the atomic tasks' train split)
    dir_label: Callable[[Any], str]  # cfg -> dataset directory name before any hash
    tiny: dict  # the smallest useful parameters: the conformance tests and the smoke preset
    size: SizeParam | None = None
    vocab_size: int | None = None  # view "tokens"
    num_classes: int | None = None  # kinds "tagging" and "classification"
    hints: Hints = Hints()
    make_config: Callable[..., Any] | None = None  # params -> cfg, when presets are involved
    fixed: Callable[[np.random.Generator, Any], Any] | None = None
    digest: bool = False  # store a per-sample digest and check that no sample is in two splits
    describe: Callable[[Sample, Any], str] | None = None  # text view for `lrbench show`
    picture: Callable[[Sample, Any], np.ndarray] | None = None  # RGB uint8 view for `show -o`
    panels: tuple[str, ...] = ()  # the titles of `picture`'s equal-width panels, left to right
    legend: tuple[tuple[str, tuple[int, int, int]], ...] = ()  # (name, RGB) of the colours `picture` uses
    channels: Callable[[Any], dict[str, tuple[ChannelGroup, ...]]] | None = None  # cfg -> the channel
    # groups of "inputs" and "targets" of a signal task, which `show` names and draws (default: one per channel)
    token_names: tuple[str, ...] | None = None  # view "tokens": the name of each id, for `show`
    token_kinds: tuple[str, ...] | None = None  # ... and its kind ("digit", "operator"), which sets its colour
    summary: str = ""

    @property
    def size_param(self) -> str | None:
        return self.size.name if self.size else None


# ---------------------------------------------------------------------------------------------
# the 13 tasks of the DLR paper and LRA's two synthetic ones (named functions, not lambdas: a TaskSpec travels to generate's worker processes)

UNIT = dict(low=-1.0, high=1.0)  # values normalised by their max-abs, unit vectors, cos/sin channels
ATOMIC_SPLITS = {"train": 100_000, "val": 6_400, "test": 6_400}
HIGHER_SPLITS = {"train": 96_000, "val": 2_000, "test": 2_000}
LENGTH = SizeParam("length", "--length", "Sequence length L of the atomic tasks.")
IMAGE_SIZE = SizeParam("size", "--size", "Image side M: pathfinder-seg 128, 256, 512; pathfinder 32, 64, "
                       "128 (Path-X), 256.")
LISTOPS_TINY = {"max_depth": 6, "min_length": 16, "max_length": 64}  # both ListOps tasks
LISTOPS_QUICK = {"max_depth": 10, "min_length": 64, "max_length": 256}
LRA_PATHFINDER_SPLITS = {"train": 160_000, "val": 20_000, "test": 20_000}  # LRA's 80/10/10 of 200K


def _signal(inputs: tuple[int, int], targets: tuple[int, int], bounded: bool = True) -> dict[str, Feature]:
    return {"inputs": Feature("float32", inputs, **UNIT),
            "targets": Feature("float32", targets, **(UNIT if bounded else {}))}


def _shift_features(c):
    return _signal((c.length, 3), (c.length, c.num_shifts))


def _running_features(c):  # cumsum: (i+1)^-1/2 Σ x_j may exceed 1
    return _signal((c.length, 3), (c.length, 1), bounded=False)


def _same_length_features(c):
    return _signal((c.length, 3), (c.length, 1))


def _padded_features(c):  # reverse, sort: L zeros follow the signal
    return _signal((2 * c.length, 3), (c.length, 1))


def _select_features(c):
    return _signal((c.length + 2 * c.num_selected, 4), (c.num_selected, 1))


def _mips_features(c):
    return _signal((c.length, 3 * c.dim + 2), (c.length, c.dim))


def _solve_features(c):
    return _signal((c.length, 3), (atomic.solve_size(c.length), 1))


def _solve_fixed_matrix(rng, c):
    return atomic.haar_orthogonal(rng, atomic.solve_size(c.length))


POSITION = ChannelGroup("cos, sin of the position", 2, "position")  # every atomic input ends with them


def _x_channels(c):
    return {"inputs": (ChannelGroup("x"), POSITION), "targets": (ChannelGroup("y"),)}


def _shift_channels(c):
    shifts = atomic.shift_offsets(c.length, c.num_shifts)
    return {"inputs": (ChannelGroup("x"), POSITION),
            "targets": tuple(ChannelGroup(f"y[:, {j}]: x shifted by {s}") for j, s in enumerate(shifts))}


def _select_channels(c):
    return {"inputs": (ChannelGroup("x"), ChannelGroup("marked", role="marker"), POSITION),
            "targets": (ChannelGroup("y: the marked x, in order"),)}


def _mips_channels(c):
    return {"inputs": (ChannelGroup("q (queries)", c.dim), ChannelGroup("k (keys)", c.dim),
                       ChannelGroup("v (values)", c.dim), POSITION),
            "targets": (ChannelGroup("y: v of the best key so far", c.dim),)}


def _length_label(name: str, cfg) -> str:
    return f"{name}-L{cfg.length}"


def _atomic(name: str, task_id: int, config: type, generate, features, summary: str, fixed=None,
            channels=_x_channels) -> TaskSpec:
    return TaskSpec(
        name=name, id=task_id, config=config, generate=generate, features=features, kind="regression",
        metrics=("r2",), view="signal", default_splits=dict(ATOMIC_SPLITS), finite_splits=("val", "test"),
        dir_label=functools.partial(_length_label, name), tiny={"length": 32}, size=LENGTH, fixed=fixed,
        channels=channels, summary=summary,
    )


def _listops_tokens(c) -> Feature:
    """The token field of both ListOps tasks: ids up to max_length long, padded with PAD."""
    return Feature("uint8", (c.max_length,), ragged=True, pad=listops.PAD, compress=True, low=1,
                   high=len(listops.TOKEN_NAMES) - 1)


def _listops_features(c):
    n = c.max_length
    return {
        "inputs": _listops_tokens(c),
        "targets": Feature("int8", (n,), ragged=True, pad=listops.IGNORE, compress=True, low=0, high=9),
        "node_height": Feature("int8", (n,), ragged=True, pad=-1, compress=True, low=1, high=c.max_depth - 1),
        "node_op": Feature("int8", (n,), ragged=True, pad=-1, compress=True, low=0, high=len(listops.OPS) - 1,
                           labels=listops.OPS),
    }


def _listops_label(cfg) -> str:
    return "listops-subtrees"


def _pathfinder_features(c):
    return {
        "inputs": Feature("uint8", (c.size, c.size), compress=True),
        "targets": Feature("uint8", (c.size, c.size), compress=True, low=0, high=2),
        "connected": Feature("uint8", (), low=0, high=1),
    }


def _pathfinder_label(cfg) -> str:
    return f"pathfinder-seg-{cfg.size}"


def _lra_pathfinder_features(c):
    return {"inputs": Feature("uint8", (c.size, c.size), compress=True),
            "targets": Feature("uint8", (), low=0, high=1, labels=("apart", "joined"))}


def _lra_pathfinder_label(cfg) -> str:
    return f"pathfinder-{cfg.size}"


def _lra_listops_features(c):
    return {"inputs": _listops_tokens(c), "targets": Feature("uint8", (), low=0, high=9)}


def _lra_listops_label(cfg) -> str:
    return "listops"


BUILTIN = [
    _atomic("shift", 1, atomic.ShiftConfig, atomic.shift, _shift_features,
            "C uniformly spaced right shifts of the input", channels=_shift_channels),
    _atomic("cumsum", 2, atomic.AtomicConfig, atomic.cumsum, _running_features,
            "running sum scaled by (i+1)^-1/2"),
    _atomic("cummax", 3, atomic.AtomicConfig, atomic.cummax, _same_length_features, "running maximum"),
    _atomic("reverse", 4, atomic.AtomicConfig, atomic.reverse, _padded_features,
            "the input reversed, after L zeros of padding"),
    _atomic("sort", 5, atomic.AtomicConfig, atomic.sort, _padded_features,
            "the input sorted by distance to its first element"),
    _atomic("select", 6, atomic.SelectConfig, atomic.select, _select_features,
            "copy the M marked values, positions vary per sample", channels=_select_channels),
    _atomic("select-fixed", 7, atomic.SelectConfig, atomic.select_fixed, _select_features,
            "copy the M marked values, positions fixed by the seed", fixed=atomic.select_positions,
            channels=_select_channels),
    _atomic("mips", 8, atomic.MipsConfig, atomic.mips, _mips_features,
            "value of the key with maximum inner product with each query, causally", channels=_mips_channels),
    _atomic("context-shift", 9, atomic.AtomicConfig, atomic.context_shift, _same_length_features,
            "shift by an amount announced in the input"),
    _atomic("solve", 10, atomic.AtomicConfig, atomic.solve, _solve_features,
            "solve A X = B for a random orthogonal A given row by row"),
    _atomic("solve-fixed", 11, atomic.AtomicConfig, atomic.solve_fixed, _solve_features,
            "solve A X = B, A fixed by the seed", fixed=_solve_fixed_matrix),
    TaskSpec(
        name="listops-subtrees", id=12, config=listops.ListOpsConfig, generate=listops.listops_subtrees,
        features=_listops_features, kind="tagging", metrics=("token_accuracy",), view="tokens",
        vocab_size=len(listops.TOKEN_NAMES), num_classes=10, default_splits=dict(HIGHER_SPLITS),
        finite_splits=("train", "val", "test"), dir_label=_listops_label,
        tiny=dict(LISTOPS_TINY),
        hints=Hints(block=dict(glu=True, prenorm=False, bidirectional=False),
                    quick=dict(LISTOPS_QUICK)),
        digest=True, describe=listops.describe,
        token_names=listops.TOKEN_NAMES, token_kinds=listops.TOKEN_KINDS,
        summary="tag every ']' of a long bracketed MIN/MAX/MED/SM expression with its sub-expression's value",
    ),
    TaskSpec(
        name="pathfinder-seg", id=13, config=pathfinder.PathfinderConfig, make_config=pathfinder.make_config,
        generate=pathfinder.pathfinder_seg, features=_pathfinder_features, kind="tagging",
        metrics=("macro_f1", "macro_accuracy"), view="image", num_classes=3, size=IMAGE_SIZE,
        default_splits=dict(HIGHER_SPLITS), finite_splits=("train", "val", "test"), dir_label=_pathfinder_label,
        tiny={"size": 128},
        hints=Hints(block=dict(glu=True, prenorm=True, bidirectional=True), quick={"size": 128}),
        picture=pathfinder.picture, describe=pathfinder.describe, panels=pathfinder.PANELS,
        legend=pathfinder.LEGEND,
        summary="label each pixel: on the main path with circles at both ends (2), on another main path (1), else 0",
    ),
    TaskSpec(
        name="pathfinder", id=14, config=pathfinder.LRAPathfinderConfig, make_config=pathfinder.make_lra_config,
        generate=pathfinder.lra_pathfinder, features=_lra_pathfinder_features, kind="classification",
        metrics=("accuracy",), view="image", num_classes=2, size=IMAGE_SIZE,
        default_splits=dict(LRA_PATHFINDER_SPLITS), finite_splits=("train", "val", "test"),
        dir_label=_lra_pathfinder_label, tiny={"size": 32},
        hints=Hints(block=dict(glu=True, prenorm=True, bidirectional=True), quick={"size": 32}),
        picture=pathfinder.picture_lra, describe=pathfinder.describe_lra, panels=pathfinder.PANELS[:1],
        summary="LRA Pathfinder / Path-X: are the two circles joined by one dashed path? (1 joined, 0 apart)",
    ),
    TaskSpec(
        name="listops", id=15, config=listops.LRAListOpsConfig, generate=listops.listops,
        features=_lra_listops_features, kind="classification", metrics=("accuracy",), view="tokens",
        vocab_size=len(listops.TOKEN_NAMES), num_classes=10, default_splits=dict(HIGHER_SPLITS),
        finite_splits=("train", "val", "test"), dir_label=_lra_listops_label,
        tiny=dict(LISTOPS_TINY),
        hints=Hints(block=dict(glu=True, prenorm=False, bidirectional=True),
                    quick=dict(LISTOPS_QUICK)),
        digest=True, describe=listops.describe_lra,
        token_names=listops.TOKEN_NAMES, token_kinds=listops.TOKEN_KINDS,
        summary="LRA ListOps: the value (0-9) of a 500-2000 token MIN/MAX/MED/SM expression",
    ),
]

REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec, replace: bool = False) -> TaskSpec:
    """Add a task to the registry (every command and module sees it from then on).

    The entry is checked first: a canonical name and an id no other task has (unless ``replace``),
    a known kind, metrics and view, the classes or vocabulary they need, finite splits among its
    splits, a size parameter that is a config field, and tiny parameters that build a config.
    """
    _check_spec(spec)
    for other in REGISTRY.values():
        if other.name != spec.name and other.id == spec.id:
            raise ValueError(f"task id {spec.id} of {spec.name} is taken by {other.name}")
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"task {spec.name} is registered already (replace=True replaces it)")
    REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> TaskSpec:
    """Remove a task registered at run time (tests); returns its entry."""
    return REGISTRY.pop(canonical_name(name))


def _check_spec(spec: TaskSpec) -> None:
    from lrbench.metrics import METRICS

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"task {spec.name!r}: {what}")

    need(isinstance(spec.name, str) and spec.name == spec.name.strip().lower().replace("_", "-") and spec.name,
         "the name must be lowercase, with '-' between words")
    need(isinstance(spec.id, int) and not isinstance(spec.id, bool) and spec.id >= 1, "the id must be an integer >= 1")
    need(dataclasses.is_dataclass(spec.config), "config must be a dataclass")
    need(spec.kind in KINDS, f"kind must be one of {', '.join(KINDS)} (got {spec.kind!r})")
    need(bool(spec.metrics) and all(m in METRICS for m in spec.metrics),
         f"metrics must be some of {', '.join(METRICS)} (got {spec.metrics!r})")
    need(spec.view in VIEWS, f"view must be one of {', '.join(VIEWS)} (got {spec.view!r})")
    need((spec.vocab_size is not None) == (spec.view == "tokens"),
         "a task has vocab_size exactly when its view is tokens")
    need(spec.vocab_size is None or spec.vocab_size >= 2, "vocab_size must be >= 2")
    need((spec.num_classes is not None) == (spec.kind != "regression"),
         "a task has num_classes exactly when it is tagging or classification")
    need(spec.num_classes is None or spec.num_classes >= 2, "num_classes must be >= 2")
    need(bool(spec.default_splits) and set(spec.default_splits) <= set(SPLITS)
         and all(isinstance(n, int) and n > 0 for n in spec.default_splits.values()),
         f"default_splits must give positive sizes to some of {', '.join(SPLITS)}")
    need(bool(spec.finite_splits) and set(spec.finite_splits) <= set(spec.default_splits),
         "finite_splits must be some of its default splits")
    need(spec.size is None or spec.size.name in {f.name for f in dataclasses.fields(spec.config)},
         "its size parameter must be a field of its config")
    need(spec.size is None or spec.size.flag.startswith("--"), "its size flag must start with --")
    cfg = build_config(spec, spec.tiny)  # raises ValueError naming a bad tiny parameter
    for names in (spec.token_names, spec.token_kinds):
        need(names is None or (spec.vocab_size is not None and len(names) == spec.vocab_size),
             "token_names and token_kinds need one entry per token id (vocab_size)")
    if spec.channels is not None:
        _check_channels(spec, cfg, need)


def _check_channels(spec: TaskSpec, cfg, need) -> None:
    """The channel groups of each field cover its channels exactly, each with a known role."""
    features, groups = spec.features(cfg), spec.channels(cfg)
    for key, field_groups in groups.items():
        need(key in features, f"channels names a field it does not have: {key!r}")
        need(all(g.role in ROLES and g.width >= 1 for g in field_groups),
             f"each channel group has a width >= 1 and a role among {', '.join(ROLES)}")
        width = sum(g.width for g in field_groups)
        need(width == features[key].shape[-1], f"the channel groups of {key} cover {width} channels, "
             f"not its {features[key].shape[-1]}")


def list_tasks() -> list[str]:
    """Canonical task names, in registry order."""
    return list(REGISTRY)


def canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key not in REGISTRY:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(REGISTRY)}")
    return key


def spec_of(name: str) -> TaskSpec:
    return REGISTRY[canonical_name(name)]


def config_fields(spec: TaskSpec) -> dict[str, Any]:
    """Parameter name -> default value of a task's config."""
    return {f.name: f.default for f in dataclasses.fields(spec.config)}


def build_config(spec: TaskSpec, params: dict[str, Any]):
    allowed = config_fields(spec)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for task {spec.name}; "
            f"valid parameters: {', '.join(allowed)}"
        )
    # numpy scalars become Python ones (configs go into JSON); JSON round trips turn tuples into
    # lists, and the configs are frozen and hashable, so undo that
    params = {k: _plain(v) for k, v in params.items()}
    params = {k: tuple(v) if isinstance(allowed[k], tuple) and isinstance(v, list) else v for k, v in params.items()}
    try:
        return (spec.make_config or spec.config)(**params)
    except TypeError as exc:  # wrong-typed values inside dataclass arithmetic
        raise ValueError(f"invalid parameters for task {spec.name}: {exc}") from None


def _plain(value: Any) -> Any:
    """numpy scalars as the Python values they hold, inside lists and tuples too."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def parse_value(spec: TaskSpec, key: str, text: str) -> Any:
    """Parse a CLI ``--set key=value`` string by the type of the parameter's default."""
    fields = config_fields(spec)
    if key not in fields:
        raise ValueError(f"unknown parameter {key!r} for task {spec.name}; valid parameters: {', '.join(fields)}")
    default = fields[key]

    def one(kind: type, s: str):
        s = s.strip()
        try:
            if kind is bool:
                if s.lower() in ("1", "true", "yes"):
                    return True
                if s.lower() in ("0", "false", "no"):
                    return False
                raise ValueError
            return kind(s)
        except ValueError:
            raise ValueError(f"{key} must be {kind.__name__} (got {s!r})") from None

    if isinstance(default, tuple):
        kind = type(default[0]) if default else float
        return tuple(one(kind, part) for part in text.split(","))
    return one(type(default), text)


def config_json(cfg) -> str:
    """Canonical JSON of a config: sorted keys, tuples as lists."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True, separators=(",", ":"))


def config_dict(cfg) -> dict:
    """A config as it reads back from JSON (manifests, results): tuples become lists."""
    return json.loads(config_json(cfg))


class Task:
    """A task with a validated config: ``sample(index, split, seed)`` and ``iter(...)``, and the facts
    a model or a tool needs (SPEC §5), from its registry entry and its config."""

    def __init__(self, spec: TaskSpec, config):
        self.spec = spec
        self.config = config
        self._fixed: dict[int, Any] = {}

    name = property(lambda self: self.spec.name)
    id = property(lambda self: self.spec.id)
    kind = property(lambda self: self.spec.kind)
    metrics = property(lambda self: self.spec.metrics)
    view = property(lambda self: self.spec.view)
    vocab_size = property(lambda self: self.spec.vocab_size)
    num_classes = property(lambda self: self.spec.num_classes)
    default_splits = property(lambda self: dict(self.spec.default_splits))
    finite_splits = property(lambda self: self.spec.finite_splits)
    size_param = property(lambda self: self.spec.size_param)
    size_flag = property(lambda self: self.spec.size.flag if self.spec.size else None)
    tiny = property(lambda self: dict(self.spec.tiny))
    hints = property(lambda self: self.spec.hints)

    @property
    def metric(self) -> str:
        """The metric that selects checkpoints and heads result tables."""
        return self.spec.metrics[0]

    @property
    def features(self) -> dict[str, Feature]:
        return self.spec.features(self.config)

    @property
    def d_input(self) -> int | None:
        """Input channels per position (None for token ids: see vocab_size)."""
        if self.view == "tokens":
            return None
        return 1 if self.view == "image" else self.features["inputs"].shape[-1]

    @property
    def d_output(self) -> int:
        """Outputs per position a model gives: target channels (regression) or class logits."""
        return self.features["targets"].shape[-1] if self.kind == "regression" else self.num_classes

    @property
    def t_in(self) -> int:
        """Input positions a model reads (their maximum when they vary): an image's M² pixels."""
        shape = self.features["inputs"].shape
        return int(np.prod(shape)) if self.view == "image" else shape[0]

    @property
    def t_out(self) -> int | None:
        """Regression targets cover the last t_out positions of the output; None: every position."""
        return self.features["targets"].shape[0] if self.kind == "regression" else None

    def __repr__(self) -> str:
        return f"Task({self.name!r}, {self.config})"

    def fixed(self, seed: int):
        """The structure shared by every sample under this seed (None for most tasks)."""
        if self.spec.fixed is None:
            return None
        if seed not in self._fixed:
            self._fixed[seed] = self.spec.fixed(fixed_rng(self.id, seed), self.config)
        return self._fixed[seed]

    def sample(self, index: int, split: str = "train", seed: int = 0) -> Sample:
        """Sample ``index`` of ``split``: a pure function of (task, config, seed, split, index)."""
        rng = sample_rng(self.id, seed, split, index)
        if self.spec.fixed is None:
            return self.spec.generate(rng, self.config)
        return self.spec.generate(rng, self.config, self.fixed(seed))

    def iter(self, split: str = "train", seed: int = 0, start: int = 0, stop: int | None = None) -> Iterator[Sample]:
        """Samples start, start+1, ... (endless when stop is None)."""
        index = start
        while stop is None or index < stop:
            yield self.sample(index, split, seed)
            index += 1

    def dir_name(self, seed: int = 0) -> str:
        """Dataset directory name: task + identifying parameter, plus a short hash when anything
        else (the seed included) differs from the defaults."""
        label = self.spec.dir_label(self.config)
        params = {}
        if self.spec.size_param:
            params[self.spec.size_param] = getattr(self.config, self.spec.size_param)
        default = build_config(self.spec, params)
        if self.config == default and seed == 0:
            return label
        blob = json.dumps({"config": config_dict(self.config), "seed": seed}, sort_keys=True)
        return f"{label}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def get_task(name: str, **params) -> Task:
    """A task with validated parameters, e.g. ``get_task("shift", length=512)``."""
    spec = spec_of(name)
    return Task(spec, build_config(spec, params))


for _spec in BUILTIN:
    register(_spec)
