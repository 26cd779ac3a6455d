"""Tests for the parallel scan the recurrent model families share (baselines/scan.py) and
for the two-way wrapper of the shared block: each against a plain loop over time."""

import numpy as np
import pytest
import torch

from lrbench.baselines import Bidirectional
from lrbench.baselines import scan as scan_module
from lrbench.baselines.scan import scan


def seed(s=0):
    torch.manual_seed(s)
    return np.random.default_rng(s)


# --- the parallel scan ----------------------------------------------------------------------

def loop_scan(a, b, h0=None):
    """h_t = a_t h_{t-1} + b_t in numpy float64/complex128; a [L, ...] per step, or constant."""
    h = np.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = (a[:, t] if a.shape == b.shape else a) * h + b[:, t]
        out.append(h)
    return np.stack(out, 1)


@pytest.mark.parametrize("L", [1, 2, 5, 64, 65, 200])
@pytest.mark.parametrize("kind", ["constant-complex", "varying-real", "varying-complex", "slow-real"])
def test_scan_matches_loop(kind, L):
    rng = seed(1)
    shape = (2, L, 3, 4)
    if kind == "constant-complex":
        a = np.exp(-rng.uniform(0, 0.5, (3, 4)) + 1j * rng.uniform(0, 7, (3, 4)))
        b = rng.normal(size=shape) + 1j * rng.normal(size=shape)
        h0 = None
    elif kind == "varying-real":
        a, b, h0 = rng.uniform(0, 1, shape), rng.normal(size=shape), rng.normal(size=(2, 3, 4))
    elif kind == "slow-real":  # decays near 1: h0 and early inputs reach blocks far downstream
        a, b, h0 = rng.uniform(0.97, 1, shape), rng.normal(size=shape), rng.normal(size=(2, 3, 4))
    else:
        a = rng.uniform(0.3, 1, shape) * np.exp(1j * rng.uniform(0, 7, shape))
        b = rng.normal(size=shape) + 1j * rng.normal(size=shape)
        h0 = rng.normal(size=(2, 3, 4)) + 1j * rng.normal(size=(2, 3, 4))
    got = scan(torch.tensor(a), torch.tensor(b), None if h0 is None else torch.tensor(h0))
    np.testing.assert_allclose(got.numpy(), loop_scan(a, b, h0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("varying", [False, True])
def test_scan_gradcheck_across_blocks(monkeypatch, varying):
    monkeypatch.setattr(scan_module, "BLOCK", 4)  # 11 steps: three blocks, the last one padded
    rng = seed(2)
    shape = (2, 11, 3)
    cplx = lambda *s: torch.tensor(rng.normal(size=s) + 1j * rng.normal(size=s), requires_grad=True)
    b = cplx(*shape)
    if varying:
        a = torch.tensor(rng.uniform(0.2, 1, shape) * np.exp(1j * rng.uniform(0, 7, shape)),
                         requires_grad=True)
        assert torch.autograd.gradcheck(scan, (a, b, cplx(2, 3)))
        ar = torch.tensor(rng.uniform(0.2, 1, shape), requires_grad=True)
        br = torch.tensor(rng.normal(size=shape), requires_grad=True)
        h0 = torch.tensor(rng.normal(size=(2, 3)), requires_grad=True)
        assert torch.autograd.gradcheck(scan, (ar, br, h0))
    else:
        lam = torch.tensor(np.exp(-rng.uniform(0, 0.5, 3) + 1j * rng.uniform(0, 7, 3)), requires_grad=True)
        assert torch.autograd.gradcheck(scan, (lam, b))


def test_scan_float32_stays_accurate_over_long_spans():
    # |a| within 1e-4 of 1 over 2^14 steps: what long-memory inits produce. Products are
    # only ever multiplied, never divided, so float32 keeps the error at round-off level.
    # (The reference runs in float64 on the same float32-rounded a and b.)
    rng = seed(3)
    L, N = 2**14, 4
    a = torch.tensor(np.exp(-rng.uniform(1e-5, 1e-4, N) + 1j * rng.uniform(0, 0.01, N)),
                     dtype=torch.complex64)
    b = torch.tensor(rng.normal(size=(1, L, N)) + 1j * rng.normal(size=(1, L, N)), dtype=torch.complex64)
    ref = loop_scan(a.numpy().astype(complex), b.numpy().astype(complex))
    err = np.abs(scan(a, b).numpy() - ref).max() / np.abs(ref).max()
    assert err < 2e-5, err
    ar = torch.tensor(np.exp(-rng.uniform(0, 1e-3, (1, L, N))), dtype=torch.float32)  # time-varying
    br = torch.tensor(rng.normal(size=(1, L, N)), dtype=torch.float32)
    ref = loop_scan(ar.numpy().astype(float), br.numpy().astype(float))
    assert np.abs(scan(ar, br).numpy() - ref).max() / np.abs(ref).max() < 2e-5


def test_scan_rejects_what_it_cannot_do():
    with pytest.raises(TypeError, match="share a dtype"):
        scan(torch.ones(3), torch.ones(1, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="h0 needs a time-varying a"):
        scan(torch.ones(3), torch.ones(1, 5, 3), torch.zeros(1, 3))


# --- the two-way wrapper -------------------------------------------------------------------

def test_bidirectional_backward_pass_starts_after_the_current_position():
    class Zero(torch.nn.Module):
        def forward(self, u):
            return torch.zeros_like(u)

    class CumSum(torch.nn.Module):
        def forward(self, u):
            return u.cumsum(1)

    u = torch.arange(1.0, 7.0).view(1, 6, 1)
    got = Bidirectional(Zero(), CumSum())(u)[0, :, 0]
    torch.testing.assert_close(got, torch.tensor([20.0, 18, 15, 11, 6, 0]))  # Σ_{j>i} u_j
