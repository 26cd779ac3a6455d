"""S4D: the diagonal state space layer of Gu, Gupta, Goel & Ré (2022), "On the
Parameterization and Initialization of Diagonal State Space Models".

Each of the H channels is its own single-input single-output state space with N real
states, diagonalised into N/2 complex-conjugate pairs (the other half is implied):

    dx/dt = A x + B u,  y = C x,   A = diag(A_n),  A_n = -exp(a_n) + i·b_n   (n < N/2)

Zero-order hold with the channel's step Δ gives x_k = e^{ΔA} x_{k-1} + (e^{ΔA} - 1)/A · B u_k,
i.e. a convolution with the kernel (the paper's Vandermonde form, §3)

    K_l = 2·Re Σ_{n<N/2} C_n B_n (e^{ΔA_n} - 1)/A_n · e^{ΔA_n l},

where the 2·Re adds each conjugate pair. The kernel comes from dlr.py's chunked
Vandermonde product with a per-channel λ = e^{ΔA} (memory O(H·L + block), never the
H×N×L tensor) and is applied by FFT convolution of length 2L (dlr.fft_conv).

Parameterisation and init (§3, §4): Re A = -exp(a) < 0 (the paper's "exp" choice,
stable for any a); S4D-Lin A_n = -1/2 + iπn, or S4D-Inv A_n = -1/2 + i(N/π)(N/(2n+1) - 1);
Δ log-uniform in [dt_min, dt_max] = [1e-3, 1e-1] per channel; C complex normal with
variance 1 (each part N(0, 1/2)). B is fixed at 1: in a diagonal SISO system only the
products B_n C_n matter, so a trained C covers a trained B (as the paper's minimal
implementation does). D is the block's. A and Δ are the layer's `kernel_params` (own
learning rate, no weight decay, as in S4's training code); C is an ordinary weight.

Chosen: N = 64 (S4's default state size) and S4D-Lin. Bidirectional: two independent
sets of A, Δ, C whose kernels are joined as DLR's Eq. 6 (dlr.two_sided).
"""

import math

import torch
from torch import nn

from .dlr import fft_conv, two_sided, vandermonde
from .dss import expm1_complex

INITS = ("lin", "inv")


def init_imag(N, init):
    """Im A_n for n < N/2: S4D-Lin πn, or S4D-Inv (N/π)(N/(2n+1) - 1)."""
    n = torch.arange(N // 2, dtype=torch.float64)
    im = math.pi * n if init == "lin" else (N / math.pi) * (N / (2 * n + 1) - 1)
    return im.float()


class S4D(nn.Module):
    """S4D sequence mixer: u [B, L, H] -> y [B, L, H] (the block adds D ⊙ u).

    Parameters per direction s: log_A_real [S, H, N/2] (Re A = -exp), A_imag [S, H, N/2],
    log_dt [S, H], C [S, H, N/2, 2] (real and imaginary parts).
    """

    kernel_params = ("log_A_real", "A_imag", "log_dt")

    def __init__(self, d_model, d_state=64, bidirectional=False, dt_min=1e-3, dt_max=1e-1,
                 init="lin", kernel_chunk=None):
        super().__init__()
        S, H, N = (2 if bidirectional else 1), d_model, d_state
        self.kernel_chunk = kernel_chunk
        self.log_A_real = nn.Parameter(torch.full((S, H, N // 2), math.log(0.5)))  # Re A = -1/2
        self.A_imag = nn.Parameter(init_imag(N, init).repeat(S, H, 1))  # [S, H, N/2]
        log_dt = torch.empty(S, H).uniform_(math.log(dt_min), math.log(dt_max))
        self.log_dt = nn.Parameter(log_dt)  # [S, H]
        self.C = nn.Parameter(torch.randn(S, H, N // 2, 2) * math.sqrt(0.5))  # [S, H, N/2, 2]

    def A(self):
        """Continuous-time eigenvalues: [S, H, N/2] complex."""
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def kernel(self, L):
        """Real kernels [S, H, L]."""
        A = self.A()
        dtA = self.log_dt.exp().unsqueeze(-1) * A  # ΔA = log λ per channel: [S, H, N/2]
        # ZOH input factor (e^{ΔA} - 1)/A and the conjugate pair's 2 folded into W.
        W = 2 * torch.view_as_complex(self.C) * expm1_complex(dtA) / A  # [S, H, N/2]
        return vandermonde(dtA, W, L, self.kernel_chunk).real  # [S, H, L]

    def forward(self, u):
        k = two_sided(self.kernel(u.shape[1]))  # [H, L] or [H, 2L]
        return fft_conv(u.transpose(1, 2), k).transpose(1, 2)  # [B, L, H]


# Registration in lrbench.baselines: this file's config keys beyond the shared block's,
# with their defaults, and the mixer build() puts in each layer.
CONFIG = {"s4d": dict(d_state=64, bidirectional=False, dt_min=1e-3, dt_max=1e-1, init="lin",
                      kernel_chunk=None)}
# Presets: N = 64, S4D-Lin and Δ in [1e-3, 1e-1] are the paper's defaults; A and Δ train at
# min(lr, 1e-3) with no weight decay, as S4's training code does.
OWN_STATE = {"s4d": lambda lr: min(lr, 1e-3)}


def check(cfg):
    if cfg["init"] not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)} (got {cfg['init']!r})")
    if cfg["d_state"] % 2:
        raise ValueError(f"d_state must be even: N real states are N/2 conjugate pairs "
                         f"(got {cfg['d_state']})")


def mixer(name, cfg):
    return S4D(cfg["d_model"], cfg["d_state"], cfg["bidirectional"], cfg["dt_min"], cfg["dt_max"],
               cfg["init"], cfg["kernel_chunk"])
