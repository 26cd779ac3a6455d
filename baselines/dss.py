"""DSS_EXP: the diagonal state space of Gupta, Gu & Berant (2022), as compared in the DLR paper.

DSS discretises the continuous state space dx/dt = diag(Λ) x + 1·u, y = <w, x>
with zero-order hold over steps of size Δ, which yields a DLR (DLR paper §2.1):

    x_k = diag(e^{ΔΛ}) x_{k-1} + 1·u_k,   y_k = Re <w ⊙ (e^{ΔΛ} - 1)/Λ, x_k>,

so its kernel is K_l = Re Σ_n W_n (e^{ΔΛ_n} - 1)/Λ_n · e^{ΔΛ_n l}. Compared with
DLR, λ = e^{ΔΛ} now differs per channel (Δ is per channel), and W carries the
discretisation factor. We therefore reuse DLR's chunked Vandermonde kernel with
a per-channel log λ = ΔΛ: the same O(H·L + block) memory, no H×N×L tensor.
"""

import math

import torch
from torch import nn

from .dlr import fft_conv, two_sided, vandermonde


def expm1_complex(z):
    """e^z - 1 for complex z without the cancellation of exp(z) - 1 at small |z|.

    With z = x + iy: e^z - 1 = (expm1(x)·cos y - 2 sin²(y/2)) + i e^x sin y.
    ΔΛ can be ~1e-4 in magnitude; exp(z) - 1 in float32 would keep ~3 digits.
    """
    x, y = z.real, z.imag
    re = torch.expm1(x) * torch.cos(y) - 2 * torch.sin(y / 2) ** 2
    im = torch.exp(x) * torch.sin(y)
    return torch.complex(re, im)


class DSS(nn.Module):
    """DSS_EXP sequence mixer: u [B, L, H] -> y [B, L, H].

    Parameters per direction s (independent state spaces when bidirectional):
      a [S, N], b [S, N]: Λ = -exp(a) + i b, initialised to -0.5 + iπn;
      log_dt [S, H]: per-channel step Δ = exp(log_dt), log-uniform in [dt_min, dt_max];
      W [S, H, N, 2]: real and imaginary parts of w, each ~ N(0, 1).
    The real part of Λ is -exp(a) < 0, so |e^{ΔΛ}| < 1 and kernels stay bounded.
    """

    kernel_params = ("a", "b", "log_dt", "W")

    def __init__(self, d_model, d_state=4096, bidirectional=False, dt_min=1e-3, dt_max=1e-1,
                 kernel_chunk=None):
        super().__init__()
        S, H, N = (2 if bidirectional else 1), d_model, d_state
        self.kernel_chunk = kernel_chunk
        self.a = nn.Parameter(torch.full((S, N), math.log(0.5)))  # Re Λ = -0.5
        self.b = nn.Parameter((math.pi * torch.arange(N, dtype=torch.float32)).repeat(S, 1))
        log_dt = torch.empty(S, H).uniform_(math.log(dt_min), math.log(dt_max))
        self.log_dt = nn.Parameter(log_dt)  # [S, H]
        self.W = nn.Parameter(torch.randn(S, H, N, 2))  # [S, H, N, 2]

    def kernel(self, L):
        """Real kernels [S, H, L]."""
        lam = torch.complex(-torch.exp(self.a), self.b).unsqueeze(1)  # Λ: [S, 1, N]
        dt_lam = self.log_dt.exp().unsqueeze(-1) * lam  # ΔΛ = log λ per channel: [S, H, N]
        # ZOH scaling (e^{ΔΛ} - 1)/Λ folded into W, so the rest is a plain DLR kernel.
        W = torch.view_as_complex(self.W) * expm1_complex(dt_lam) / lam  # [S, H, N]
        return vandermonde(dt_lam, W, L, self.kernel_chunk).real  # [S, H, L]

    def forward(self, u):
        k = two_sided(self.kernel(u.shape[1]))  # [H, L] or [H, 2L]
        return fft_conv(u.transpose(1, 2), k).transpose(1, 2)  # [B, L, H]


# Registration in lrbench.baselines: this file's config keys beyond the shared block's,
# with their defaults (Δ range: the DSS paper's), and the mixer build() puts in each layer.
CONFIG = {"dss": dict(d_state=4096, bidirectional=False, kernel_chunk=None, dt_min=1e-3, dt_max=1e-1)}


def mixer(name, cfg):
    return DSS(cfg["d_model"], cfg["d_state"], cfg["bidirectional"], cfg["dt_min"], cfg["dt_max"],
               kernel_chunk=cfg["kernel_chunk"])
