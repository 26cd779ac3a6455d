"""Tests for lrbench.baselines: every check compares against an independent computation
(numpy float64 formulas, explicit recurrences, dense masked attention), never against
the code's own output."""

import math

import numpy as np
import pytest
import torch

from lrbench.baselines import (DEFAULTS, DLR, DSS, MODELS, Attention, LocalAttention, build,
                               kernel_parameters, param_groups)
from lrbench.baselines.dlr import powers, vandermonde

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def tiny(name, **extra):
    """A small configuration of any baseline, from the keys it has (DEFAULTS[name])."""
    small = {**dict(d_state=16, chunk_size=8, kernel_chunk=8, n_blocks=2, scan_chunk=8), **extra}
    return {k: v for k, v in small.items() if k in DEFAULTS[name]}


def seed(s=0):
    torch.manual_seed(s)
    return np.random.default_rng(s)


def randomize_dlr(m, rng):
    """Spread λ over the disk (some fast decays, non-uniform phases) so kernels are generic."""
    with torch.no_grad():
        m.log_lam_re.copy_(torch.from_numpy(rng.uniform(0.05, 0.6, m.log_lam_re.shape)))
        m.log_lam_im.copy_(torch.from_numpy(rng.uniform(0, 2 * np.pi, m.log_lam_im.shape)))
        m.W.copy_(torch.from_numpy(rng.normal(size=m.W.shape)))
    return m


def dlr_np(m):
    """λ [S, N] and w [S, H, N] as complex128 numpy arrays."""
    c = m.log_lam_re.detach().double().numpy()
    th = m.log_lam_im.detach().double().numpy()
    W = m.W.detach().double().numpy()
    return np.exp(-c**2 + 1j * th), W[..., 0] + 1j * W[..., 1]


def dss_np(m):
    """Per-channel λ = e^{ΔΛ} [S, H, N] and effective w = W (e^{ΔΛ} - 1)/Λ [S, H, N]."""
    lam = -np.exp(m.a.detach().double().numpy()) + 1j * m.b.detach().double().numpy()
    dt = np.exp(m.log_dt.detach().double().numpy())
    W = m.W.detach().double().numpy()
    z = dt[:, :, None] * lam[:, None, :]
    return np.exp(z), (W[..., 0] + 1j * W[..., 1]) * (np.exp(z) - 1) / lam[:, None, :]


def direct_kernel(lam, w, L):
    """K[s, h, l] = Σ_n w[s, h, n] λ[s, (h,) n]^l in complex128, by explicit powers."""
    if lam.ndim == 2:
        lam = lam[:, None, :]
    P = lam[..., None] ** np.arange(L)  # [S, H|1, N, L]
    return np.einsum("shn,shnl->shl", w, np.broadcast_to(P, w.shape + (L,)))


def recurrence(u, lam, w):
    """Eq. 1 run step by step: x_k = λ x_{k-1} + u_k, y_k = Re <w, x_k>.

    u [L, H]; lam [N] or [H, N]; w [H, N] -> y [L, H]."""
    L, H = u.shape
    x = np.zeros(w.shape, complex)
    y = np.zeros((L, H))
    for k in range(L):
        x = lam * x + u[k][:, None]
        y[k] = (w * x).sum(-1).real
    return y


def bidirectional_recurrence(u, lam, w):
    """Eq. 5: y_k = <w1, x→_k> + <w2, x←_{L-1-(k+1)}>, x← running over the reversed input."""
    fwd = recurrence(u, lam[0], w[0])
    L, H = u.shape
    xb = np.zeros(w[1].shape, complex)
    states = []  # x←_0 ... x←_{L-1}
    for k in range(L):
        xb = lam[1] * xb + u[L - 1 - k][:, None]
        states.append(xb)
    bwd = np.zeros((L, H))
    for k in range(L - 1):  # x←_{-1} = 0: the last position sees nothing from the right
        bwd[k] = (w[1] * states[L - 2 - k]).sum(-1).real
    return fwd + bwd


# --- kernels ----------------------------------------------------------------------------

@pytest.mark.parametrize("prod", [False, True])
def test_dlr_kernel_matches_direct_float64(prod):
    rng = seed(1)
    m = randomize_dlr(DLR(5, d_state=9, bidirectional=True, prod=prod, kernel_chunk=7), rng)
    K_ref = direct_kernel(*dlr_np(m), 45)
    expect = K_ref.real * K_ref.imag if prod else K_ref.real
    np.testing.assert_allclose(m.double().kernel(45).detach().numpy(), expect, atol=1e-12)
    # float32 keeps ~6 digits relative to the kernel's scale
    got32 = m.float().kernel(45).detach().double().numpy()
    np.testing.assert_allclose(got32, expect, atol=2e-5 * np.abs(expect).max())


def test_dlr_prod_is_product_of_real_and_imaginary_kernels():
    rng = seed(2)
    plain = randomize_dlr(DLR(3, d_state=6, kernel_chunk=4), rng).double()
    prod = DLR(3, d_state=6, prod=True, kernel_chunk=4).double()
    prod.load_state_dict(plain.state_dict())
    K = direct_kernel(*dlr_np(plain), 30)
    np.testing.assert_allclose(prod.kernel(30).detach().numpy(), K.real * K.imag, atol=1e-12)
    assert not np.allclose(plain.kernel(30).detach().numpy(), K.real * K.imag)


def test_dss_kernel_matches_direct_float64():
    seed(3)
    m = DSS(4, d_state=6, bidirectional=True, dt_min=1e-3, dt_max=0.3, kernel_chunk=5).double()
    lam, w = dss_np(m)
    np.testing.assert_allclose(m.kernel(33).detach().numpy(), direct_kernel(lam, w, 33).real,
                               atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["dlr", "dss"])
def test_convolution_equals_recurrence(kind, bidirectional):
    rng = seed(4)
    if kind == "dlr":
        m = randomize_dlr(DLR(3, d_state=7, bidirectional=bidirectional, kernel_chunk=6), rng)
        lam, w = dlr_np(m)
    else:
        m = DSS(3, d_state=7, bidirectional=bidirectional, dt_min=0.01, dt_max=0.5, kernel_chunk=6)
        lam, w = dss_np(m)
    u = rng.normal(size=(2, 29, 3))
    y = m.double()(torch.from_numpy(u)).detach().numpy()  # [B, L, H]
    for b in range(2):
        ref = (bidirectional_recurrence(u[b], lam, w) if bidirectional
               else recurrence(u[b], lam[0], w[0]))
        np.testing.assert_allclose(y[b], ref, atol=1e-10)


def test_backward_direction_excludes_current_position():
    # Only the backward direction has weight: y_k must not depend on u_k (Eq. 6).
    seed(5)
    m = DLR(2, d_state=4, bidirectional=True).double()
    with torch.no_grad():
        m.W[0].zero_()
    u = torch.zeros(1, 10, 2, dtype=torch.float64)
    u[0, 6] = 1.0
    y = m(u)[0]
    assert torch.all(y[6:].abs() < 1e-12)  # positions ≥ 6 do not see u_6
    assert torch.all(y[:6].abs().sum(-1) > 1e-6)  # earlier ones do


# --- chunking and gradients -------------------------------------------------------------

def figure4_kernel(log_lam, W, L):
    """Paper Figure 4 in float64 autograd: the full N×L matrix, no chunking."""
    P = torch.exp(log_lam.unsqueeze(-1) * torch.arange(L, dtype=torch.float64))  # [S, Hz, N, L]
    return torch.einsum("shn,shnl->shl", W, P.expand(W.shape[0], W.shape[1], -1, -1))


@pytest.mark.parametrize("Hz,L", [(1, 50), (3, 50), (3, 1400)])  # 1400 with λ per channel: two groups
@pytest.mark.parametrize("chunk", [None, 1, 3, 7, 16, 50, 64])
def test_chunked_kernel_and_gradients_equal_unchunked(chunk, Hz, L):
    rng = seed(6)
    S, H, N = 2, 3, 5
    a = -rng.uniform(0.001, 0.3, (S, Hz, N)) + 1j * rng.uniform(0, 7, (S, Hz, N))
    w = rng.normal(size=(S, H, N)) + 1j * rng.normal(size=(S, H, N))
    g = torch.from_numpy(rng.normal(size=(S, H, L)))  # fixed upstream weights, real and imag
    grads = []
    for fn in (lambda z, W: vandermonde(z, W, L, chunk), lambda z, W: figure4_kernel(z, W, L)):
        z = torch.tensor(a, requires_grad=True)
        W = torch.tensor(w, requires_grad=True)
        K = fn(z, W)
        ((K.real * g).sum() + (K.imag * g.flip(-1)).sum()).backward()
        grads.append((K.detach(), z.grad, W.grad))
    for got, ref in zip(*grads):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("Hz,chunk", [(1, 4), (1, 13), (3, 2), (3, 5)])
def test_gradcheck_vandermonde(Hz, chunk):
    rng = seed(7)
    S, H, N, L = 2, 3, 4, 13
    z = torch.tensor(-rng.uniform(0.01, 0.3, (S, Hz, N)) + 1j * rng.uniform(0, 6, (S, Hz, N)),
                     requires_grad=True)
    W = torch.tensor(rng.normal(size=(S, H, N)) + 1j * rng.normal(size=(S, H, N)),
                     requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, W: vandermonde(z, W, L, chunk), (z, W))


@pytest.mark.parametrize("name", ["dlr", "dlr-prod", "dss"])
def test_gradcheck_mixer_parameters_and_inputs(name):
    rng = seed(8)
    cls = DSS if name == "dss" else DLR
    kw = {} if name == "dss" else {"prod": name == "dlr-prod"}
    m = cls(2, d_state=3, bidirectional=True, kernel_chunk=4, **kw).double()
    if name != "dss":
        randomize_dlr(m, rng)
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in m.parameters())
    u = torch.tensor(rng.normal(size=(1, 9, 2)), requires_grad=True)

    def f(u, *ps):
        return torch.func.functional_call(m, dict(zip(names, ps)), (u,))

    assert torch.autograd.gradcheck(f, (u, *params))


def test_phase_accuracy_at_2_pow_20():
    rng = seed(9)
    c = torch.tensor(rng.uniform(0, 2e-3, 64), dtype=torch.float32)
    th = torch.tensor(rng.uniform(0, 2 * np.pi, 64), dtype=torch.float32)
    log_lam = torch.complex(-c**2, th)
    ls = torch.tensor([2**20 - 1, 2**20 - 7, 987_654, 2**20 + 12345])
    got = powers(log_lam, ls).numpy()  # [N, G] complex64
    # exact reference from the same float32 parameters, in float64
    ref = np.exp(ls.numpy()[None, :] * (-(c.double().numpy() ** 2) + 1j * th.double().numpy())[:, None])
    assert np.abs(got - ref).max() < 2e-6
    naive = torch.exp(log_lam.unsqueeze(-1) * ls.float()).numpy()  # float32 θ·l
    assert np.abs(naive - ref).max() > 1e-2  # what the accurate path avoids


def test_kernel_accurate_at_2_pow_20():
    rng = seed(10)
    m = DLR(1, d_state=4, dt_min=1e-6, dt_max=1e-6, kernel_chunk=256)  # 16 groups of chunks
    with torch.no_grad():
        m.log_lam_im.copy_(torch.tensor(rng.uniform(0, 2 * np.pi, (1, 4)), dtype=torch.float32))
        m.W.copy_(torch.tensor(rng.normal(size=(1, 1, 4, 2)), dtype=torch.float32))
    L = 2**20
    K = m.kernel(L)[0, 0].detach().numpy()
    lam, w = dlr_np(m)
    for l in (0, 1, 777_777, L - 1):
        ref = (w[0, 0] * lam[0] ** l).sum().real
        assert abs(K[l] - ref) < 2e-5 * np.abs(w).sum()


# --- attention --------------------------------------------------------------------------

def reference_attention(m, u, allowed):
    """Dense float64 multi-head attention with rotary embeddings written out independently:
    channel pairs (i, i + d/2) as complex numbers times e^{i·pos·10000^(-2i/d)}."""
    B, L, H = u.shape
    nh = m.n_heads
    d = H // nh
    proj = lambda lin: (u @ lin.weight.T + lin.bias).reshape(B, L, nh, d).permute(0, 2, 1, 3)
    q, k, v = (proj(lin).detach().numpy() for lin in (m.q, m.k, m.v))
    freq = 10000.0 ** (-np.arange(d // 2) / (d // 2))
    rot = np.exp(1j * np.arange(L)[:, None] * freq)  # [L, d/2]
    cplx = lambda t: (t[..., : d // 2] + 1j * t[..., d // 2:]) * rot
    qc, kc = cplx(q), cplx(k)
    scores = np.einsum("bhid,bhjd->bhij", qc.conj(), kc).real / math.sqrt(d)  # Re(q̄k) = q·k
    scores = np.where(allowed, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bhij,bhjd->bihd", p, v).reshape(B, L, H)
    return o @ m.o.weight.detach().numpy().T + m.o.bias.detach().numpy()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_full_attention_matches_dense_reference(bidirectional):
    rng = seed(11)
    m = Attention(16, n_heads=4, bidirectional=bidirectional).double()
    u = torch.tensor(rng.normal(size=(2, 21, 16)))
    i, j = np.arange(21)[:, None], np.arange(21)[None, :]
    allowed = np.ones((21, 21), bool) if bidirectional else j <= i
    np.testing.assert_allclose(m(u).detach().numpy(), reference_attention(m, u, allowed), atol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("L", [37, 40, 8, 5])
def test_local_attention_matches_dense_masked_reference(bidirectional, L):
    rng = seed(12)
    m = LocalAttention(16, n_heads=4, bidirectional=bidirectional, chunk_size=8).double()
    u = torch.tensor(rng.normal(size=(2, L, 16)))
    ci, cj = np.arange(L)[:, None] // 8, np.arange(L)[None, :] // 8
    if bidirectional:
        allowed = np.abs(ci - cj) <= 1
    else:
        allowed = ((cj == ci) | (cj == ci - 1)) & (np.arange(L)[None, :] <= np.arange(L)[:, None])
    np.testing.assert_allclose(m(u).detach().numpy(), reference_attention(m, u, allowed), atol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("L", [16, 11])
def test_local_attention_equals_full_when_sequence_fits_one_chunk(bidirectional, L):
    seed(13)
    full = Attention(16, 4, bidirectional).double()
    local = LocalAttention(16, 4, bidirectional, chunk_size=16).double()
    local.load_state_dict(full.state_dict())
    u = torch.randn(3, L, 16, dtype=torch.float64)
    torch.testing.assert_close(local(u), full(u), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_unidirectional_models_are_causal(name):
    seed(14)
    m = build(name, 3, 2, d_model=16, n_layers=2, **tiny(name)).double()
    x = torch.randn(1, 30, 3, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 19] += 1.0
    y, y2 = m(x), m(x2)
    # no earlier output moves (scans exactly; FFT convolutions mix round-off across positions: ~1e-16)
    assert (y[0, :19] - y2[0, :19]).abs().max() < 1e-12
    assert (y[0, 19:] - y2[0, 19:]).abs().max() > 1e-6


@pytest.mark.parametrize("name", ["attention", "local-attention", "dlr", "dss"])
def test_bidirectional_models_see_the_future(name):
    seed(15)
    extra = {"chunk_size": 8} if name == "local-attention" else {}
    extra |= {"d_state": 16} if name in ("dlr", "dss") else {}
    m = build(name, 3, 2, d_model=16, bidirectional=True, **extra).double()
    x = torch.randn(1, 30, 3, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 19] += 1.0
    assert (m(x)[0, 12:19] - m(x2)[0, 12:19]).abs().max() > 1e-6


# --- the block and build() --------------------------------------------------------------

def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_paper_table1():
    # Table 1 models on a single-channel atomic task (CUMSUM): inputs x plus the two
    # positional channels (d_input = 3), one output channel; H = 128, N = 4096.
    H, N, din, dout = 128, 4096, 3, 1
    io = (din * H + H) + (H * dout + dout)  # encoder + decoder
    block = H + (H * H + H) + 2 * H  # D skip + output linear + LayerNorm
    dlr_layer = 2 * N + 2 * H * N + block  # λ (c, θ) + complex W
    attn_layer = 4 * (H * H + H) + block  # Q, K, V, O
    counts = {
        ("dlr", 1): (dlr_layer + io, 1.1e6),
        ("dss", 1): (2 * N + H + 2 * H * N + block + io, 1.1e6),  # a, b, Δ, W
        ("attention", 1): (attn_layer + io, 83e3),
        ("dlr", 6): (6 * dlr_layer + io, 6.4e6),
        ("attention", 2): (2 * attn_layer + io, 166e3),
    }
    for (name, layers), (expect, paper) in counts.items():
        m = build(name, din, dout, d_model=H, n_layers=layers,
                  **({"d_state": N} if name != "attention" else {}))
        assert n_params(m) == expect, name
        # the paper prints two significant digits (1,074,305 is "1.1M")
        assert abs(expect - paper) / paper < 0.025, (name, layers, expect, paper)


def test_init_follows_paper():
    seed(16)
    m = DLR(8, d_state=512, dt_min=1e-3, dt_max=0.1)
    th = m.log_lam_im.detach().double().numpy()[0]
    np.testing.assert_allclose(th, 2 * np.pi * np.arange(512) / 512, rtol=1e-6)
    delta = 2 * m.log_lam_re.detach().double().numpy() ** 2  # c = sqrt(Δ/2)
    assert delta.min() >= 1e-3 * (1 - 1e-5) and delta.max() <= 0.1 * (1 + 1e-5)
    # log-uniform: log Δ has the uniform's mean and spread
    assert abs(np.log(delta).mean() - np.log(1e-2)) < 0.3
    assert abs(m.W.detach().std().item() * 512 - 1) < 0.05  # N(0, N^-2)
    d = DSS(8, d_state=64, dt_min=1e-4, dt_max=1e-2)
    lam = -torch.exp(d.a) + 1j * d.b
    np.testing.assert_allclose(lam.detach().numpy()[0], -0.5 + 1j * np.pi * np.arange(64), rtol=1e-6)
    dt = d.log_dt.exp().detach().numpy()
    assert dt.min() >= 1e-4 * (1 - 1e-5) and dt.max() <= 1e-2 * (1 + 1e-5) and dt.shape == (1, 8)


@pytest.mark.parametrize("name", MODELS)
def test_build_shapes_t_out_and_training_step(name):
    seed(17)
    extra = tiny(name)
    m = build(name, 4, 3, d_model=16, n_layers=2, glu=True, prenorm=True, dropout=0.1, **extra)
    x = torch.randn(2, 20, 4)
    m.eval()
    y = m(x)
    assert y.shape == (2, 20, 3)
    torch.testing.assert_close(m(x, t_out=6), y[:, -6:])
    m.train()
    opt = torch.optim.AdamW(param_groups(m, lr=1e-3, kernel_lr=1e-4, weight_decay=0.1))
    loss = m(x, t_out=6).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    opt.step()
    # token-id inputs through an Embedding, t_out fixed at build time
    e = build(name, None, 10, d_model=16, vocab_size=16, t_out=4, **extra)
    assert e(torch.randint(0, 16, (2, 20))).shape == (2, 4, 10)


@pytest.mark.parametrize("name", MODELS)
def test_param_groups_exclude_kernel_from_weight_decay(name):
    m = build(name, 3, 1, d_model=8, n_layers=2, **tiny(name, d_state=8))
    groups = {g["name"]: g for g in param_groups(m, lr=1e-3, kernel_lr=5e-4, weight_decay=0.05)}
    # What each paper trains without weight decay (and with its own learning rate).
    expected_kernel = {
        "dlr": {"log_lam_re", "log_lam_im", "W"}, "dlr-prod": {"log_lam_re", "log_lam_im", "W"},
        "dss": {"a", "b", "log_dt", "W"}, "attention": set(), "local-attention": set(),
        "lru": {"nu_log", "theta_log", "gamma_log"}, "s4d": {"log_A_real", "A_imag", "log_dt"},
        "s5": {"Lambda_re", "Lambda_im", "B", "log_step"}, "mamba": {"A_log", "D"},
        "rglru": {"Lambda"},
    }[name]
    kernel_names = {n for n, p in m.named_parameters() if n.split(".")[-1] in expected_kernel
                    and ".mixer." in n}
    by_id = {id(p): n for n, p in m.named_parameters()}
    got = {by_id[id(p)] for p in groups["kernel"]["params"]} if "kernel" in groups else set()
    assert got == kernel_names and len(got) == 2 * len(expected_kernel)
    if got:
        assert groups["kernel"]["weight_decay"] == 0.0 and groups["kernel"]["lr"] == 5e-4
    other = {by_id[id(p)] for p in groups["other"]["params"]}
    assert groups["other"]["weight_decay"] == 0.05 and groups["other"]["lr"] == 1e-3
    assert other | got == set(by_id.values()) and not other & got
    assert {id(p) for p in kernel_parameters(m)} == {id(p) for p in groups.get("kernel", {"params": []})["params"]}


@pytest.mark.parametrize("name,config,match", [
    ("dlr", {"n_heads": 4}, "valid keys: .*d_state"),
    ("attention", {"d_state": 64}, "valid keys: .*n_heads"),
    ("dlr", {"dmodel": 64}, "unknown config key"),
    ("local-attention", {"chunk": 8}, "chunk_size"),
    ("dlr", {"d_model": 0}, "d_model must be a positive int"),
    ("dlr", {"dt_min": 0.1, "dt_max": 0.01}, "dt_min <= dt_max"),
    ("attention", {"d_model": 20, "n_heads": 4}, "multiple of 2"),
    ("dss", {"bidirectional": 1}, "True or False"),
    ("dlr", {"dropout": 1.5}, "dropout"),
    ("dlr", {"vocab_size": 16}, "d_input must be None or 16"),
])
def test_bad_config_raises(name, config, match):
    with pytest.raises(ValueError, match=match):
        build(name, 3, 1, **config)


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="valid models: dlr, dlr-prod, dss, attention"):
        build("s4", 3, 1)


# --- CUDA -------------------------------------------------------------------------------

@CUDA
@pytest.mark.parametrize("name", MODELS)
def test_cuda_matches_cpu(name):
    seed(18)
    m = build(name, 3, 2, d_model=16, bidirectional=True, **tiny(name, d_state=32)).double()
    x = torch.randn(2, 37, 3, dtype=torch.float64)
    torch.testing.assert_close(m.cuda()(x.cuda()).cpu(), m.cpu()(x), rtol=1e-9, atol=1e-9)


@CUDA
def test_cuda_dlr_memory_bounded_at_2_pow_20():
    # One DLR mixer, N = 4096, H = 32, L = 2^20, forward + backward: the N×L matrix alone
    # would take 32 GiB; ours must stay within a few GiB.
    seed(19)
    m = DLR(32, d_state=4096).cuda()
    u = torch.randn(1, 2**20, 32, device="cuda", requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    m(u).square().mean().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    assert peak < 4 * 2**30, peak / 2**30
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
