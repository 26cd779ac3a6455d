"""DLR layer memory and time: chunked kernel (ours) vs the paper's Figure 4, plus attention vs DLR.

    python benchmarks/bench_dlr.py --device cuda          # L = 2^14 … 2^20, batch 16 step times
    python benchmarks/bench_dlr.py                        # CPU: L = 2^14, 2^16 (a few minutes)
    python benchmarks/bench_dlr.py --quick                # CPU: L = 2^14 only (about a minute)

Table 1 — one DLR sequence mixer (kernel + FFT convolution, paper Figure 4's
`state_space`), N = 4096, H = 32, batch 1, forward + backward of mean(y²):
  ours  = lrbench.baselines DLR (chunked Vandermonde kernel, custom autograd)
  fig4  = a direct transcription of Figure 4: it builds the N×L matrix exp(log Λ ⊗ pos).
fig4 is skipped when its N×L complex64 matrix would exceed --fig4-cap-gib (default
1 GiB on CPU, 8 GiB on GPU; its forward+backward holds about four such matrices),
and reported as OOM if it runs out of memory anyway. Δ = 1e-5 (the paper's Table 2/4
setting) so kernels stay long; "kernel err" is the max error at 256 sampled positions
against a float64 evaluation of K_l = Σ_n W_n λ_n^l, relative to max |K|.
Peak memory: torch.cuda.max_memory_allocated on GPU; on CPU the growth of the
process's peak RSS (getrusage) over the run, one subprocess per configuration.

Table 2 — one-layer models (H = 128, N = 4096, 4 heads) at L = 4096: time of one
training step (forward, MSE, backward, AdamW). The paper reports attention 6.3×
slower than DLR per step (Table 1, bottom). Ratios are measured in this run.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from lrbench.baselines import build
from lrbench.baselines.dlr import DLR


def figure4_kernel(m, L):
    """Figure 4's dlr_kernel, transcribed: P = exp(log Λ ⊗ pos) is the full [N, L] matrix."""
    Lambda_log = -m.log_lam_re[0] ** 2 + 1j * m.log_lam_im[0]  # [N]
    W = m.W[0, ..., 0] + 1j * m.W[0, ..., 1]  # [H, N]
    pos = torch.arange(L, device=W.device)  # [L]
    P = (Lambda_log.unsqueeze(-1) * pos).exp()  # [N, L]
    return W.matmul(P).real  # [H, L]


def figure4_state_space(m, u):
    """Figure 4's state_space (unidirectional): u [B, H, L] -> y [B, H, L]."""
    L = u.shape[-1]
    K_f = torch.fft.rfft(figure4_kernel(m, L), n=2 * L)  # [H, L+1]
    u_f = torch.fft.rfft(u, n=2 * L)  # [B, H, L+1]
    return torch.fft.irfft(u_f * K_f, n=2 * L)[..., :L]  # [B, H, L]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def kernel_error(m, K, L, rng):
    """Max |K - K_float64| at sampled positions, relative to max |K_float64|."""
    ls = np.unique(np.concatenate([rng.integers(0, L, 255), [L - 1]]))
    c = m.log_lam_re[0].detach().double().cpu().numpy()
    th = m.log_lam_im[0].detach().double().cpu().numpy()
    Wt = m.W[0].detach().double().cpu().numpy()
    P = np.exp(ls[None, :] * (-(c**2) + 1j * th)[:, None])  # [N, S]
    ref = ((Wt[..., 0] + 1j * Wt[..., 1]) @ P).real  # [H, S]
    got = K[:, ls].double().cpu().numpy()
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def run_layer(impl, L, N, H, device, reps):
    """One configuration of Table 1: returns seconds (best of reps), peak bytes, kernel error."""
    torch.manual_seed(0)
    m = DLR(H, N, dt_min=1e-5, dt_max=1e-5).to(device)
    u = torch.randn(1, L, H, device=device, requires_grad=True)  # [B, L, H]

    def step():
        m.zero_grad(set_to_none=True)
        u.grad = None
        y = m(u) if impl == "ours" else figure4_state_space(m, u.transpose(1, 2))
        y.square().mean().backward()

    sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(reps + (device == "cuda")):  # on GPU, one extra untimed warm-up first
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    if device == "cuda":
        times = times[1:]
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024  # KiB on Linux
    with torch.no_grad():
        K = m.kernel(L)[0] if impl == "ours" else figure4_kernel(m, L)  # [H, L]
        err = kernel_error(m, K, L, np.random.default_rng(0))
    return {"seconds": min(times), "peak": peak, "err": err}


def run_step(name, L, batch, device, reps):
    """One configuration of Table 2: median seconds per training step."""
    torch.manual_seed(0)
    extra = {"d_state": 4096, "dt_min": 1e-5, "dt_max": 1e-5} if name in ("dlr", "dss") else {}
    if name == "dss":
        extra |= {"dt_min": 1e-4, "dt_max": 1e-2}  # Table 4's DSS_EXP range
    model = build(name, 3, 1, d_model=128, n_layers=1, **extra).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, L, 3, device=device)
    y = torch.randn(batch, L, 1, device=device)
    times = []
    for _ in range(reps + 1):  # the first step (allocations, autotuning) is not counted
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times[1:])}


def in_subprocess(job):
    """Run one job in a fresh interpreter, so peak RSS and an OOM belong to that job only."""
    proc = subprocess.run([sys.executable, __file__, "--job", json.dumps(job)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": "OOM" if "out of memory" in proc.stderr.lower() else tail[:60]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_bytes(b):
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="smallest sizes only")
    ap.add_argument("--lengths", type=str, default=None,
                    help="comma-separated log2 lengths for table 1 (default by device)")
    ap.add_argument("--fig4-cap-gib", type=float, default=None,
                    help="skip fig4 when its N×L complex64 matrix exceeds this (GiB)")
    ap.add_argument("--batch", type=int, default=None, help="batch for table 2 (cuda 16, cpu 2)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--job", type=str, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.job:  # child process: run one measurement, print JSON
        job = json.loads(a.job)
        torch.set_num_threads(job.pop("threads"))
        kind = job.pop("kind")
        out = run_layer(**job) if kind == "layer" else run_step(**job)
        print(json.dumps(out))
        return

    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")
    if a.lengths:
        logs = [int(x) for x in a.lengths.split(",")]
    else:
        logs = ([14, 16] if a.quick else [14, 16, 18, 20]) if cuda else ([14] if a.quick else [14, 16])
    cap = (a.fig4_cap_gib if a.fig4_cap_gib is not None else (8.0 if cuda else 1.0)) * 2**30
    reps = a.reps or (5 if cuda else (1 if a.quick else 2))
    batch = a.batch or (16 if cuda else 2)
    threads = torch.get_num_threads()
    N, H = 4096, 32
    dev = torch.cuda.get_device_name() if cuda else f"CPU, {threads} threads"
    print(f"# DLR layer, N={N}, H={H}, batch 1, forward+backward — {dev}, torch {torch.__version__}")
    print(f"# fig4 skipped when its N×L complex64 matrix exceeds {cap / 2**30:g} GiB")
    print(f"{'L':>6} | {'ours time':>10} {'ours peak':>10} {'ours err':>9} | "
          f"{'fig4 time':>10} {'fig4 peak':>10} {'fig4 err':>9} | {'fig4/ours time':>14} {'mem':>6}")
    for lg in logs:
        L = 2**lg
        common = {"kind": "layer", "L": L, "N": N, "H": H, "device": a.device, "reps": reps,
                  "threads": threads}
        ours = in_subprocess({**common, "impl": "ours"})
        fig4 = ({"error": "skip"} if N * L * 8 > cap else in_subprocess({**common, "impl": "fig4"}))
        row = f"2^{lg:<4} | "
        for r in (ours, fig4):
            if "error" in r:
                row += f"{r['error']:>10} {'':>10} {'':>9} | "
            else:
                row += f"{r['seconds']:>9.3f}s {fmt_bytes(r['peak']):>10} {r['err']:>9.1e} | "
        if "error" not in ours and "error" not in fig4:
            row += f"{fig4['seconds'] / ours['seconds']:>13.2f}× {fig4['peak'] / max(ours['peak'], 1):>5.1f}×"
        print(row, flush=True)

    print(f"\n# one-layer training step at L=4096, H=128, batch {batch} (paper: attention 6.3× DLR)")
    step_common = {"kind": "step", "L": 4096, "batch": batch, "device": a.device,
                   "reps": 2 if (a.quick or not cuda) else 10, "threads": threads}
    names = ["dlr", "attention"] if a.quick else ["dlr", "dss", "attention"]
    res = {n: in_subprocess({**step_common, "name": n}) for n in names}
    for n in names:
        r = res[n]
        if "error" in r:
            print(f"{n:>10}: {r['error']}")
            continue
        ratio = (f"{r['seconds'] / res['dlr']['seconds']:.2f}× DLR" if "error" not in res["dlr"] else "")
        print(f"{n:>10}: {r['seconds'] * 1e3:9.1f} ms/step  {ratio}", flush=True)


if __name__ == "__main__":
    main()
