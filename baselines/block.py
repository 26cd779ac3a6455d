"""The block shared by every baseline (DLR paper §2.3, §3.3, §A.5).

    encoder (Linear d_input -> H, or Embedding for token ids)
    n_layers × Layer:
        y = mixer(u) + D ⊙ u          sequence mixer (one file per family) plus skip
        y = W_out · GELU(y)           position-wise mixing of the H channels
                                      (glu: Linear H -> 2H then GLU, §A.5 "Details for Table 3")
        x = LayerNorm(x + y)          post-norm (atomic tasks, ListOps), or
        x = x + y(LayerNorm(x))       pre-norm, with one final LayerNorm (Pathfinder)
    decoder Linear H -> d_output on the last t_out positions (§A.5 "Details for Table 1").

`Bidirectional` runs two causal mixers over the sequence in both directions and adds
them the way DLR's Eq. 6 does, for the families whose mixer is a scan.
"""

import torch
from torch import nn
import torch.nn.functional as F


class Layer(nn.Module):
    """One residual layer around a sequence mixer: x [B, L, H] -> [B, L, H]."""

    def __init__(self, mixer, d_model, prenorm=False, glu=False, dropout=0.0):
        super().__init__()
        self.mixer, self.prenorm, self.glu = mixer, prenorm, glu
        self.D = nn.Parameter(torch.randn(d_model))  # skip weight, as the D term of S4/DSS
        self.out = nn.Linear(d_model, 2 * d_model if glu else d_model)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        u = self.norm(x) if self.prenorm else x  # [B, L, H]
        y = self.drop(F.gelu(self.mixer(u) + self.D * u))  # [B, L, H]
        y = self.out(y)  # [B, L, H] or [B, L, 2H]
        if self.glu:
            y = F.glu(y, dim=-1)  # [B, L, H]
        x = x + self.drop(y)
        return x if self.prenorm else self.norm(x)


class Bidirectional(nn.Module):
    """Two causal mixers with their own parameters, one reading forwards and one backwards:
    u [B, L, H] -> y [B, L, H], y_i = fwd(u)_i + (what bwd has read of u_{L-1}, ..., u_{i+1}).

    The backward pass starts after position i, so the current position is counted
    once, by the forward mixer: the convention of DLR's Eq. 6 and of S4's two-sided
    kernel, so that every bidirectional baseline sums the same two halves.
    """

    def __init__(self, fwd, bwd):
        super().__init__()
        self.fwd, self.bwd = fwd, bwd

    def forward(self, u):
        z = self.bwd(u.flip(1))  # z_k has read u_{L-1}, ..., u_{L-1-k}: [B, L, H]
        back = F.pad(z[:, :-1], (0, 0, 1, 0)).flip(1)  # position i gets z_{L-2-i}; the last gets 0
        return self.fwd(u) + back


class Model(nn.Module):
    """Encoder -> layers -> decoder: x [B, T, d_input] (or ids [B, T]) -> [B, T_out, d_output].

    `t_out` (here or per call) keeps only the last t_out positions before decoding,
    the way the atomic tasks align targets with the end of the sequence; None keeps all T.
    """

    def __init__(self, mixers, d_input, d_output, d_model, prenorm=False, glu=False,
                 dropout=0.0, vocab_size=None, t_out=None):
        super().__init__()
        if vocab_size is None:
            self.encoder = nn.Linear(d_input, d_model)
        else:
            self.encoder = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(Layer(m, d_model, prenorm, glu, dropout) for m in mixers)
        self.final_norm = nn.LayerNorm(d_model) if prenorm else nn.Identity()
        self.decoder = nn.Linear(d_model, d_output)
        self.t_out = t_out

    def forward(self, x, t_out=None):
        h = self.encoder(x)  # [B, T, H]
        for layer in self.layers:
            h = layer(h)
        h = self.final_norm(h)
        t_out = self.t_out if t_out is None else t_out
        if t_out is not None:
            h = h[:, h.shape[1] - t_out:]  # [B, T_out, H]
        return self.decoder(h)  # [B, T_out, d_output]
