"""The diagonal linear recurrence h_t = a_t ⊙ h_{t-1} + b_t, evaluated in parallel.

LRU, S5, RG-LRU and Mamba all reduce to this recurrence along time (dim 1 of b):
LRU and S5 with one complex a per state (time-invariant), RG-LRU and Mamba with a
real a_t that depends on the input. The pairs (a_t, b_t) compose associatively,

    (a, b) followed by (a', b')  =  (a'·a, a'·b + b'),

so all prefixes over L steps take ⌈log2 L⌉ rounds (Hillis & Steele 1986): in the
round with offset d, position t absorbs position t - d, after which position t
holds the recurrence over the last 2d steps. Each round is one fused
multiply-add over the whole tensor; there is no Python loop over time. To pass
over the data fewer times at long L, it runs on two levels (`_two_level`):
blocks of BLOCK positions are scanned all at once (log2 BLOCK rounds), then the
block ends across blocks (a scan L/BLOCK long), then every block is corrected
by the state entering it (one more pass): ~8 full passes instead of log2 L.

Numerics: only products of the a's are formed, never quotients, so |a| ≤ 1 keeps
every intermediate bounded over any span (a cumulative product that underflows to
0 is the correct limit). A time-invariant a is raised to the powers 2^k by
repeated squaring in float64 (relative error ~2^k · 1e-16).

Backward: the adjoint of the recurrence runs the other way,

    ĝ_t = g_t + conj(a_{t+1}) ĝ_{t+1},    ∂b_t = ĝ_t,    ∂a_t = ĝ_t · conj(h_{t-1}),

(PyTorch's conjugate-Wirtinger convention: g = ∂loss/∂conj(h)), which is the same
scan on time-reversed inputs. Only a (when time-varying), h and h0 are kept for it,
never the log L intermediate rounds: memory is a few tensors of b's size.
"""

import torch


BLOCK = 64  # positions per block of the two-level scan (a power of two)


def _prefix(a, b, const):
    """One-level inclusive scan along dim 1 in ⌈log2 L⌉ rounds. Returns (P, h):
    h_t = Σ_{s≤t} (Π_{s<r≤t} a_r) b_s and, for a time-varying a, P_t = Π_{r≤t} a_r
    (None for a constant a). Two buffers per operand are swapped between rounds,
    so a round allocates nothing.
    """
    L = b.shape[1]
    x, y = b.clone(), torch.empty_like(b)
    if const:
        power = a.to(torch.complex128 if a.is_complex() else torch.float64)  # a^d, d = 1
    else:
        p, q = a.clone(), torch.empty_like(a)
    d = 1
    while d < L:
        coef = power.to(b.dtype) if const else p[:, d:]
        y[:, :d] = x[:, :d]
        torch.addcmul(x[:, d:], coef, x[:, :-d], out=y[:, d:])  # b_t + a^(d)_t · b_{t-d}
        x, y = y, x
        if const:
            power = power * power
        else:
            q[:, :d] = p[:, :d]
            torch.mul(p[:, d:], p[:, :-d], out=q[:, d:])  # a^(2d)_t = a^(d)_t · a^(d)_{t-d}
            p, q = q, p
        d *= 2
    return (None if const else p), x


def _two_level(a, b, h0, const):
    """h for the whole sequence: blocks of BLOCK positions scanned at once, then the
    block ends scanned across blocks, then each block corrected by its incoming state.

    Full-size passes: log2(BLOCK) rounds plus one correction, instead of log2(L)
    rounds: the same result with less memory traffic at long L.
    """
    B, L = b.shape[:2]
    T = BLOCK
    if L <= T:
        P, h = _prefix(a, b, const)
        if h0 is not None:
            h = h + P * h0.unsqueeze(1)
        return h
    M = -(-L // T)
    pad = M * T - L  # zero inputs at the end: they never reach earlier positions
    rest = b.shape[2:]
    bb = torch.nn.functional.pad(b, (0, 0) * len(rest) + (0, pad)).reshape(B * M, T, *rest)
    if const:
        _, h = _prefix(a, bb, True)  # within blocks: [B·M, T, ...]
        wide = a.to(torch.complex128 if a.is_complex() else torch.float64)
        inner = torch.cumprod(wide.expand(T, *a.shape), 0)  # a^(j+1), j < T: [T, *a.shape]
        across = inner[-1].to(b.dtype)  # a^T
        inner = inner.to(b.dtype)
    else:
        aa = torch.nn.functional.pad(a, (0, 0) * len(rest) + (0, pad), value=1.0)
        inner, h = _prefix(aa.reshape(B * M, T, *rest), bb, False)  # [B·M, T, ...] each
        inner = inner.reshape(B, M, T, *rest)
        across = inner[:, :, -1]  # a's product over each block: [B, M, ...]
    h = h.reshape(B, M, T, *rest)
    _, ends = _prefix(across, h[:, :, -1], const)  # state at the end of each block: [B, M, ...]
    start = torch.zeros_like(ends[:, :1]) if h0 is None else h0.unsqueeze(1).to(b.dtype)
    incoming = torch.cat([start, ends[:, :-1]], dim=1)  # state entering each block: [B, M, ...]
    if h0 is not None and not const:  # the scan across blocks started from 0, not h0
        incoming[:, 1:] += torch.cumprod(across, 1)[:, :-1] * h0.unsqueeze(1)
    h = h + inner * incoming.unsqueeze(2)  # [B, M, T, ...]
    return h.reshape(B, M * T, *rest)[:, :L]


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0):
        const = a.shape != b.shape
        h = _two_level(a, b, h0, const)
        ctx.const = const
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        a, h, h0 = ctx.saved_tensors
        if ctx.const:
            c = a.conj()
        else:  # ĝ_t picks up conj(a_{t+1}); in reversed time that is the previous element
            c = torch.roll(a.conj().flip(1), 1, dims=1)
        gh = _two_level(c, g.flip(1), None, ctx.const).flip(1)  # ĝ: [B, L, ...]
        ga = gb = gh0 = None
        if ctx.needs_input_grad[0]:
            first = h0.unsqueeze(1) if h0 is not None else torch.zeros_like(h[:, :1])
            prev = torch.cat([first, h[:, :-1]], dim=1)  # h_{t-1}: [B, L, ...]
            ga = (gh * prev.conj()).sum_to_size(a.shape)
        if ctx.needs_input_grad[1]:
            gb = gh
        if h0 is not None and ctx.needs_input_grad[2]:
            gh0 = gh[:, 0] * a[:, 0].conj()
        return ga, gb, gh0


def scan(a, b, h0=None):
    """h_t = a_t ⊙ h_{t-1} + b_t along dim 1 of b [B, L, ...], with h_{-1} = h0 (default 0).

    a: the shape of b (time-varying), or a shape that broadcasts against one time
    step b[:, t] (time-invariant, e.g. [N] for b [B, L, N]). h0: [B, ...] or None,
    only with a time-varying a. Real or complex; a and b of the same dtype.
    Returns h: [B, L, ...].
    """
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must share a dtype (got {a.dtype} and {b.dtype})")
    if h0 is not None and a.shape != b.shape:
        raise ValueError("an initial state h0 needs a time-varying a (a.shape == b.shape)")
    return _Scan.apply(a, b, h0)
