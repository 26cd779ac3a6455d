"""DLR: the diagonal linear RNN of Gupta, Mehta & Berant (2022), paper §2.

A DLR with eigenvalues λ ∈ C^N and output weights w ∈ C^N maps u ∈ R^L to

    x_k = diag(λ) x_{k-1} + 1·u_k,   y_k = Re <w, x_k> = Σ_{j≤k} Re(K_{k-j}) u_j,
    K_l = Σ_n w_n λ_n^l                                              (Eq. 1-4)

so a layer is a long convolution whose kernel is a Vandermonde product. Each of
the H channels has its own w (W ∈ C^{H×N}); λ is shared across channels and
parameterised as λ = exp(-c² + iθ) so that |λ| ≤ 1 (§2.3).

The paper's Figure 4 forms the N×L matrix λ_n^l, which needs 32 GB at
N = 4096, L = 2^20. `vandermonde` below never does: it splits l = m·C + j into
chunks of C positions, so λ^l = λ^{mC} · λ^j, where λ^j (j < C) is one N×C
matrix shared by every chunk and λ^{mC} is a cheap per-chunk prefactor. A group
of chunks then costs one dense matmul; the backward pass keeps only the λ^j
block and forms the per-chunk products again instead of storing them. Memory is
O(H·L + N·C) both ways.
"""

import math

import torch
from torch import nn

TWO_PI = 2 * math.pi
# Complex elements of the λ^j block (and of one group of prefactored W) when
# the caller gives no chunk: 2^22 complex64 = 32 MiB per block. Chunks are at
# least MIN_CHUNK long, so that per-channel λ (DSS) still gets usable matmuls.
BLOCK_ELEMENTS = 2**22
MIN_CHUNK = 32


def powers(log_lam, ls):
    """λ^l = exp(l · log λ) for each λ in `log_lam` [..., N] and each integer l in `ls` [G].

    Returns [..., N, G] in log_lam's dtype. The phase l·θ is formed in float64 and
    reduced mod 2π before the cast: in float32, θ·l at l = 2^20 is off by ~0.1 rad,
    which scrambles long kernels. (A float32 θ times an l < 2^29 is exact in float64.)
    """
    ls = ls.to(torch.float64)
    mag = torch.exp(log_lam.real.double().unsqueeze(-1) * ls)  # [..., N, G]
    ang = torch.remainder(log_lam.imag.double().unsqueeze(-1) * ls, TWO_PI)  # [..., N, G]
    real = log_lam.real.dtype
    return torch.polar(mag.to(real), ang.to(real))


def _plan(L, chunk, H, Hz):
    """Chunk length C, number of chunks M, and chunks per group G."""
    C = max(1, min(chunk, L))
    M = -(-L // C)
    # A group of G chunks is one matmul with (H/Hz)·G rows against the N×C block;
    # G·H/Hz ≈ C keeps it square-ish (fast) and its memory at the size of the block.
    G = max(1, (Hz * C) // H)
    return C, M, G


def _tables(log_lam, C, G):
    """P = λ^j (j < C) [S, Hz, N, C] and Q = λ^{iC} (i < G) [S, Hz, N, G], in one `powers` call."""
    dev = log_lam.device
    ls = torch.cat([torch.arange(C, device=dev), torch.arange(G, device=dev) * C])
    return powers(log_lam, ls).split([C, G], dim=-1)


def _groups(log_lam, Q, C, M, G):
    """For each group of up to G chunks: (first chunk m0, count g, starts l0 [g], λ^{l0} [S, Hz, g, N]).

    λ^{l0} = λ^{m0·C} · λ^{iC} (i < g): a product of two accurate powers, never a
    power taken by repeated multiplication. (torch.full, not torch.tensor([...]):
    a host-to-device copy would stall the stream.)
    """
    for m0 in range(0, M, G):
        g = min(G, M - m0)
        lam0 = Q[..., :g]  # [S, Hz, N, g]
        if m0:
            lam0 = powers(log_lam, torch.full((1,), m0 * C, device=Q.device)) * lam0
        yield m0, g, torch.arange(m0, m0 + g, device=Q.device) * C, lam0.transpose(-1, -2)


class _Vandermonde(torch.autograd.Function):
    """K[s, h, l] = Σ_n W[s, h, n] · exp(l · log_lam[s, h or 0, n]), for 0 ≤ l < L.

    log_lam: complex [S, Hz, N] with Hz = 1 (λ shared by the H channels: DLR) or
    Hz = H (λ per channel: DSS). W: complex [S, H, N]. Returns complex [S, H, L].
    Gradients (PyTorch's conjugate-Wirtinger convention): with G_l = conj(dK_l),
        dW_n = conj(Σ_l G_l λ_n^l),   d(log λ_n) = conj(Σ_h W_hn Σ_l G_hl · l · λ_n^l).
    """

    @staticmethod
    def forward(ctx, log_lam, W, L, chunk):
        S, H, N = W.shape
        Hz = log_lam.shape[1]
        C, M, G = _plan(L, chunk, H, Hz)
        P, Q = _tables(log_lam, C, G)  # λ^j: [S, Hz, N, C], λ^{iC}: [S, Hz, N, G]
        K = W.new_empty(S, H, L)
        for m0, g, _, lam0 in _groups(log_lam, Q, C, M, G):
            Wp = (W.unsqueeze(2) * lam0).reshape(S, Hz, -1, N)  # rows (h, g): [S, Hz, H/Hz·g, N]
            a, b = m0 * C, min((m0 + g) * C, L)
            K[:, :, a:b] = (Wp @ P).reshape(S, H, g * C)[:, :, : b - a]  # [S, H, b-a]
        ctx.save_for_backward(log_lam, W, P, Q)  # O(N·C): one block and a small table
        ctx.plan, ctx.L = (C, M, G), L
        return K

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_K):
        log_lam, W, P, Q = ctx.saved_tensors
        (C, M, G), L = ctx.plan, ctx.L
        S, H, N = W.shape
        Hz = P.shape[1]
        Gc = W.new_zeros(S, H, M * C)  # zero-padded to whole chunks: [S, H, M·C]
        Gc[:, :, :L] = grad_K.conj()
        PT = P.transpose(-1, -2)  # [S, Hz, C, N]
        jr = torch.arange(C, device=W.device, dtype=P.real.dtype)  # [C]
        gW = torch.zeros_like(W)  # Σ_l G_l λ^l: [S, H, N]
        gz = torch.zeros_like(W)  # Σ_l G_l l λ^l, times W: [S, H, N]
        for m0, g, l0, lam0 in _groups(log_lam, Q, C, M, G):
            Gg = Gc[:, :, m0 * C : (m0 + g) * C].reshape(S, Hz, -1, C)  # [S, Hz, R, C]
            # One matmul gives both Σ_j G λ^j and Σ_j G·j·λ^j for every chunk.
            XY = torch.cat([Gg, Gg * jr], dim=2) @ PT  # [S, Hz, 2R, N]
            X, Y = (t.reshape(S, H, g, N) for t in XY.chunk(2, dim=2))
            T = X * lam0  # Σ_{l in chunk} G_l λ^l: [S, H, g, N]
            gW += T.sum(2)
            # l = l0 + j, so Σ G·l·λ^l = l0·T + λ^{l0}·Y.
            U = T * l0.to(jr.dtype).unsqueeze(-1) + Y * lam0  # [S, H, g, N]
            gz += (U * W.unsqueeze(2)).sum(2)
        if Hz == 1:
            gz = gz.sum(1, keepdim=True)  # λ shared by the channels: [S, 1, N]
        return gz.conj(), gW.conj(), None, None


def vandermonde(log_lam, W, L, chunk=None):
    """Kernel K [S, H, L] (complex) = Σ_n W_n λ_n^l, chunked over l; see `_Vandermonde`.

    `chunk` (positions per chunk) bounds memory at a few blocks of S·Hz·N·chunk
    complex numbers; None picks it so that a block holds BLOCK_ELEMENTS. With λ per
    channel (Hz = H: DSS, S4D) the tables of powers cost as much as the matmuls, Hz·N·(C + G)
    transcendentals with G = C, so None also caps C near √L, where C + L/C is least (one
    S4D layer at L = 1024 and H = 32: 10× faster than C = L; benchmarks/bench_models.py).
    """
    if chunk is None:
        chunk = max(MIN_CHUNK, BLOCK_ELEMENTS // log_lam.numel())
        if log_lam.shape[1] > 1:
            chunk = min(chunk, max(MIN_CHUNK, 1 << round(math.log2(math.sqrt(L)))))
    return _Vandermonde.apply(log_lam, W, L, chunk)


def fft_conv(u, k):
    """Causal convolution y_i = Σ_{j≤i} k_{i-j} u_j via FFT of length 2L (paper §A.1).

    u: [B, H, L]; k: [H, L], or [H, 2L] for a bidirectional kernel (Figure 4's
    layout: forward kernel, then the flipped backward kernel). Returns [B, H, L].
    Zero-padding to 2L turns the circular product into a linear one.
    """
    L = u.shape[-1]
    k_f = torch.fft.rfft(k, n=2 * L)  # [H, L+1]
    u_f = torch.fft.rfft(u, n=2 * L)  # [B, H, L+1]
    return torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # [B, H, L]


def two_sided(k):
    """[S, H, L] kernels -> [H, L] (S = 1) or the bidirectional [H, 2L] of Eq. 6.

    Placing flip(K_bwd) after K_fwd makes the circular convolution of length 2L
    add Σ_{j>i} K_bwd[j-i-1] u_j: the backward direction starts at i+1, so the
    current position is counted once, by the forward kernel.
    """
    if k.shape[0] == 1:
        return k[0]
    return torch.cat([k[0], k[1].flip(-1)], dim=-1)  # [H, 2L]


class DLR(nn.Module):
    """DLR sequence mixer: u [B, L, H] -> y [B, L, H] (no skip, activation or projection;
    the shared block in block.py adds those).

    Parameters per direction s (two independent DLRs when bidirectional, Eq. 5):
      log_lam_re c [S, N], log_lam_im θ [S, N]: λ = exp(-c² + iθ);
      W [S, H, N, 2]: real and imaginary parts of w for every channel.
    Init (§2.3): θ_n = 2πn/N; c_n = sqrt(Δ_n / 2) with Δ_n log-uniform in
    [dt_min, dt_max] (so |λ_n| = exp(-Δ_n/2)); Re W, Im W ~ N(0, 1/N²).
    `prod`: cast the kernel as Re K · Im K instead of Re K (DLR-prod, §2.1).
    """

    kernel_params = ("log_lam_re", "log_lam_im", "W")

    def __init__(self, d_model, d_state=4096, bidirectional=False, dt_min=5e-4, dt_max=0.5,
                 prod=False, kernel_chunk=None):
        super().__init__()
        S, H, N = (2 if bidirectional else 1), d_model, d_state
        self.prod, self.kernel_chunk = prod, kernel_chunk
        r = torch.empty(S, N).uniform_(math.log(dt_min), math.log(dt_max))
        self.log_lam_re = nn.Parameter(torch.sqrt(torch.exp(r) / 2))  # [S, N]
        theta = TWO_PI * torch.arange(N, dtype=torch.float32) / N
        self.log_lam_im = nn.Parameter(theta.repeat(S, 1))  # [S, N]
        self.W = nn.Parameter(torch.randn(S, H, N, 2) / N)  # [S, H, N, 2]

    def log_lam(self):
        """log λ = -c² + iθ: [S, N] complex."""
        return torch.complex(-self.log_lam_re**2, self.log_lam_im)

    def kernel(self, L):
        """Real kernels [S, H, L]: Re K, or Re K · Im K for DLR-prod."""
        K = vandermonde(self.log_lam().unsqueeze(1), torch.view_as_complex(self.W), L,
                        self.kernel_chunk)  # [S, H, L] complex
        return K.real * K.imag if self.prod else K.real

    def forward(self, u):
        k = two_sided(self.kernel(u.shape[1]))  # [H, L] or [H, 2L]
        return fft_conv(u.transpose(1, 2), k).transpose(1, 2)  # [B, L, H]


# Registration in lrbench.baselines (see its docstring): the models this file defines, their keys
# beyond the shared block's with defaults (Δ range: the paper's §2.3), the mixer build() puts in
# each layer, and the model whose rows of the paper's tables DLR-prod uses (it has none of its own).
CONFIG = {name: dict(d_state=4096, bidirectional=False, kernel_chunk=None, dt_min=5e-4, dt_max=0.5)
          for name in ("dlr", "dlr-prod")}
ROWS = {"dlr-prod": "dlr"}


def mixer(name, cfg):
    return DLR(cfg["d_model"], cfg["d_state"], cfg["bidirectional"], cfg["dt_min"], cfg["dt_max"],
               prod=name == "dlr-prod", kernel_chunk=cfg["kernel_chunk"])
