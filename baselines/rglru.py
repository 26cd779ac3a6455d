"""RG-LRU: the Real-Gated Linear Recurrent Unit of De, Smith, Fernando et al. (2024),
"Griffin: Mixing Gated Linear Recurrences with Local Attention for Efficient Language
Models", inside Griffin's recurrent block (§2.4, Figure 2).

The RG-LRU is a real diagonal linear recurrence whose decay and input are gated by
the input (§2.4):

    r_t = σ(W_a x_t + b_a)                 recurrence gate
    i_t = σ(W_x x_t + b_x)                 input gate
    a_t = a^{c·r_t},  a = σ(Λ),  c = 8     log a_t = -c·r_t·softplus(-Λ)
    h_t = a_t ⊙ h_{t-1} + sqrt(1 - a_t²) ⊙ (i_t ⊙ x_t)

sqrt(1 - a_t²) normalises the input as LRU's γ does, now per step. The recurrent
block around it (Figure 2): a GeLU branch gate = GeLU(W_g u); a recurrent branch
x = Conv1D_k(W_in u) (temporal, causal, depthwise, k = 4) feeding the RG-LRU; then
out = W_out (gate ⊙ h). Both branches have width E·H.

Init: Λ such that a^c is uniform in [a_min, a_max] = [0.9, 0.999] (§2.4; the paper's
code draws a itself uniformly over a ring instead); the linear maps and the
convolution keep PyTorch's default init. The recurrence is evaluated by the
parallel scan of scan.py over [B, L, E·H]: memory O(B·L·E·H). Λ is the layer's
`kernel_params` entry (no weight decay, as the recurrent parameters of LRU).

Where the paper is silent or chooses for language modelling we chose: dense gate
matrices W_a, W_x with biases, as the equations are written (the paper's code uses
block-diagonal ones); expand E = 1 (Griffin uses 4/3 to match a Transformer's
parameter count); projections without bias; exact GeLU, as the shared block. No
clipping of the square root's gradient: its argument -expm1(2·log a_t) stays
positive unless r_t underflows to exactly 0.
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

from .block import Bidirectional
from .scan import scan

C = 8.0  # the fixed scale c of the recurrence gate's exponent (§2.4)


class RGLRU(nn.Module):
    """Griffin's recurrent block with the RG-LRU as a sequence mixer: u [B, L, H] -> [B, L, H]."""

    kernel_params = ("Lambda",)

    def __init__(self, d_model, expand=1, d_conv=4, a_min=0.9, a_max=0.999):
        super().__init__()
        H, D = d_model, expand * d_model
        self.gate_proj = nn.Linear(H, D, bias=False)  # GeLU branch
        self.in_proj = nn.Linear(H, D, bias=False)  # recurrent branch
        self.conv1d = nn.Conv1d(D, D, d_conv, groups=D, padding=d_conv - 1)  # depthwise, temporal
        self.recurrent_gate_proj = nn.Linear(D, D)  # W_a, b_a
        self.input_gate_proj = nn.Linear(D, D)  # W_x, b_x
        log_a = torch.log(torch.empty(D, dtype=torch.float64).uniform_(a_min, a_max)) / C  # a^c uniform
        lam = log_a - torch.log(-torch.expm1(log_a))  # Λ = logit(a), so σ(Λ) = a: [D]
        self.Lambda = nn.Parameter(lam.float())
        self.out_proj = nn.Linear(D, H, bias=False)

    def forward(self, u):
        L = u.shape[1]
        gate = F.gelu(self.gate_proj(u))  # [B, L, D]
        x = self.conv1d(self.in_proj(u).transpose(1, 2))[..., :L].transpose(1, 2)  # causal: [B, L, D]
        r = torch.sigmoid(self.recurrent_gate_proj(x))  # r_t: [B, L, D]
        i = torch.sigmoid(self.input_gate_proj(x))  # i_t: [B, L, D]
        log_a = -C * r * F.softplus(-self.Lambda)  # log a_t = c·r_t·log σ(Λ): [B, L, D]
        norm = torch.sqrt(-torch.expm1(2 * log_a))  # sqrt(1 - a_t²) without cancellation
        h = scan(torch.exp(log_a), norm * i * x)  # [B, L, D]
        return self.out_proj(gate * h)  # [B, L, H]


# Registration in lrbench.baselines: this file's config keys beyond the shared block's,
# with their defaults, and the mixer build() puts in each layer.
CONFIG = {"rglru": dict(bidirectional=False, expand=1, d_conv=4, a_min=0.9, a_max=0.999)}
# Presets: a^c in [0.9, 0.999] and a width-4 convolution are the paper's; E = 1 is ours (Griffin's
# 4/3 sizes a Transformer MLP we do not have); one LR for every parameter.
OWN_STATE = {"rglru": None}


def check(cfg):
    for k in ("expand", "d_conv"):
        v = cfg[k]
        if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            raise ValueError(f"{k} must be a positive int (got {v!r})")
    lo, hi = cfg["a_min"], cfg["a_max"]
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 < lo <= hi < 1):
        raise ValueError(f"need 0 < a_min <= a_max < 1 (got a_min={lo!r}, a_max={hi!r})")


def mixer(name, cfg):
    make = lambda: RGLRU(cfg["d_model"], cfg["expand"], cfg["d_conv"], cfg["a_min"], cfg["a_max"])
    return Bidirectional(make(), make()) if cfg["bidirectional"] else make()
