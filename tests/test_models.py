"""Tests for the seeds' model families (SPEC §9): LRU, S4D, S5, Mamba (S6), RG-LRU, and the
parallel scan they share.

Every model is checked against its own recurrence run step by step, written here in numpy
float64 from the paper's equations and reading only the model's parameters (never its
forward pass or its scan); inits against independent computations (for S5, the HiPPO-LegS
matrix built from its definition and diagonalised by a general eigensolver)."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from lrbench.baselines import DEFAULTS, LRU, RGLRU, S4D, S5, Bidirectional, Mamba, build
from lrbench.baselines import scan as scan_module
from lrbench.baselines.scan import scan

FAMILIES = ("lru", "s4d", "s5", "mamba", "rglru")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def seed(s=0):
    torch.manual_seed(s)
    return np.random.default_rng(s)


def P(t):
    """A parameter as a float64 numpy array."""
    return t.detach().double().cpu().numpy()


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0, x)


def silu(x):
    return x * sigmoid(x)


def gelu(x):
    return 0.5 * x * (1 + scipy.special.erf(x / math.sqrt(2)))


def causal_depthwise_conv(x, conv):
    """x [B, L, D] through a depthwise Conv1d of width k: y_t = bias + Σ_j w_j x_{t-k+1+j}."""
    w, bias = P(conv.weight)[:, 0, :], P(conv.bias)  # [D, k], [D]
    k = w.shape[1]
    xp = np.concatenate([np.zeros((x.shape[0], k - 1, x.shape[2])), x], axis=1)
    return bias + sum(w[:, j] * xp[:, j:j + x.shape[1]] for j in range(k))


def two_way(reference, m, u):
    """Bidirectional output from a one-way reference: fwd over u, plus at position i what
    the backward mixer has read of u_{L-1}, ..., u_{i+1} (the current position excluded)."""
    fwd = reference(m.fwd, u)
    z = reference(m.bwd, u[:, ::-1])  # z_k has read u_{L-1} .. u_{L-1-k}
    back = np.zeros_like(fwd)
    L = u.shape[1]
    for i in range(L - 1):
        back[:, i] = z[:, L - 2 - i]
    return fwd + back


# --- references: each family's recurrence, step by step ------------------------------------

def lru_reference(m, u):
    """x_k = λ x_{k-1} + γ ⊙ B u_k, y_k = Re(C x_k) with λ = exp(-exp(ν) + i exp(θ))."""
    lam = np.exp(-np.exp(P(m.nu_log)) + 1j * np.exp(P(m.theta_log)))
    gamma = np.exp(P(m.gamma_log))
    B, C = P(m.B_re) + 1j * P(m.B_im), P(m.C_re) + 1j * P(m.C_im)
    x = np.zeros((u.shape[0], lam.size), complex)
    y = []
    for k in range(u.shape[1]):
        x = lam * x + gamma * (u[:, k] @ B.T)
        y.append((x @ C.T).real)
    return np.stack(y, 1)


def s4d_reference(m, u, s=0):
    """Per channel h: x_k = e^{ΔA} x_{k-1} + (e^{ΔA} - 1)/A u_k (B = 1), y_k = 2 Re Σ_n C_n x_k,n."""
    A = -np.exp(P(m.log_A_real)[s]) + 1j * P(m.A_imag)[s]  # [H, N/2]
    dt = np.exp(P(m.log_dt)[s])[:, None]  # [H, 1]
    C = P(m.C)[s, ..., 0] + 1j * P(m.C)[s, ..., 1]  # [H, N/2]
    lam, gain = np.exp(dt * A), (np.exp(dt * A) - 1) / A
    x = np.zeros((u.shape[0],) + A.shape, complex)
    y = []
    for k in range(u.shape[1]):
        x = lam * x + gain * u[:, k, :, None]
        y.append(2 * (C * x).sum(-1).real)
    return np.stack(y, 1)


def s4d_two_way(m, u):
    fwd = s4d_reference(m, u, 0)
    z = s4d_reference(m, u[:, ::-1], 1)
    back = np.zeros_like(fwd)
    for i in range(u.shape[1] - 1):
        back[:, i] = z[:, u.shape[1] - 2 - i]
    return fwd + back


def s5_reference(m, u):
    """x_k = Λ̄ x_{k-1} + B̄ u_k, y_k = 2 Re(C̃ x_k); Λ̄ = e^{ΛΔ}, B̄ = (Λ̄ - 1)/Λ B̃ (ZOH)."""
    lam = np.minimum(P(m.Lambda_re), -1e-4) + 1j * P(m.Lambda_im)
    dt = np.exp(P(m.log_step))
    lam_bar = np.exp(lam * dt)
    B = (P(m.B)[..., 0] + 1j * P(m.B)[..., 1]) * ((lam_bar - 1) / lam)[:, None]  # [P/2, H]
    C = P(m.C)[..., 0] + 1j * P(m.C)[..., 1]  # [H, P/2]
    x = np.zeros((u.shape[0], lam.size), complex)
    y = []
    for k in range(u.shape[1]):
        x = lam_bar * x + u[:, k] @ B.T
        y.append(2 * (x @ C.T).real)
    return np.stack(y, 1)


def mamba_reference(m, u):
    """The Mamba block of Gu & Dao (2023), Figure 3 and Algorithm 2, one step at a time."""
    D, N, R = m.dims
    xz = u @ P(m.in_proj.weight).T
    x, z = xz[..., :D], xz[..., D:]
    x = silu(causal_depthwise_conv(x, m.conv1d))  # [B, L, D]
    xdbl = x @ P(m.x_proj.weight).T
    dt = softplus(xdbl[..., :R] @ P(m.dt_proj.weight).T + P(m.dt_proj.bias))  # Δ: [B, L, D]
    Bm, Cm = xdbl[..., R:R + N], xdbl[..., R + N:]  # [B, L, N]
    A = -np.exp(P(m.A_log))  # [D, N]
    h = np.zeros((u.shape[0], D, N))
    y = []
    for t in range(u.shape[1]):
        h = np.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * x[:, t])[..., None] * Bm[:, t, None, :]
        y.append((h * Cm[:, t, None, :]).sum(-1) + P(m.D) * x[:, t])
    y = np.stack(y, 1)
    return (y * silu(z)) @ P(m.out_proj.weight).T


def rglru_reference(m, u):
    """Griffin's recurrent block (Figure 2) with the RG-LRU of §2.4, one step at a time."""
    gate = gelu(u @ P(m.gate_proj.weight).T)
    x = causal_depthwise_conv(u @ P(m.in_proj.weight).T, m.conv1d)  # [B, L, D]
    a = sigmoid(P(m.Lambda))  # [D]
    h = np.zeros((u.shape[0], a.size))
    y = []
    for t in range(u.shape[1]):
        r = sigmoid(x[:, t] @ P(m.recurrent_gate_proj.weight).T + P(m.recurrent_gate_proj.bias))
        i = sigmoid(x[:, t] @ P(m.input_gate_proj.weight).T + P(m.input_gate_proj.bias))
        a_t = a ** (8 * r)
        h = a_t * h + np.sqrt(1 - a_t**2) * (i * x[:, t])
        y.append(h)
    return (gate * np.stack(y, 1)) @ P(m.out_proj.weight).T


REFERENCES = {LRU: lru_reference, S5: s5_reference, Mamba: mamba_reference, RGLRU: rglru_reference}


def randomize(m, rng):
    """Move parameters off their structured inits (all decays, phases, gates generic)."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith(("nu_log", "log_A_real")):
                p.copy_(torch.from_numpy(rng.uniform(-3, 0.5, p.shape)))
            elif name.endswith(("theta_log", "gamma_log")):
                p.copy_(torch.from_numpy(rng.uniform(-2, 1, p.shape)))
            elif name.endswith(("Lambda_re",)):
                p.copy_(torch.from_numpy(rng.uniform(-1, -0.05, p.shape)))
            elif name.endswith(("log_dt", "log_step")):
                p.copy_(torch.from_numpy(rng.uniform(-4, -0.5, p.shape)))
            elif name.endswith(("A_imag", "Lambda_im")):
                p.copy_(torch.from_numpy(rng.uniform(-10, 10, p.shape)))
            elif name.endswith("Lambda"):  # RG-LRU: a = σ(Λ) spread over (0.5, 0.999)
                p.copy_(torch.from_numpy(rng.uniform(0, 7, p.shape)))
            elif name.endswith("A_log"):
                p.copy_(torch.from_numpy(rng.uniform(-1, 1.5, p.shape)))
            else:
                p.copy_(torch.from_numpy(rng.normal(0, 0.6, p.shape)))
    return m


def one_way(kind, H=4, **kw):
    small = {LRU: dict(d_state=6), S5: dict(d_state=8, n_blocks=2), Mamba: dict(d_state=3, scan_chunk=4),
             RGLRU: dict(expand=2)}[kind]
    return kind(H, **{**small, **kw})


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


# --- each model against its own recurrence --------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", [LRU, S5, Mamba, RGLRU], ids=lambda k: k.__name__)
def test_scan_models_match_their_recurrence(kind, bidirectional):
    rng = seed(4)
    make = lambda: randomize(one_way(kind), rng).double()
    m = Bidirectional(make(), make()) if bidirectional else make()
    u = rng.normal(size=(2, 13, 4))
    ref = (two_way(REFERENCES[kind], m, u) if bidirectional else REFERENCES[kind](m, u))
    with torch.no_grad():
        np.testing.assert_allclose(m(torch.tensor(u)).numpy(), ref, rtol=1e-9, atol=1e-10)
    # with autograd on (Mamba: the checkpointed chunks) the forward is the same function
    np.testing.assert_allclose(m(torch.tensor(u)).detach().numpy(), ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("init", ["lin", "inv"])
def test_s4d_convolution_matches_its_recurrence(init, bidirectional):
    rng = seed(5)
    m = randomize(S4D(3, d_state=8, bidirectional=bidirectional, init=init, kernel_chunk=5), rng).double()
    u = rng.normal(size=(2, 29, 3))
    ref = s4d_two_way(m, u) if bidirectional else s4d_reference(m, u)
    np.testing.assert_allclose(m(torch.tensor(u)).detach().numpy(), ref, atol=1e-10)


def test_mamba_chunk_size_does_not_change_the_function():
    rng = seed(6)
    m = randomize(Mamba(4, d_state=3, scan_chunk=1), rng).double()
    u = torch.tensor(rng.normal(size=(2, 23, 4)))
    outs = []
    for chunk in (1, 5, 8, 23, 64):
        m.scan_chunk = chunk
        outs.append(m(u).detach())
    for y in outs[1:]:
        torch.testing.assert_close(y, outs[0], rtol=1e-12, atol=1e-12)


# --- causality, direction, shapes ----------------------------------------------------------

def small(name, **extra):
    cfg = {**dict(d_state=8, n_blocks=2, scan_chunk=8, kernel_chunk=8), **extra}
    return {k: v for k, v in cfg.items() if k in DEFAULTS[name]}


@pytest.mark.parametrize("name", FAMILIES)
def test_bidirectional_models_shapes_and_future(name):
    seed(8)
    m = build(name, 3, 2, d_model=8, bidirectional=True, **small(name)).double()
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    assert m(x).shape == (2, 30, 2) and m(x, t_out=5).shape == (2, 5, 2)
    x2 = x.clone()
    x2[:, 19] += 1.0
    assert (m(x)[:, 12:19] - m(x2)[:, 12:19]).abs().max() > 1e-6
    e = build(name, None, 10, d_model=8, bidirectional=True, vocab_size=16, **small(name))
    assert e(torch.randint(0, 16, (2, 20)), t_out=4).shape == (2, 4, 10)


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


# --- parameter counts: the papers' shapes ---------------------------------------------------

def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_parameter_counts_match_the_papers(bidirectional):
    H, din, dout, layers = 32, 3, 2, 2
    S = 2 if bidirectional else 1
    io = (din * H + H) + (H * dout + dout)  # encoder + decoder
    block = H + (H * H + H) + 2 * H  # D skip + output linear + LayerNorm
    N = 16
    D, R, k = 2 * H, math.ceil(H / 16), 4  # Mamba: E = 2, dt rank ⌈H/16⌉, conv width 4
    Dr = H  # RG-LRU width: expand 1
    mixer = {
        # LRU: ν, θ, γ [N]; B ∈ C^{N×H}; C ∈ C^{H×N}
        "lru": S * (3 * N + 2 * N * H + 2 * H * N),
        # S4D per channel: A ∈ C^{N/2}, C ∈ C^{N/2}, Δ; B fixed
        "s4d": H * (N + N + 1),
        # S5: Λ ∈ C^{P/2}, B̃ ∈ C^{P/2×H}, C̃ ∈ C^{H×P/2}, Δ ∈ R^{P/2}
        "s5": S * (N + N * H + H * N + N // 2),
        # Mamba: in_proj, conv (+bias), x_proj (Δ rank R, B, C), dt_proj (+bias), A, D, out_proj
        "mamba": S * (H * 2 * D + D * k + D + D * (R + 2 * N) + R * D + D + D * N + D + D * H),
        # Griffin recurrent block: gate and input projections, conv (+bias), W_a, W_x (+biases),
        # Λ, output projection
        "rglru": S * (2 * H * Dr + Dr * k + Dr + 2 * (Dr * Dr + Dr) + Dr + Dr * H),
    }
    mixer["s4d"] *= S
    for name, count in mixer.items():
        m = build(name, din, dout, d_model=H, n_layers=layers, bidirectional=bidirectional,
                  **{k: v for k, v in dict(d_state=N, n_blocks=2).items() if k in DEFAULTS[name]})
        assert n_params(m) == layers * (count + block) + io, name


# --- gradients ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_gradcheck_mixer_parameters_and_inputs(name):
    rng = seed(9)
    two = name in ("lru", "s4d")  # (the other two share lru's Bidirectional)
    cfg = small(name, d_state=4, scan_chunk=3, kernel_chunk=3)
    m = randomize(build(name, 2, 1, d_model=2, bidirectional=two, **cfg).layers[0].mixer, rng).double()
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in m.parameters())
    u = torch.tensor(rng.normal(size=(1, 7, 2)), requires_grad=True)

    def f(u, *ps):
        return torch.func.functional_call(m, dict(zip(names, ps)), (u,))

    # Mamba has ~100 parameters through checkpointed chunks: random projections of its
    # Jacobian (fast_mode) instead of all of it, to keep the test at a second.
    assert torch.autograd.gradcheck(f, (u, *params), fast_mode=name == "mamba")


# --- initialisation -------------------------------------------------------------------------

@pytest.mark.parametrize("r_min,r_max,max_phase", [(0.0, 1.0, 2 * math.pi), (0.9, 0.999, math.pi / 10)])
def test_lru_init_uniform_on_the_ring(r_min, r_max, max_phase):
    seed(10)
    m = LRU(4, d_state=4096, r_min=r_min, r_max=r_max, max_phase=max_phase)
    lam = m.lam().detach().numpy().astype(complex)
    mag, phase = np.abs(lam), np.angle(lam) % (2 * np.pi)
    assert mag.min() >= r_min - 1e-6 and mag.max() <= r_max + 1e-6
    # uniform over the ring's area: |λ|² is uniform in [r_min², r_max²] (|λ| itself is not)
    assert scipy.stats.kstest((mag**2 - r_min**2) / (r_max**2 - r_min**2), "uniform").pvalue > 1e-3
    assert scipy.stats.kstest(np.exp(P(m.theta_log)) / max_phase, "uniform").pvalue > 1e-3
    np.testing.assert_allclose(np.exp(2 * P(m.gamma_log)) + mag**2, 1, atol=1e-6)  # γ = sqrt(1 - |λ|²)
    assert abs(P(m.B_re).std() * math.sqrt(8) - 1) < 0.05  # N(0, 1/(2H)), H = 4
    assert abs(P(m.C_im).std() * math.sqrt(4096) - 1) < 0.05  # N(0, 1/N)


def test_lru_ring_is_area_uniform_not_radius_uniform():
    # The KS test above can tell the two apart: |λ| uniform on [0, 1] fails it.
    mag = np.random.default_rng(0).uniform(0, 1, 4096)
    assert scipy.stats.kstest(mag**2, "uniform").pvalue < 1e-6


@pytest.mark.parametrize("init", ["lin", "inv"])
def test_s4d_init(init):
    seed(11)
    N = 64
    m = S4D(3, d_state=N, init=init, dt_min=1e-3, dt_max=1e-1)
    A = m.A().detach().numpy()  # [1, 3, N/2]
    n = np.arange(N // 2)
    expect = -0.5 + 1j * (np.pi * n if init == "lin" else N / np.pi * (N / (2 * n + 1) - 1))
    np.testing.assert_allclose(A[0], np.broadcast_to(expect, (3, N // 2)), rtol=1e-6)
    dt = np.exp(P(m.log_dt))
    assert dt.min() >= 1e-3 * (1 - 1e-6) and dt.max() <= 1e-1 * (1 + 1e-6)
    assert abs(P(m.C).var() - 0.5) < 0.1  # complex normal, variance 1


def hippo_legs(n):
    """HiPPO-LegS (Gu et al. 2020), from its definition: A_jk = -sqrt(2j+1) sqrt(2k+1) for
    j > k, -(j+1) for j = k, 0 above the diagonal."""
    A = np.zeros((n, n))
    for j in range(n):
        for k in range(n):
            if j > k:
                A[j, k] = -math.sqrt(2 * j + 1) * math.sqrt(2 * k + 1)
            elif j == k:
                A[j, k] = -(j + 1)
    return A


def test_s5_init_is_hippo_n_per_block():
    seed(12)
    P_, J, H = 32, 4, 8
    m = S5(H, d_state=P_, n_blocks=J)
    n = P_ // J
    p = np.sqrt(np.arange(n) + 0.5)
    A_N = hippo_legs(n) + np.outer(p, p)  # the normal part of HiPPO-LegS (S5 §4.2)
    assert np.allclose(A_N @ A_N.T, A_N.T @ A_N)  # normal, so unitarily diagonalisable
    eig = np.linalg.eigvals(A_N)  # general eigensolver, independent of the model's eigh
    np.testing.assert_allclose(eig.real, -0.5, atol=1e-9)
    upper = np.sort(eig.imag[eig.imag > 0])  # one of each conjugate pair
    lam = P(m.Lambda_re) + 1j * P(m.Lambda_im)
    assert lam.shape == (P_ // 2,)
    np.testing.assert_allclose(lam.real, -0.5)
    for blk in lam.reshape(J, n // 2):  # every block holds the same HiPPO-N spectrum
        np.testing.assert_allclose(np.sort(blk.imag), upper, rtol=1e-5)
    dt = np.exp(P(m.log_step))
    assert dt.shape == (P_ // 2,) and dt.min() >= 1e-3 * (1 - 1e-6) and dt.max() <= 1e-1 * (1 + 1e-6)
    # B̃ = V⁻¹B with B ~ N(0, 1/H), V unitary: B̃'s entries have total variance 1/H
    Bt = P(m.B)
    assert abs((Bt**2).sum(-1).mean() * H - 1) < 0.2


def test_mamba_init():
    seed(13)
    H, N = 32, 16
    m = Mamba(H, d_state=N, dt_min=1e-3, dt_max=1e-1)
    D, _, R = m.dims
    assert (D, R) == (2 * H, 2)
    np.testing.assert_allclose(-np.exp(P(m.A_log)), -np.broadcast_to(np.arange(1, N + 1), (D, N)), rtol=1e-6)
    np.testing.assert_array_equal(P(m.D), np.ones(D))
    dt = softplus(P(m.dt_proj.bias))
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
    assert scipy.stats.kstest((np.log(dt) - np.log(1e-3)) / np.log(100), "uniform").pvalue > 1e-3
    assert np.abs(P(m.dt_proj.weight)).max() <= R**-0.5


def test_rglru_init_a_pow_c_uniform_in_range():
    seed(14)
    m = RGLRU(4096, a_min=0.9, a_max=0.999)
    ac = sigmoid(P(m.Lambda)) ** 8  # a^c at r_t = 1
    assert ac.min() >= 0.9 - 1e-6 and ac.max() <= 0.999 + 1e-6
    assert scipy.stats.kstest((ac - 0.9) / 0.099, "uniform").pvalue > 1e-3


# --- long sequences -------------------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_long_sequence_forward_backward(name):
    seed(15)
    m = build(name, 2, 1, d_model=8, **small(name, d_state=8, scan_chunk=256))
    x = torch.randn(1, 2**12, 2)
    y = m(x)
    y.square().mean().backward()
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


def test_lru_float32_matches_float64_recurrence_at_2_pow_12():
    # |λ| up to 0.9999 (memory ~10^4 steps): the scan in float32 against the loop in float64.
    rng = seed(16)
    m = LRU(4, d_state=8, r_min=0.99, r_max=0.9999)
    u = rng.normal(size=(1, 2**12, 4))
    ref = lru_reference(m, u)
    got = m(torch.tensor(u, dtype=torch.float32)).detach().numpy()
    assert np.abs(got - ref).max() < 1e-4 * np.abs(ref).max()


def test_mamba_forward_at_2_pow_16_on_cpu():  # ~2 s here: chunks keep memory at O(B·L·E·H)
    seed(17)
    m = build("mamba", 2, 1, d_model=16)
    with torch.no_grad():
        y = m(torch.randn(1, 2**16, 2))
    assert y.shape == (1, 2**16, 1) and torch.isfinite(y).all()


@pytest.mark.parametrize("name,config,match", [
    ("lru", {"r_max": 1.0}, "r_max < 1"),
    ("lru", {"r_min": 0.5, "r_max": 0.4}, "r_min <= r_max"),
    ("lru", {"max_phase": 0}, "max_phase"),
    ("lru", {"dt_min": 0.01}, "valid keys: .*max_phase"),
    ("s4d", {"init": "legs"}, "init must be one of lin, inv"),
    ("s4d", {"d_state": 63}, "even"),
    ("s5", {"d_state": 20, "n_blocks": 3}, "multiple of 2·n_blocks"),
    ("s5", {"n_blocks": 0}, "n_blocks must be a positive int"),
    ("mamba", {"dt_rank": 0}, "dt_rank"),
    ("mamba", {"expand": 1.5}, "expand must be a positive int"),
    ("mamba", {"dt_min": 0.2}, "dt_min <= dt_max"),
    ("rglru", {"a_max": 1.0}, "a_max < 1"),
    ("rglru", {"d_state": 16}, "valid keys: .*a_min"),
])
def test_bad_family_config_raises(name, config, match):
    with pytest.raises(ValueError, match=match):
        build(name, 3, 1, **config)


# --- parity with installed packages (CUDA only; skipped when absent) -----------------------

def _parity(ref, ours, width, extra=None):
    """Same parameters, same input: the same outputs up to float32 round-off on CUDA."""
    u = torch.randn(2, 64, width, device="cuda")
    with torch.no_grad():
        want = ref(u)
        got = ours(u) + (extra(u) if extra else 0)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


@CUDA
def test_parity_mamba_ssm():
    mamba_ssm = pytest.importorskip("mamba_ssm")
    seed(18)
    ref = mamba_ssm.Mamba(d_model=32, d_state=16, d_conv=4, expand=2).cuda()
    ours = Mamba(32, d_state=16, d_conv=4, expand=2).cuda()
    ours.load_state_dict(ref.state_dict())  # same names and shapes
    _parity(ref, ours, 32)


@CUDA
def test_parity_lrnnx_mamba():
    ltv = pytest.importorskip("lrnnx.models.ltv")
    seed(19)
    ref = ltv.Mamba(d_model=32, d_state=16, d_conv=4, expand=2).cuda()
    ours = Mamba(32, d_state=16, d_conv=4, expand=2).cuda()
    missing, unexpected = ours.load_state_dict(ref.state_dict(), strict=False)
    assert not missing and all(k.startswith("dtA_proj") for k in unexpected)  # its event mode
    _parity(ref, ours, 32)


@CUDA
def test_parity_lrnnx_lru():
    lti = pytest.importorskip("lrnnx.models.lti")
    seed(20)
    ref = lti.LRU(d_model=32, d_state=64, r_min=0.9, r_max=0.999).cuda()
    ours = LRU(32, d_state=64).cuda()
    state = ref.state_dict()
    D = state.pop("D")  # lrnnx's layer adds D u itself; ours leaves it to the block
    ours.load_state_dict(state)
    _parity(ref, ours, 32, extra=lambda u: D * u)


@CUDA
def test_parity_lrnnx_rglru():
    ltv = pytest.importorskip("lrnnx.models.ltv")
    seed(21)
    ref = ltv.RGLRU(d_model=32, d_conv=4, expand=1).cuda()
    ours = RGLRU(32, expand=1, d_conv=4).cuda()
    state = ref.state_dict()
    state["Lambda"] = state.pop("a_log").squeeze(-1)  # lrnnx: a = σ(a_log), shape [D, 1]
    ours.load_state_dict(state)
    _parity(ref, ours, 32)
