"""Every baseline's layer side by side: forward+backward time and peak memory per layer at
L = 2^10 … 2^16 (CPU) or up to 2^20 (CUDA), as ratios to DLR measured in the same run.

    OMP_NUM_THREADS=1 python benchmarks/bench_models.py   # CPU, L = 2^10 … 2^16, one thread
    python benchmarks/bench_models.py --lengths 10,12     # a quick look
    python benchmarks/bench_models.py --device cuda --lengths 10,12,14,16,18,20

One layer = the sequence mixer of `build(name, ...).layers[0]` of `lrbench.baselines`, for
every name in `MODELS` (the paper's five and the seeds' five; the shared block around it
is the same for all), causal, batch 1, the loss mean(y²) backpropagated to the input and
every parameter. All at the same width H = 32 and state
size N = 64 (`--width`, `--state`); S5's N states are split into N/32 blocks. What N
counts differs by family, so the header gives each layer's real state numbers per
sequence, as a recurrence would hold it (DLR, DSS: N complex per channel; S4D: N/2
complex per channel, the conjugates implied; S5: N/2 complex shared by the channels;
LRU: N complex shared; Mamba: N real for each of its 2H channels; RG-LRU: one per
channel, no N; attention: none, it keeps the whole past).

Each cell runs in a fresh process. Time: the best of `--reps` runs, after an untimed
warm-up at L = 256 (library initialisation) and the measured-memory step below.
Peak memory on CPU: the growth of the process's resident set over its first full-size
forward+backward, from VmRSS just before it to the peak VmHWM after it, with the peak
reset through /proc/self/clear_refs (Linux) right before the step; being the first
full-size step of a fresh process, no memory freed by an earlier step is reused from
the allocator's cache. (tracemalloc does not see torch's allocations.) RSS counts what
the allocator got from the OS, so small cells carry a few MiB of allocator noise.
Without clear_refs, a second fresh process measures the growth of ru_maxrss over one step.
On CUDA: torch.cuda.max_memory_allocated over the timed runs, above what was allocated
before them.

Full attention is O(L²) in time (memory-efficient SDPA keeps its memory linear): above
`--attention-max` (2^14 on CPU) its cells are skipped. A cell that fails prints its
error (e.g. OOM) instead of a number.
"""

import argparse
import json
import subprocess
import sys
import time

import torch

from lrbench.baselines import DEFAULTS, MODELS, build


def state_numbers(name, H, N):
    """Real numbers in one layer's recurrent state per sequence (a complex counts 2)."""
    return {"dlr": 2 * N * H, "dlr-prod": 2 * N * H, "dss": 2 * N * H, "attention": 0, "local-attention": 0,
            "lru": 2 * N, "s4d": N * H, "s5": N, "mamba": 2 * H * N, "rglru": H}[name]


def make(name, H, N, device):
    """The sequence mixer of baseline `name` at width H and (where it has one) state size N."""
    torch.manual_seed(0)
    cfg = {"d_model": H}
    if "d_state" in DEFAULTS[name]:
        cfg["d_state"] = N
    if "n_blocks" in DEFAULTS[name]:
        cfg["n_blocks"] = max(1, N // 32)
    return build(name, 1, 1, **cfg).layers[0].mixer.to(device)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _proc_kib(field):
    """VmRSS or VmHWM of this process, in KiB (Linux /proc)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def measure(name, L, H, N, device, reps):
    """One cell: best seconds of forward+backward, and peak bytes above the resting state."""
    m = make(name, H, N, device)

    def step(u):
        m.zero_grad(set_to_none=True)
        u.grad = None
        m(u).square().mean().backward()

    step(torch.randn(1, min(L, 256), H, device=device, requires_grad=True))  # warm-up: library init
    u = torch.randn(1, L, H, device=device, requires_grad=True)  # [B, L, H]
    if device == "cuda":
        step(u)  # also the allocator's and kernels' first use at this size
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:  # peak RSS of the first full-size step: reset the high-water mark, run, read it
        m.zero_grad(set_to_none=True)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current VmRSS
        except OSError:  # not Linux, or not allowed: main() measures in a process of its own
            peak = None
        else:
            rss0 = _proc_kib("VmRSS")
            step(u)
            peak = (_proc_kib("VmHWM") - rss0) * 1024
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step(u)
        sync(device)
        times.append(time.perf_counter() - t0)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    method = "max_memory_allocated" if device == "cuda" else "clear_refs" if peak is not None else None
    return {"seconds": min(times), "peak": peak, "method": method}


def measure_rss(name, L, H, N):
    """CPU peak without clear_refs: growth of ru_maxrss over one forward+backward, in a process
    that has built the layer and its input and run one tiny step (library initialisation)."""
    import resource

    m = make(name, H, N, "cpu")
    m(torch.randn(1, 64, H, requires_grad=True)).square().mean().backward()
    m.zero_grad(set_to_none=True)
    u = torch.randn(1, L, H, requires_grad=True)  # [B, L, H]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m(u).square().mean().backward()
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0  # KiB on Linux
    return {"peak": kib * 1024, "method": "ru_maxrss"}


def in_subprocess(job, timeout):
    """Run one cell in a fresh interpreter, so its peak memory and any OOM are its own."""
    try:
        proc = subprocess.run([sys.executable, __file__, "--job", json.dumps(job)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": "OOM" if "out of memory" in proc.stderr.lower() or proc.returncode == -9
                else tail[:40]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_bytes(b):
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.1f} MiB"


def table(title, lengths, res, key, fmt, models):
    """A Markdown table. Rows: lengths; DLR absolute, every other model as a multiple of DLR."""
    w = [max(9, len(n)) for n in models[1:]]
    print(f"\n{title}\n")
    print(f"| {'L':>5} | {'dlr':>10} | " + " | ".join(f"{n:>{k}}" for n, k in zip(models[1:], w)) + " |")
    print(f"| {'-' * 4}: | {'-' * 9}: | " + " | ".join("-" * (k - 1) + ":" for k in w) + " |")
    for lg in lengths:
        ref = res[("dlr", lg)]
        cells = [fmt(ref[key]) if "error" not in ref else ref["error"]]
        for n in models[1:]:
            r = res[(n, lg)]
            if "error" in r:
                cells.append(r["error"])
            elif "error" in ref or not ref[key]:
                cells.append(fmt(r[key]))
            else:
                cells.append(f"{r[key] / ref[key]:.2f}×")
        print(f"| 2^{lg:<3} | {cells[0]:>10} | " + " | ".join(f"{c:>{k}}" for c, k in zip(cells[1:], w))
              + " |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--lengths", default=None, help="comma-separated log2 L (cpu: 10..16, cuda: 10..20)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--state", type=int, default=64)
    ap.add_argument("--reps", type=int, default=None,
                    help="timed runs per cell (cuda 5; cpu 3 up to 2^12, 2 up to 2^14, then 1)")
    ap.add_argument("--attention-max", type=int, default=None, help="largest log2 L for attention")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per cell")
    ap.add_argument("--models", default=None, help="comma-separated baselines [default: all]; dlr is always run")
    ap.add_argument("--job", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.job:  # child process: one cell, printed as JSON
        job = json.loads(a.job)
        torch.set_num_threads(job.pop("threads"))
        if job.pop("rss"):
            out = measure_rss(**job)
        else:
            out = measure(**job)
        print(json.dumps(out))
        return

    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")
    lengths = ([int(x) for x in a.lengths.split(",")] if a.lengths
               else list(range(10, 21 if cuda else 17)))
    reps_at = lambda lg: a.reps or (5 if cuda else 3 if lg <= 12 else 2 if lg <= 14 else 1)
    att_max = a.attention_max or (18 if cuda else 14)
    models = ["dlr"] + [n for n in (a.models.split(",") if a.models else MODELS) if n != "dlr"]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        sys.exit(f"--models: unknown {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    threads = torch.get_num_threads()
    H, N = a.width, a.state
    dev = torch.cuda.get_device_name() if cuda else f"CPU, {threads} threads"
    print(f"# one sequence mixer, forward+backward, H={H}, N={N}, batch 1 — {dev}, torch {torch.__version__}")
    print("# recurrent state, real numbers per sequence: " +
          ", ".join(f"{n} {state_numbers(n, H, N)}" for n in MODELS if state_numbers(n, H, N))
          + " (attention keeps the whole past)")
    res, methods = {}, set()
    for lg in lengths:
        for n in models:
            if n == "attention" and lg > att_max:
                res[(n, lg)] = {"error": "skipped"}
                continue
            job = {"name": n, "L": 2**lg, "H": H, "N": N, "threads": threads}
            r = in_subprocess({**job, "device": a.device, "reps": reps_at(lg), "rss": False}, a.timeout)
            if "error" not in r and not cuda and r["peak"] is None:  # no clear_refs: ru_maxrss, alone
                m = in_subprocess({**job, "rss": True}, a.timeout)
                r["peak"] = m.get("peak")
                r["method"] = m.get("method")
                if r["peak"] is None:
                    r = {"error": m["error"]}
            methods.add(r.get("method"))
            res[(n, lg)] = r
        print(f"# 2^{lg}: " + ", ".join(
            f"{n} {res[(n, lg)]['seconds']:.3f}s" if "error" not in res[(n, lg)] else f"{n} {res[(n, lg)]['error']}"
            for n in models), flush=True)
    table("forward+backward time: DLR in seconds, the others as × DLR", lengths, res, "seconds",
          lambda s: f"{s:.3f} s", models)
    how = ("torch.cuda.max_memory_allocated" if cuda else
           "peak RSS of the step over the RSS before it, fresh process per cell: "
           + ", ".join(sorted(m for m in methods if m)))
    table(f"peak memory ({how}): DLR in MiB, the others as × DLR", lengths, res, "peak", fmt_bytes, models)


if __name__ == "__main__":
    main()
