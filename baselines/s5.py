"""S5: the simplified state space layer of Smith, Warrington & Linderman (ICLR 2023).

One multi-input multi-output state space with P states shared by all H channels
(S4 and S4D run H independent single-channel ones), written in the eigenbasis of its
state matrix:

    dx/dt = Λ x + B̃ u,   y = Re(C̃ x)        Λ ∈ C^P diagonal, B̃ ∈ C^{P×H}, C̃ ∈ C^{H×P}

Zero-order hold with one step Δ_p per state (§3.3) gives

    Λ̄ = e^{ΛΔ},  B̄ = (Λ̄ - 1)/Λ ⊙ B̃,   x_k = Λ̄ ⊙ x_{k-1} + B̄ u_k,   y_k = 2·Re(C̃ x_k),

evaluated, as the paper does, with a parallel scan (scan.py): a MIMO state has no
per-channel convolution kernel. Inputs are real and Λ comes in conjugate pairs, so
only one of each pair is kept (P/2 complex states) and the readout is doubled.

Init (§4 and the paper's code): Λ from HiPPO-N, the normal part of HiPPO-LegS,
A_N = A_LegS + p pᵀ with p_n = sqrt(n + 1/2): that is -I/2 plus a skew-symmetric
matrix, so it is diagonalised by a unitary V and its eigenvalues are -1/2 + iω.
The state is split into J blocks (n_blocks), each initialised with the HiPPO-N
eigenvalues of size P/J (block-diagonal V); we keep the ω > 0 half of each pair.
B̃ = V⁻¹B with B real ~ N(0, 1/H) (P×H); C̃ = C V with C complex, each part
~ N(0, 1/P) (the paper samples both from truncated normals of these variances);
Δ log-uniform in [dt_min, dt_max] = [1e-3, 1e-1]; D ~ N(0, 1) is the block's.
Re Λ is clipped at -1e-4 in the forward pass (the paper's clip_eigs option), so the
recurrence never grows on our 2^16-step sequences. Λ, B̃ and Δ are the layer's
`kernel_params` (the paper's SSM learning rate, no weight decay); C̃ is ordinary.

Chosen where the paper goes by task: P = 256 states in J = 8 blocks (its Pathfinder
setting). Bidirectional: two independent layers combined as DLR's Eq. 6 (block.py);
the paper's code instead shares Λ, B̃ between the two directions.
"""

import math

import numpy as np
import torch
from torch import nn

from .block import Bidirectional
from .dss import expm1_complex
from .scan import scan


def hippo_n(n):
    """Eigen-decomposition of the n×n HiPPO-N matrix: (ω [n/2] with ω > 0, V [n, n/2]).

    A_N = -I/2 + S with S skew-symmetric, S_jk = -sqrt(j+1/2)·sqrt(k+1/2) for j > k;
    -iS is Hermitian, so eigh gives real ω and a unitary V with S V = V·diag(iω).
    The kept columns belong to the eigenvalues -1/2 + iω, ω > 0.
    """
    q = np.sqrt(np.arange(n) + 0.5)
    S = -np.tril(np.outer(q, q), -1)  # [n, n]
    S = S - S.T
    omega, V = np.linalg.eigh(-1j * S)  # ascending: the ω > 0 half comes last
    return omega[n // 2:], V[:, n // 2:]


class S5(nn.Module):
    """S5 sequence mixer: u [B, L, H] -> y [B, L, H] (the block adds D ⊙ u).

    Parameters: Lambda_re, Lambda_im [P/2]; B [P/2, H, 2] and C [H, P/2, 2] (real and
    imaginary parts of B̃, C̃); log_step [P/2].
    """

    kernel_params = ("Lambda_re", "Lambda_im", "B", "log_step")

    def __init__(self, d_model, d_state=256, n_blocks=8, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        H, P, J = d_model, d_state, n_blocks
        omega, V = hippo_n(P // J)  # one block: [P/2J], [P/J, P/2J]
        V = np.kron(np.eye(J), V)  # block-diagonal eigenvectors: [P, P/2]
        self.Lambda_re = nn.Parameter(torch.full((P // 2,), -0.5))  # [P/2]
        self.Lambda_im = nn.Parameter(torch.tensor(np.tile(omega, J), dtype=torch.float32))
        B = torch.randn(P, H, dtype=torch.float64).numpy() / math.sqrt(H)  # real B: [P, H]
        Bt = V.conj().T @ B  # B̃ = V⁻¹B (V unitary): [P/2, H]
        self.B = nn.Parameter(torch.tensor(np.stack([Bt.real, Bt.imag], -1), dtype=torch.float32))
        C = torch.randn(H, P, 2, dtype=torch.float64).numpy() / math.sqrt(P)
        Ct = (C[..., 0] + 1j * C[..., 1]) @ V  # C̃ = C V: [H, P/2]
        self.C = nn.Parameter(torch.tensor(np.stack([Ct.real, Ct.imag], -1), dtype=torch.float32))
        log_step = torch.empty(P // 2).uniform_(math.log(dt_min), math.log(dt_max))
        self.log_step = nn.Parameter(log_step)  # [P/2]

    def discretize(self):
        """ZOH: Λ̄ [P/2] and B̄ [P/2, H], complex."""
        lam = torch.complex(self.Lambda_re.clamp(max=-1e-4), self.Lambda_im)  # Λ: [P/2]
        z = lam * self.log_step.exp()  # ΛΔ: [P/2]
        B_bar = (expm1_complex(z) / lam).unsqueeze(-1) * torch.view_as_complex(self.B)  # [P/2, H]
        return torch.exp(z), B_bar

    def forward(self, u):
        lam_bar, B_bar = self.discretize()
        b = torch.complex(u @ B_bar.real.T, u @ B_bar.imag.T)  # B̄ u_k: [B, L, P/2]
        x = scan(lam_bar, b)  # x_k = Λ̄ x_{k-1} + B̄ u_k: [B, L, P/2]
        C = torch.view_as_complex(self.C)  # [H, P/2]
        return 2 * (x.real @ C.real.T - x.imag @ C.imag.T)  # 2·Re(C̃ x): [B, L, H]


# Registration in lrbench.baselines: this file's config keys beyond the shared block's,
# with their defaults, and the mixer build() puts in each layer.
CONFIG = {"s5": dict(d_state=256, n_blocks=8, bidirectional=False, dt_min=1e-3, dt_max=1e-1)}
# Presets: P = 256 in J = 8 blocks is the paper's Pathfinder setting; Λ, B̃ and Δ train at
# min(lr, 1e-3), its ssm_lr on every LRA task.
OWN_STATE = {"s5": lambda lr: min(lr, 1e-3)}


def check(cfg):
    P, J = cfg["d_state"], cfg["n_blocks"]
    if not (isinstance(J, int) and not isinstance(J, bool) and J > 0):
        raise ValueError(f"n_blocks must be a positive int (got {J!r})")
    if P % (2 * J):
        raise ValueError(f"d_state must be a multiple of 2·n_blocks (each block holds conjugate "
                         f"pairs); got d_state={P}, n_blocks={J}")


def mixer(name, cfg):
    make = lambda: S5(cfg["d_model"], cfg["d_state"], cfg["n_blocks"], cfg["dt_min"], cfg["dt_max"])
    return Bidirectional(make(), make()) if cfg["bidirectional"] else make()
