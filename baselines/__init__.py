"""Reference baselines as plain PyTorch modules (torch is the only dependency): the DLR
paper's (DLR, DSS, attention) and the model families of its neighbours (LRU, S4D, S5,
Mamba, RG-LRU), each a sequence mixer in the same block.

    from lrbench.baselines import build, param_groups
    model = build("dlr", d_input=3, d_output=1, d_model=128, d_state=4096)
    y = model(x)                      # x [B, T, 3] -> y [B, T, 1]
    y = model(x, t_out=32)            # decode only the last 32 positions -> [B, 32, 1]
    opt = torch.optim.AdamW(param_groups(model, lr=1e-3, weight_decay=0.01))

Models (`MODELS`): dlr, dlr-prod, dss, attention, local-attention, lru, s4d, s5, mamba,
rglru. Config keys and their defaults are in `DEFAULTS[name]`; an unknown key is a
ValueError naming the valid ones. Keys of the shared block (block.py), for every model:
  d_model (H), n_layers, prenorm, glu, dropout
  vocab_size   None: inputs are float [B, T, d_input] through a Linear encoder;
               an int: inputs are token ids [B, T] (long) through an Embedding,
               and d_input must be None or equal to vocab_size (ListOps: 16)
  t_out        decode only the last t_out positions (a forward argument overrides it)
Keys shared by several families (same meaning wherever they appear):
  d_state (N), bidirectional, dt_min, dt_max     state size, two-way pass, Δ init range
  kernel_chunk positions per chunk of the DLR/DSS/S4D kernel (None: automatic, see dlr.py)
  n_heads, chunk_size                            attention / local attention
and each family's own keys, documented in its file (lru.py: r_min, r_max, max_phase;
s4d.py: init; s5.py: n_blocks; mamba.py: expand, d_conv, dt_rank, scan_chunk; rglru.py:
expand, d_conv, a_min, a_max). The DLR paper's defaults: H = 128, N = 4096, 1 layer,
4 heads, chunks of 1024; DLR's Δ range [5e-4, 0.5] is its §2.3 default, DSS's [1e-3, 1e-1]
the DSS paper's. The other families' defaults are their papers', as each file says.

Adding a model is one file here, say `mymodel.py`, and one entry in `FAMILIES` below. The
file holds its sequence mixer, a module u [B, L, H] -> y [B, L, H] whose class lists
its kernel (or recurrence) parameters in `kernel_params` (they get no weight decay,
see param_groups), and ends with its declaration:

    CONFIG = {"mymodel": dict(d_state=256, bidirectional=False, r_min=0.9)}  # its keys beyond
        # the block's, with their defaults; no `bidirectional` key: it has no two-way form,
        # and the presets refuse the tasks the paper runs bidirectionally (Pathfinder)
    def mixer(name, cfg): return MyMixer(cfg["d_model"], cfg["d_state"], ...)  # one layer's mixer
    def check(cfg): ...          # optional: ValueError when its own keys are out of range
    ROWS = {"mymodel": "dlr"}    # optional: the model whose rows of the paper's tables
                                 # it trains with in the paper presets
    OWN_STATE = {"mymodel": lambda lr: lr / 2}  # optional: under the presets it takes a row's
        # block keys (width, depth) and LR only, and keeps this file's state size and init;
        # the function gives its recurrence parameters' LR from the row's (None: the same)

Every model reads token ids through the block's Embedding (vocab_size), so it runs on
the token tasks too. From FAMILIES come MODELS, DEFAULTS, build(), the CLI's --model
help, the presets (lrbench.presets: a model's own rows, else those ROWS names; the
quick and smoke presets fall back to DLR's, whose state settings the OWN_STATE families
leave out) and `lrbench evaluate`. `register(module)`
adds a model file at run time in the same way.
"""

import math

from . import attention, dlr, dss, lru, mamba, rglru, s4d, s5
from .attention import Attention, LocalAttention
from .block import Bidirectional, Layer, Model
from .dlr import DLR
from .dss import DSS
from .lru import LRU
from .mamba import Mamba
from .rglru import RGLRU
from .s4d import S4D
from .s5 import S5

__all__ = ["MODELS", "DEFAULTS", "FAMILIES", "ROWS", "OWN_STATE", "BLOCK_KEYS", "build", "register", "unregister",
           "kernel_parameters",
           "param_groups", "DLR", "DSS", "Attention", "LocalAttention", "LRU", "S4D", "S5", "Mamba",
           "RGLRU", "Bidirectional", "Layer", "Model"]

FAMILIES = [dlr, dss, attention, lru, s4d, s5, mamba, rglru]  # the one list of model files, in MODELS order

_BLOCK = dict(d_model=128, n_layers=1, prenorm=False, glu=False, dropout=0.0,
              vocab_size=None, t_out=None)
BLOCK_KEYS = tuple(_BLOCK)  # the shared block's keys, which every model takes
DEFAULTS = {}  # model -> every key it takes, with its default
ROWS = {}  # model -> the model whose preset rows it uses
OWN_STATE = {}  # model -> its recurrence LR from the row's (or None), for those keeping their own state
MODELS = ()
_FILE = {}  # model -> the file (family) that defines it


def _add(family):
    """Enter a family's models into the tables above (checked first, so a bad one adds nothing)."""
    global MODELS
    config = getattr(family, "CONFIG", None)
    if not isinstance(config, dict) or not config or not callable(getattr(family, "mixer", None)):
        raise ValueError(f"{family!r} must declare CONFIG (model name -> its keys and defaults) and mixer(name, cfg)")
    for name, keys in config.items():
        if name in _FILE and _FILE[name] is not family:
            raise ValueError(f"model {name!r} is defined already (by {getattr(_FILE[name], '__name__', _FILE[name])})")
        clash = sorted(set(keys) & set(_BLOCK))
        if clash:
            raise ValueError(f"model {name!r} redefines the block's keys {', '.join(clash)}")
    for name, keys in config.items():
        _FILE[name] = family
        DEFAULTS[name] = {**_BLOCK, **keys}
    ROWS.update(getattr(family, "ROWS", {}))
    OWN_STATE.update(getattr(family, "OWN_STATE", {}))
    MODELS = tuple(DEFAULTS)


def register(family):
    """Add a model file (a module, or any object with CONFIG, mixer and optionally check and ROWS)
    at run time: every name in its CONFIG becomes a model build() and evaluate know."""
    _add(family)
    FAMILIES.append(family)
    return family


def unregister(family):
    """Remove a family added with register (tests)."""
    global MODELS
    FAMILIES.remove(family)
    for name in family.CONFIG:
        del _FILE[name], DEFAULTS[name]
        ROWS.pop(name, None)
        OWN_STATE.pop(name, None)
    MODELS = tuple(DEFAULTS)


for _family in FAMILIES:
    _add(_family)

_POSITIVE = ("d_model", "n_layers", "d_state", "n_heads", "chunk_size")
_POSITIVE_OR_NONE = ("vocab_size", "t_out", "kernel_chunk")
_BOOL = ("prenorm", "glu", "bidirectional")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _config(name, d_input, config):
    """Defaults overlaid with `config`, validated; raises ValueError saying what is allowed."""
    if name not in DEFAULTS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    valid = DEFAULTS[name]
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)} for model {name!r}; "
                         f"valid keys: {', '.join(sorted(valid))}")
    cfg = {**valid, **config}
    for k in _POSITIVE:
        if k in cfg and not (_is_int(cfg[k]) and cfg[k] > 0):
            raise ValueError(f"{k} must be a positive int (got {cfg[k]!r})")
    for k in _POSITIVE_OR_NONE:
        if k in cfg and cfg[k] is not None and not (_is_int(cfg[k]) and cfg[k] > 0):
            raise ValueError(f"{k} must be None or a positive int (got {cfg[k]!r})")
    for k in _BOOL:
        if k in cfg and not isinstance(cfg[k], bool):
            raise ValueError(f"{k} must be True or False (got {cfg[k]!r})")
    if not (isinstance(cfg["dropout"], (int, float)) and 0 <= cfg["dropout"] < 1):
        raise ValueError(f"dropout must be in [0, 1) (got {cfg['dropout']!r})")
    if "dt_min" in cfg:
        lo, hi = cfg["dt_min"], cfg["dt_max"]
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 < lo <= hi):
            raise ValueError(f"need 0 < dt_min <= dt_max (got dt_min={lo!r}, dt_max={hi!r})")
    if cfg["vocab_size"] is None:
        if not (_is_int(d_input) and d_input > 0):
            raise ValueError(f"d_input must be a positive int (got {d_input!r})")
    elif d_input is not None and d_input != cfg["vocab_size"]:
        raise ValueError(f"with vocab_size={cfg['vocab_size']} the inputs are token ids; "
                         f"d_input must be None or {cfg['vocab_size']} (got {d_input!r})")
    if hasattr(_FILE[name], "check"):
        _FILE[name].check(cfg)  # the family's own keys
    return cfg


def build(name, d_input, d_output, **config):
    """Build baseline `name` mapping [B, T, d_input] (or ids [B, T]) -> [B, T, d_output].

    The module's forward is `model(x, t_out=None)`; `model.config` holds the
    resolved configuration (defaults included).
    """
    cfg = _config(name, d_input, config)
    if not (_is_int(d_output) and d_output > 0):
        raise ValueError(f"d_output must be a positive int (got {d_output!r})")
    mixers = [_FILE[name].mixer(name, cfg) for _ in range(cfg["n_layers"])]
    model = Model(mixers, d_input, d_output, cfg["d_model"],
                  prenorm=cfg["prenorm"], glu=cfg["glu"], dropout=cfg["dropout"],
                  vocab_size=cfg["vocab_size"], t_out=cfg["t_out"])
    model.config = {"name": name, "d_input": d_input, "d_output": d_output, **cfg}
    return model


def kernel_parameters(model):
    """The SSM kernel / recurrence parameters of any model (DLR's Λ and W, DSS's a, b, Δ
    and W, LRU's ν, θ, γ, ...: each mixer's docstring says which, after its paper).

    A mixer marks them by listing their attribute names in `kernel_params`.
    """
    found = {}
    for module in model.modules():
        for attr in getattr(module, "kernel_params", ()):
            p = getattr(module, attr)
            found[id(p)] = p
    return list(found.values())


def param_groups(model, lr, kernel_lr=None, weight_decay=0.0):
    """AdamW parameter groups: kernel parameters get `kernel_lr` (default `lr`) and no
    weight decay (paper §2.3); every other parameter gets `lr` and `weight_decay`.

    Returns a list of dicts with keys params, lr, weight_decay, name ("other" /
    "kernel"); a group with no parameters is left out.
    """
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number (got {lr!r})")
    kernel = kernel_parameters(model)
    ids = {id(p) for p in kernel}
    other = [p for p in model.parameters() if id(p) not in ids]
    groups = [
        {"name": "other", "params": other, "lr": lr, "weight_decay": weight_decay},
        {"name": "kernel", "params": kernel, "lr": lr if kernel_lr is None else kernel_lr,
         "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
