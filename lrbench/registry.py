"""The task registry: one flat dict ``name -> TaskSpec``.

A task id is a frozen integer: it keys every sample's random generator, so changing one changes
every dataset of that task (tests/test_registry.py pins them). New tasks take new ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from lrbench.generators import atomic
from lrbench.generators import listops
from lrbench.generators import pathfinder
from lrbench.seeding import fixed_rng, sample_rng

Sample = dict[str, np.ndarray]


@dataclass(frozen=True)
class Feature:
    """One field of a sample as stored on disk.

    ``shape`` is the per-sample shape; when ``ragged`` the first axis varies per sample, ``shape[0]``
    is its maximum, samples are padded with ``pad`` on disk and a ``lengths`` dataset records the
    true length. ``compress`` selects gzip level 1 (tokens and images; never float noise).
    """

    dtype: str
    shape: tuple[int, ...]
    ragged: bool = False
    pad: int | float = 0
    compress: bool = False

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "ragged": self.ragged, "pad": self.pad}


@dataclass(frozen=True)
class TaskSpec:
    """Everything the core needs to know about a task; the generator itself stays pure.

    generate(rng, cfg[, fixed]) -> sample.  fixed(rng, cfg) -> structure shared by every sample
    (SelectFixed positions, SolveFixed matrix), drawn from the seed with its own key.
    """

    name: str
    id: int
    config: type
    generate: Callable[..., Sample]
    features: Callable[[Any], dict[str, Feature]]
    kind: str  # "regression" | "tagging"
    metrics: tuple[str, ...]
    size_param: str | None  # the identifying parameter: CLI --length / --size, dataset dir name
    dir_label: Callable[[Any], str]  # cfg -> dataset directory name before any hash
    default_splits: dict[str, int]  # full split sizes
    generate_splits: tuple[str, ...]  # what `lrbench generate` writes unless --splits says otherwise
    make_config: Callable[..., Any] | None = None  # params -> cfg, when presets are involved
    fixed: Callable[[np.random.Generator, Any], Any] | None = None
    num_classes: int | None = None  # tagging tasks
    digest: bool = False  # store a per-sample digest and check that no sample is in two splits
    describe: Callable[[Sample, Any], str] | None = None  # text view for `lrbench show`
    picture: Callable[[Sample, Any], np.ndarray] | None = None  # RGB uint8 view for `show -o`
    summary: str = ""


def _atomic_features(inputs: tuple[int, int], targets: tuple[int, int]) -> dict[str, Feature]:
    return {"inputs": Feature("float32", inputs), "targets": Feature("float32", targets)}


def _length_label(name: str) -> Callable[[Any], str]:
    return lambda cfg: f"{name}-L{cfg.length}"


def _atomic(name: str, task_id: int, config: type, generate, features, summary: str, fixed=None) -> TaskSpec:
    return TaskSpec(
        name=name, id=task_id, config=config, generate=generate, features=features,
        kind="regression", metrics=("r2",), size_param="length", dir_label=_length_label(name),
        default_splits={"train": 100_000, "val": 6_400, "test": 6_400},
        generate_splits=("val", "test"), fixed=fixed, summary=summary,
    )


def _one(L: int, T: int | None = None, C: int = 3) -> dict[str, Feature]:
    return _atomic_features((T or L, C), (L, 1))


REGISTRY: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        _atomic("shift", 1, atomic.ShiftConfig, atomic.shift,
                lambda c: _atomic_features((c.length, 3), (c.length, c.num_shifts)),
                "C uniformly spaced right shifts of the input"),
        _atomic("cumsum", 2, atomic.AtomicConfig, atomic.cumsum, lambda c: _one(c.length),
                "running sum scaled by (i+1)^-1/2"),
        _atomic("cummax", 3, atomic.AtomicConfig, atomic.cummax, lambda c: _one(c.length),
                "running maximum"),
        _atomic("reverse", 4, atomic.AtomicConfig, atomic.reverse, lambda c: _one(c.length, 2 * c.length),
                "the input reversed, after L zeros of padding"),
        _atomic("sort", 5, atomic.AtomicConfig, atomic.sort, lambda c: _one(c.length, 2 * c.length),
                "the input sorted by distance to its first element"),
        _atomic("select", 6, atomic.SelectConfig, atomic.select,
                lambda c: _atomic_features((c.length + 2 * c.num_selected, 4), (c.num_selected, 1)),
                "copy the M marked values, positions vary per sample"),
        _atomic("select-fixed", 7, atomic.SelectConfig, atomic.select_fixed,
                lambda c: _atomic_features((c.length + 2 * c.num_selected, 4), (c.num_selected, 1)),
                "copy the M marked values, positions fixed by the seed", fixed=atomic.select_positions),
        _atomic("mips", 8, atomic.MipsConfig, atomic.mips,
                lambda c: _atomic_features((c.length, 3 * c.dim + 2), (c.length, c.dim)),
                "value of the key with maximum inner product with each query, causally"),
        _atomic("context-shift", 9, atomic.AtomicConfig, atomic.context_shift, lambda c: _one(c.length),
                "shift by an amount announced in the input"),
        _atomic("solve", 10, atomic.AtomicConfig, atomic.solve,
                lambda c: _atomic_features((c.length, 3), (atomic.solve_size(c.length), 1)),
                "solve A X = B for a random orthogonal A given row by row"),
        _atomic("solve-fixed", 11, atomic.AtomicConfig, atomic.solve_fixed,
                lambda c: _atomic_features((c.length, 3), (atomic.solve_size(c.length), 1)),
                "solve A X = B, A fixed by the seed",
                fixed=lambda rng, c: atomic.haar_orthogonal(rng, atomic.solve_size(c.length))),
        TaskSpec(
            name="listops-subtrees", id=12, config=listops.ListOpsConfig, generate=listops.listops_subtrees,
            features=lambda c: {
                "inputs": Feature("uint8", (c.max_length,), ragged=True, pad=0, compress=True),
                "targets": Feature("int8", (c.max_length,), ragged=True, pad=-100, compress=True),
                "node_height": Feature("int8", (c.max_length,), ragged=True, pad=-1, compress=True),
                "node_op": Feature("int8", (c.max_length,), ragged=True, pad=-1, compress=True),
            },
            kind="tagging", metrics=("token_accuracy",), num_classes=10, size_param=None,
            dir_label=lambda cfg: "listops-subtrees",
            default_splits={"train": 96_000, "val": 2_000, "test": 2_000},
            generate_splits=("train", "val", "test"), digest=True, describe=listops.describe,
            summary="tag every ']' of a long bracketed MIN/MAX/MED/SM expression with its sub-expression's value",
        ),
        TaskSpec(
            name="pathfinder-seg", id=13, config=pathfinder.PathfinderConfig, make_config=pathfinder.make_config,
            generate=pathfinder.pathfinder_seg,
            features=lambda c: {
                "inputs": Feature("uint8", (c.size, c.size), compress=True),
                "targets": Feature("uint8", (c.size, c.size), compress=True),
                "connected": Feature("uint8", ()),
            },
            kind="tagging", metrics=("macro_f1", "macro_accuracy"), num_classes=3, size_param="size",
            dir_label=lambda c: f"pathfinder-seg-{c.size}",
            default_splits={"train": 96_000, "val": 2_000, "test": 2_000},
            generate_splits=("train", "val", "test"), picture=pathfinder.picture, describe=pathfinder.describe,
            summary="label each pixel: on the main path with circles at both ends (2), on another main path (1), else 0",
        ),
    ]
}


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
    """A task with a validated config: ``sample(index, split, seed)`` and ``iter(...)``."""

    def __init__(self, spec: TaskSpec, config):
        self.spec = spec
        self.config = config
        self._fixed: dict[int, Any] = {}

    name = property(lambda self: self.spec.name)
    id = property(lambda self: self.spec.id)
    kind = property(lambda self: self.spec.kind)

    @property
    def features(self) -> dict[str, Feature]:
        return self.spec.features(self.config)

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

