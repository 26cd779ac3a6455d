"""Mamba: the selective state space layer (S6) of Gu & Dao (2023), "Mamba: Linear-Time
Sequence Modeling with Selective State Spaces", as its Mamba block (§3.4, Figure 3).

Unlike the LTI models (DLR, S4D, S5, LRU), the step Δ and the matrices B, C depend on
the input, so there is no convolution kernel; the recurrence itself is evaluated:

    x, z = in_proj(u)                        two branches of width E·H      [B, L, E·H]
    x = SiLU(causal depthwise conv_k(x))     short convolution, k = 4
    Δ = softplus(dt_proj(W_Δ x)),  B = W_B x,  C = W_C x     (Δ through a rank-R bottleneck)
    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t x_t,   y_t = C_t · h_t + D ⊙ x_t    (per channel, N states)
    out = out_proj(y ⊙ SiLU(z))

with A = -exp(A_log) real and diagonal per channel (ZOH for A; Δ·B for the input, the
paper's simplification, §3.2). Init as the paper and its reference code: A = -(1, 2, …, N)
in every channel (S4D-Real), D = 1, E = 2, k = 4, R = ⌈H/16⌉; dt_proj's weight uniform
in ±R^{-1/2} and its bias softplus⁻¹(Δ₀) with Δ₀ log-uniform in [dt_min, dt_max] =
[1e-3, 1e-1] (floored at 1e-4); in_proj, x_proj, out_proj and the convolution keep
PyTorch's default init, as the reference code does. A_log and D are the layer's
`kernel_params` (the reference code exempts them from weight decay).

The selective scan runs in chunks of `scan_chunk` positions: within a chunk, the
parallel scan of scan.py over [B, T, E·H, N]; across chunks, the state h [B, E·H, N] is
carried in a loop over the L/T chunks. Under autograd each chunk is checkpointed, so
only its inputs and incoming state are kept and its [B, T, E·H, N] tensors are
recomputed in the backward pass: memory O(B·L·E·H + B·E·H·N·(L/T + T)) instead of
O(B·L·E·H·N), which is what lets L = 2^16 train on a CPU. (The paper's CUDA kernel
recomputes the states in the backward pass the same way.)
"""

import math

import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .block import Bidirectional
from .scan import scan


def _chunk(x, dt, A, B, C, h0):
    """One chunk of the selective scan: y [B, T, D] and the state after it [B, D, N]."""
    a = torch.exp(dt.unsqueeze(-1) * A)  # Ā = exp(ΔA): [B, T, D, N]
    b = (dt * x).unsqueeze(-1) * B.unsqueeze(2)  # B̄x = ΔBx: [B, T, D, N]
    h = scan(a, b, h0)  # [B, T, D, N]
    y = (h @ C.unsqueeze(-1)).squeeze(-1)  # C_t · h_t: [B, T, D]
    return y, h[:, -1]


def selective_scan(x, dt, A, B, C, chunk):
    """y_t = C_t · h_t with h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t, h_{-1} = 0.

    x, dt: [B, L, D]; A: [D, N]; B, C: [B, L, N]. Returns y [B, L, D].
    """
    grad = torch.is_grad_enabled()
    h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])  # [B, D, N]
    ys = []
    for s in range(0, x.shape[1], chunk):
        part = (x[:, s:s + chunk], dt[:, s:s + chunk], A, B[:, s:s + chunk], C[:, s:s + chunk], h)
        if grad:  # keep only the chunk's inputs; redo its [B, T, D, N] tensors in the backward pass
            y, h = checkpoint(_chunk, *part, use_reentrant=False, preserve_rng_state=False)
        else:
            y, h = _chunk(*part)
        ys.append(y)
    return torch.cat(ys, dim=1)  # [B, L, D]


class Mamba(nn.Module):
    """Mamba block as a sequence mixer: u [B, L, H] -> [B, L, H].

    Parameter names follow the reference implementation (mamba_ssm), so its state dict
    loads into this module as it is.
    """

    kernel_params = ("A_log", "D")

    def __init__(self, d_model, d_state=16, expand=2, d_conv=4, dt_rank=None, dt_min=1e-3,
                 dt_max=1e-1, scan_chunk=64):
        super().__init__()
        H, N = d_model, d_state
        D = expand * H
        R = dt_rank or math.ceil(H / 16)
        self.dims, self.scan_chunk = (D, N, R), scan_chunk
        self.in_proj = nn.Linear(H, 2 * D, bias=False)  # x and z: [2D, H]
        self.conv1d = nn.Conv1d(D, D, d_conv, groups=D, padding=d_conv - 1)  # depthwise
        self.x_proj = nn.Linear(D, R + 2 * N, bias=False)  # Δ (rank R), B, C
        self.dt_proj = nn.Linear(R, D)
        nn.init.uniform_(self.dt_proj.weight, -R**-0.5, R**-0.5)
        dt = torch.empty(D).uniform_(math.log(dt_min), math.log(dt_max)).exp().clamp(min=1e-4)
        with torch.no_grad():  # softplus(bias) = Δ₀
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(D, 1))
        self.D = nn.Parameter(torch.ones(D))  # [D]
        self.out_proj = nn.Linear(D, H, bias=False)

    def forward(self, u):
        D, N, R = self.dims
        L = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)  # [B, L, D] each
        x = self.conv1d(x.transpose(1, 2))[..., :L]  # causal: output t sees inputs ≤ t: [B, D, L]
        x = F.silu(x.transpose(1, 2))  # [B, L, D]
        dt, B, C = self.x_proj(x).split([R, N, N], dim=-1)  # [B, L, R], [B, L, N], [B, L, N]
        dt = F.softplus(self.dt_proj(dt))  # Δ > 0: [B, L, D]
        A = -torch.exp(self.A_log)  # [D, N]
        y = selective_scan(x, dt, A, B, C, self.scan_chunk) + self.D * x  # [B, L, D]
        return self.out_proj(y * F.silu(z))  # [B, L, H]


# Registration in lrbench.baselines: this file's config keys beyond the shared block's,
# with their defaults, and the mixer build() puts in each layer.
CONFIG = {"mamba": dict(d_state=16, bidirectional=False, expand=2, d_conv=4, dt_rank=None,
                        dt_min=1e-3, dt_max=1e-1, scan_chunk=64)}
# Presets: N = 16, E = 2, a width-4 convolution and Δ in [1e-3, 1e-1] are the paper's defaults,
# with one LR for every parameter.
OWN_STATE = {"mamba": None}


def check(cfg):
    for k in ("expand", "d_conv", "scan_chunk"):
        v = cfg[k]
        if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            raise ValueError(f"{k} must be a positive int (got {v!r})")
    v = cfg["dt_rank"]
    if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
        raise ValueError(f"dt_rank must be None (⌈d_model/16⌉) or a positive int (got {v!r})")


def mixer(name, cfg):
    keys = ("d_state", "expand", "d_conv", "dt_rank", "dt_min", "dt_max", "scan_chunk")
    make = lambda: Mamba(cfg["d_model"], **{k: cfg[k] for k in keys})
    return Bidirectional(make(), make()) if cfg["bidirectional"] else make()
