"""Attention mixers of the DLR paper: full multi-head attention (§3.3) and local attention (§3.4).

ATTENTION replaces the DLR convolution in the layer with 4-head softmax attention
and rotary position embeddings; it is causal for the unidirectional (atomic) tasks.
LOCALATTENTION cuts the sequence into non-overlapping chunks of `chunk_size`
(1024) positions; a chunk attends to itself and its adjacent chunk(s) — only
the previous one when causal — so cost is O(L · chunk) instead of O(L²).
"""

import torch
from torch import nn
import torch.nn.functional as F


def rotary(x, base=10000.0):
    """Rotary embedding (Su et al. 2021) on x [B, heads, L, d_head], d_head even.

    Channel pairs (i, i + d/2) are rotated by angle pos · base^(-2i/d), so that
    q·k depends on positions only through their difference. Angles are formed in
    float64: pos · freq at pos ~ 2^18 has a float32 error of ~0.02 rad.
    """
    L, d = x.shape[-2], x.shape[-1]
    half = d // 2
    freq = base ** (-torch.arange(half, dtype=torch.float64, device=x.device) / half)  # [d/2]
    ang = torch.arange(L, dtype=torch.float64, device=x.device).unsqueeze(-1) * freq  # [L, d/2]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # [B, heads, L, d]


class Attention(nn.Module):
    """Multi-head attention mixer: u [B, L, H] -> y [B, L, H].

    Q, K, V and output projections are H×H linear maps with bias; n_heads heads
    of size H / n_heads; causal unless `bidirectional`.
    """

    def __init__(self, d_model, n_heads=4, bidirectional=False):
        super().__init__()
        self.n_heads, self.causal = n_heads, not bidirectional
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))

    def heads(self, u):
        """Projected, rotated q, k and v: each [B, heads, L, d_head]."""
        B, L, H = u.shape
        split = lambda t: t.view(B, L, self.n_heads, H // self.n_heads).transpose(1, 2)
        q, k, v = split(self.q(u)), split(self.k(u)), split(self.v(u))
        return rotary(q), rotary(k), v

    def merge(self, o):
        """[B, heads, L, d_head] -> output projection [B, L, H]."""
        B, _, L, _ = o.shape
        return self.o(o.transpose(1, 2).reshape(B, L, -1))

    def forward(self, u):
        q, k, v = self.heads(u)
        return self.merge(F.scaled_dot_product_attention(q, k, v, is_causal=self.causal))


class LocalAttention(Attention):
    """Chunked attention mixer: u [B, L, H] -> y [B, L, H].

    Position i in chunk c = i // chunk_size attends to positions j with
    chunk(j) ∈ {c-1, c} when causal (and j ≤ i), or {c-1, c, c+1} otherwise.
    For L ≤ chunk_size this is exactly full attention.
    """

    def __init__(self, d_model, n_heads=4, bidirectional=False, chunk_size=1024):
        super().__init__(d_model, n_heads, bidirectional)
        self.chunk_size = chunk_size

    def keep(self, chunks, L):
        """Which keys each query may see, for the given chunk ids [E]: bool [E, W, n·W].

        Key slot (o, t) of chunk m is absolute position (m + o)·W + t; positions
        before 0 or past L (the rolled-in chunks at the ends, padding) are dropped,
        and so is the future when causal.
        """
        W, dev = self.chunk_size, chunks.device
        pos = torch.arange(W, device=dev)
        qpos = (chunks.view(-1, 1) * W + pos).unsqueeze(-1)  # [E, W, 1]
        kpos = torch.cat([(chunks.view(-1, 1) + o) * W + pos for o in self.offsets], dim=1)
        kpos = kpos.unsqueeze(1)  # [E, 1, n·W]
        keep = (kpos >= 0) & (kpos < L)
        return keep & (kpos <= qpos) if self.causal else keep.expand(-1, W, -1)

    @property
    def offsets(self):
        return (-1, 0) if self.causal else (-1, 0, 1)

    def forward(self, u):
        q, k, v = self.heads(u)  # rotary is applied on global positions, before chunking
        B, nh, L, d = q.shape
        if L <= self.chunk_size:  # one chunk: full attention, without padding L up to a whole chunk
            return self.merge(F.scaled_dot_product_attention(q, k, v, is_causal=self.causal))
        W = self.chunk_size
        M = -(-L // W)  # number of chunks; the last one is zero-padded
        to_chunks = lambda t: F.pad(t, (0, 0, 0, M * W - L)).view(B, nh, M, W, d)
        q, k, v = to_chunks(q), to_chunks(k), to_chunks(v)  # [B, nh, M, W, d]
        # Keys of chunk m: chunks m-1, m (, m+1), brought in by rolling along chunks.
        kk = torch.cat([torch.roll(k, -o, dims=2) for o in self.offsets], dim=3)  # [B, nh, M, n·W, d]
        vv = torch.cat([torch.roll(v, -o, dims=2) for o in self.offsets], dim=3)  # [B, nh, M, n·W, d]
        flat = lambda t: t.transpose(1, 2).reshape(-1, nh, t.shape[3], d)  # [B·M, nh, ·, d]
        # Interior chunks share one mask (none when bidirectional; when causal, query i
        # sees the previous chunk and keys t ≤ i of its own), so it broadcasts for free.
        # Chunks at the ends (rolled-in or padded keys) are redone with their own masks.
        edge = sorted({0} | {m for m in range(M) if (m + self.offsets[-1] + 1) * W > L})
        edge = torch.tensor(edge, device=u.device)  # [E]
        if len(edge) < M:
            inner = None
            if self.causal:
                inner = torch.ones(W, 2 * W, dtype=torch.bool, device=u.device).tril(W)
            o = F.scaled_dot_product_attention(flat(q), flat(kk), flat(vv), attn_mask=inner)
            o = o.view(B, M, nh, W, d)
        else:
            o = q.new_zeros(B, M, nh, W, d)
        pick = lambda t: flat(t.index_select(2, edge))  # [B·E, nh, ·, d]
        mask = self.keep(edge, L).unsqueeze(1).repeat(B, 1, 1, 1)  # [B·E, 1, W, n·W]
        o_edge = F.scaled_dot_product_attention(pick(q), pick(kk), pick(vv), attn_mask=mask)
        o = o.index_copy(1, edge, o_edge.view(B, len(edge), nh, W, d))  # [B, M, nh, W, d]
        o = o.transpose(1, 2).reshape(B, nh, M * W, d)[:, :, :L]  # [B, nh, L, d]
        return self.merge(o)  # [B, L, H]


# Registration in lrbench.baselines: this file's keys beyond the shared block's, with their
# defaults (4 heads, chunks of 1024: the paper's), the mixer build() puts in each layer, and the
# model whose rows of the paper's tables local attention uses.
CONFIG = {"attention": dict(n_heads=4, bidirectional=False),
          "local-attention": dict(n_heads=4, bidirectional=False, chunk_size=1024)}
ROWS = {"local-attention": "attention"}


def check(cfg):
    if cfg["d_model"] % (2 * cfg["n_heads"]):
        raise ValueError(f"d_model must be a multiple of 2·n_heads (rotary pairs channels); "
                         f"got d_model={cfg['d_model']}, n_heads={cfg['n_heads']}")


def mixer(name, cfg):
    if name == "attention":
        return Attention(cfg["d_model"], cfg["n_heads"], cfg["bidirectional"])
    return LocalAttention(cfg["d_model"], cfg["n_heads"], cfg["bidirectional"], cfg["chunk_size"])
