"""LRU: the Linear Recurrent Unit of Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De (2023),
"Resurrecting Recurrent Neural Networks for Long Sequences".

A linear RNN with a complex diagonal recurrence on N states, read out linearly:

    x_k = λ ⊙ x_{k-1} + γ ⊙ (B u_k),    y_k = Re(C x_k)  (+ D ⊙ u_k: the block's skip)

    λ_n = exp(-exp(ν_n) + i·exp(θ_n)),   B ∈ C^{N×H},  C ∈ C^{H×N}

|λ| = exp(-exp(ν)) < 1 for every ν, so the recurrence is stable by construction, and
magnitude and phase are learned separately (the paper's "stable exponential
parameterisation", §3.3). γ normalises the input (§3.4): a white unit-variance input
gives x_n a variance of γ_n² / (1 - |λ_n|²), so γ = sqrt(1 - |λ|²) keeps every state
at unit scale however close |λ| comes to 1.

Init, as the paper's Appendix A code: |λ| uniform on the ring r_min ≤ |λ| ≤ r_max
(uniform over the ring's area: |λ|² uniform in [r_min², r_max²]); phase uniform in
[0, max_phase]; log γ = log sqrt(1 - |λ|²), then trained as a parameter of its own;
Re B, Im B ~ N(0, 1/(2H)); Re C, Im C ~ N(0, 1/N). D ~ N(0, 1) is the block's.

Evaluated with the parallel scan of scan.py (the paper uses an associative scan too);
memory O(B·L·(H + N)). The paper gives ν, θ, γ a smaller learning rate and no weight
decay: they are this layer's `kernel_params`; B and C are ordinary weights.

Where the paper leaves the choice to the task we chose N = 256 states and the ring
[0.9, 0.999] with max_phase = 2π (memory of up to ~1000 steps at init, phases
everywhere, like DLR's θ_n = 2πn/N). The paper found that PathX (L = 16K) needs
|λ| initialised closer to 1 and phases restricted to a small range (π/10): set
r_min, r_max and max_phase that way for our longest tasks (Pathfinder at 2^16).
"""

import math

import torch
from torch import nn

from .block import Bidirectional
from .scan import scan


class LRU(nn.Module):
    """LRU sequence mixer: u [B, L, H] -> y [B, L, H] (the block adds D ⊙ u)."""

    kernel_params = ("nu_log", "theta_log", "gamma_log")

    def __init__(self, d_model, d_state=256, r_min=0.9, r_max=0.999, max_phase=2 * math.pi):
        super().__init__()
        H, N = d_model, d_state
        u1, u2 = torch.rand(N), torch.rand(N)
        mag2 = u1 * (r_max**2 - r_min**2) + r_min**2  # |λ|²: uniform over the ring's area
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(mag2)))  # |λ| = exp(-exp(ν)): [N]
        self.theta_log = nn.Parameter(torch.log(max_phase * u2))  # arg λ = exp(θ): [N]
        self.gamma_log = nn.Parameter(0.5 * torch.log1p(-mag2))  # γ = sqrt(1 - |λ|²): [N]
        self.B_re = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))  # [N, H]
        self.B_im = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))  # [N, H]
        self.C_re = nn.Parameter(torch.randn(H, N) / math.sqrt(N))  # [H, N]
        self.C_im = nn.Parameter(torch.randn(H, N) / math.sqrt(N))  # [H, N]

    def lam(self):
        """λ = exp(-exp(ν)) · e^{i·exp(θ)}: [N] complex."""
        return torch.polar(torch.exp(-torch.exp(self.nu_log)), torch.exp(self.theta_log))

    def forward(self, u):
        gamma = torch.exp(self.gamma_log)  # [N]
        b = torch.complex(u @ self.B_re.T, u @ self.B_im.T) * gamma  # γ ⊙ B u: [B, L, N]
        x = scan(self.lam(), b)  # x_k = λ x_{k-1} + b_k: [B, L, N]
        return x.real @ self.C_re.T - x.imag @ self.C_im.T  # Re(C x): [B, L, H]


# Registration in lrbench.baselines: this file's config keys beyond the shared block's,
# with their defaults, and the mixer build() puts in each layer.
CONFIG = {"lru": dict(d_state=256, bidirectional=False, r_min=0.9, r_max=0.999,
                      max_phase=2 * math.pi)}
# Presets: N = 256 and |λ| in [0.9, 0.999] are the paper's LRA setting (max_phase 2π is ours: the
# paper narrows it to π/10 for PathX only); ν, θ, γ train at a smaller LR, as in the paper (the 1/2
# is ours).
OWN_STATE = {"lru": lambda lr: lr / 2}


def check(cfg):
    lo, hi, phase = cfg["r_min"], cfg["r_max"], cfg["max_phase"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi, phase)):
        raise ValueError(f"r_min, r_max and max_phase must be numbers "
                         f"(got {lo!r}, {hi!r}, {phase!r})")
    if not 0 <= lo <= hi < 1:
        raise ValueError(f"need 0 <= r_min <= r_max < 1 (got r_min={lo!r}, r_max={hi!r})")
    if not 0 < phase <= 2 * math.pi:
        raise ValueError(f"max_phase must be in (0, 2π] (got {phase!r})")


def mixer(name, cfg):
    make = lambda: LRU(cfg["d_model"], cfg["d_state"], cfg["r_min"], cfg["r_max"], cfg["max_phase"])
    return Bidirectional(make(), make()) if cfg["bidirectional"] else make()
