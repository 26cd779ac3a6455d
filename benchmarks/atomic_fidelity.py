"""The 11 atomic tasks side by side with the DLR paper's own generator, as quoted in the data cards
("Differences from the paper's code").

    python benchmarks/atomic_fidelity.py DLR_CHECKOUT [--length 512] [--num-samples 1000] [--seed 0]
                                         [--tasks shift,mips,...]

The cards quote two runs (about 3 and 12 minutes on two cores):

    git clone https://github.com/ag1988/dlr /tmp/dlr   # any checkout of it; only one file is read
    pip install 'lrbench-synth[torch]' tqdm            # the paper's module needs torch, numpy, tqdm
    python benchmarks/atomic_fidelity.py /tmp/dlr --length 512 --num-samples 1000
    python benchmarks/atomic_fidelity.py /tmp/dlr --length 4096 --num-samples 200

DLR_CHECKOUT is a checkout of github.com/ag1988/dlr; its src/dataloaders/sequence1d.py is imported
from there and driven as its Sequence1dTrainDataset drives it (the keyword arguments its Sequence1d
dataset passes: num_shifts 8, M 32, D 4, causal, variable; one sample per call), after
torch.manual_seed(1000 * seed + k) for the k-th task, so that no two tasks share their draws (its
Shift, CumSum, CumMax, Reverse and Sort all start with the same randn(L)). Its MIPS builds samples
on 'cuda' by default; here in_device='cpu'.

For every task the script prints, ours against theirs: shapes and dtypes of inputs and targets; a
few numbers per sample (a value at a fixed position, a spread, a recovered shift or index) with the
two-sample Kolmogorov-Smirnov p-value (the two sides use different random generators, numpy's and
torch's, so bytes differ and only distributions can agree; with about 60 tests, a few p-values
below 0.05 are expected by chance); and exact properties checked on every sample: how far the
targets are from the definition recomputed in float64 from the stored inputs, the largest error
of the positional channels against cos/sin in float64, whether max|x| is exactly 1. Then the
facts where the two generators differ by design: Shift's delays at lengths C does not divide,
ContextShift's range of s, Solve's N where L + 1 is a perfect square, MIPS near-ties decided in
float32 against exactly, and the fixed instances of SelectFixed and SolveFixed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np
from scipy import stats

import lrbench
from lrbench.generators import atomic

try:
    import torch
except ImportError:  # the paper's generator is torch code
    raise SystemExit("the paper's generator needs torch: pip install 'lrbench-synth[torch]'") from None

THEIR_NAME = {"select": "masked_select", "select-fixed": "masked_select_fixed", "context-shift": "context_shift",
              "solve-fixed": "solve_fixed"}
TASKS = ["shift", "cumsum", "cummax", "reverse", "sort", "select", "select-fixed", "mips", "context-shift",
         "solve", "solve-fixed"]
C, M, D = 8, 32, 4  # the defaults of both sides


def load_sequence1d(checkout: Path) -> types.ModuleType:
    path = checkout / "src" / "dataloaders" / "sequence1d.py"
    if not path.is_file():
        raise SystemExit(f"{path} not found: the argument must be a checkout of github.com/ag1988/dlr")
    spec = importlib.util.spec_from_file_location("dlr_sequence1d", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise SystemExit(f"importing {path}: {exc} (it imports torch, numpy and tqdm)") from None
    return module


def theirs(seq1d, name: str, L: int, n: int, seed: int) -> list[dict]:
    torch.manual_seed(1000 * seed + TASKS.index(name))
    ds = seq1d.Sequence1dTrainDataset(samples_per_epoch=n, L=L, task=THEIR_NAME.get(name, name), D=D, causal=True,
                                      M=M, variable=True, consecutive=False, num_shifts=C, in_device="cpu")
    out = []
    for x, y in ds:
        out.append({"inputs": x.numpy(), "targets": y.numpy()})
    return out


def ours(name: str, L: int, n: int, seed: int) -> list[dict]:
    task = lrbench.get_task(name, length=L)
    return [task.sample(i, "test", seed) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# What is read back from one sample; both sides go through the same functions.


def signal(name: str, s: dict, L: int) -> np.ndarray:
    """The random signal channel without padding or announced code (float64)."""
    x = s["inputs"][:, 0].astype(np.float64)
    if name in ("reverse", "sort"):
        return x[:L]
    if name in ("select", "select-fixed"):
        return x[: L + M]
    if name == "context-shift":
        return x[2:]
    return x


def shift_of(s: dict, L: int) -> int:
    """ContextShift's s from the announced code (cos, sin of 2πs/L)."""
    x = s["inputs"]
    return int(round((np.arctan2(float(x[1, 0]), float(x[0, 0])) % (2 * np.pi)) * L / (2 * np.pi))) % L


def mips_index(s: dict) -> np.ndarray:
    """i' per row, found as the value row equal to the target (values are copied exactly)."""
    v = s["inputs"][:, 2 * D : 3 * D]
    y = s["targets"]
    keys = {row.tobytes(): j for j, row in reversed(list(enumerate(v)))}  # the first j per distinct row
    return np.array([keys.get(row.tobytes(), -1) for row in y])


def solve_parts(s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    N = len(s["targets"])
    rows = s["inputs"][: N * (N + 1), 0].astype(np.float64).reshape(N, N + 1)
    return rows[:, :N], rows[:, N], s["targets"][:, 0].astype(np.float64)


def probes(name: str, s: dict, L: int) -> dict[str, float]:
    """Numbers per sample to compare in distribution (KS)."""
    x, y = signal(name, s, L), s["targets"].astype(np.float64)
    out = {"x[1]": x[1], "std(x)": x.std()}
    if name in ("solve", "solve-fixed"):
        A, B, X = solve_parts(s)
        out = {"B[0]": B[0], "X[0]": X[0], "max abs(B_i)": np.abs(B).max()}
        if name == "solve":
            out["A[0,0]"] = A[0, 0]
            out["A[N-1,0]"] = A[-1, 0]
        return out
    if name == "mips":
        q = s["inputs"][:, :D].astype(np.float64)
        i = mips_index(s)
        rows = np.arange(len(i))
        return {"q[0,0]": q[0, 0], "y[L-1,0]": y[-1, 0], "mean (i - i')/(i+1)": np.mean((rows - i) / (rows + 1)),
                "share i' = i": np.mean(i == rows)}
    if name == "shift":
        out.update({"y[L-1, C-1]": y[-1, -1], "std(y)": y.std()})
    elif name == "cumsum":
        out.update({"y[L-1]": y[-1, 0], "y[L/2]": y[L // 2, 0]})
    elif name == "cummax":
        out.update({"y[L/2]": y[L // 2, 0], "y[L-1]": y[-1, 0]})
    elif name == "reverse":
        out.update({"y[0]": y[0, 0], "std(y)": y.std()})
    elif name == "sort":
        out.update({"y[1]": y[1, 0], "y[L-1]": y[-1, 0]})
    elif name in ("select", "select-fixed"):
        marked = np.flatnonzero(s["inputs"][:, 1])
        out.update({"y[0]": y[0, 0], "std(y)": y.std()})
        if name == "select":
            out.update({"first marked position": marked[0], "mean marked position": marked.mean()})
    elif name == "context-shift":
        out.update({"s": shift_of(s, L), "mean(y)": y.mean()})
    return out


def target_error(name: str, s: dict, L: int) -> float:
    """max |targets - the definition recomputed in float64 from the stored inputs|."""
    x, y = signal(name, s, L), s["targets"].astype(np.float64)
    if name == "shift":
        want = np.zeros((L, C))
        for j, d in enumerate(atomic.shift_offsets(L, C)):
            want[d:, j] = x[: L - d]
    elif name == "cumsum":
        want = (np.cumsum(x) / np.sqrt(np.arange(1, L + 1)))[:, None]
    elif name == "cummax":
        want = np.maximum.accumulate(x)[:, None]
    elif name == "reverse":
        want = x[::-1, None]
    elif name == "sort":
        want = x[np.argsort(np.abs(x - x[0]), kind="stable"), None]
    elif name in ("select", "select-fixed"):
        want = x[np.flatnonzero(s["inputs"][: L + M, 1]), None]
    elif name == "mips":
        q, k, v = (s["inputs"][:, j * D : (j + 1) * D].astype(np.float64) for j in range(3))
        want = v[atomic.causal_mips(q, k)]
    elif name == "context-shift":
        xp, sh = s["inputs"][:, 0].astype(np.float64), shift_of(s, L)
        want = np.zeros((L, 1))
        want[sh:, 0] = xp[: L - sh]
    else:  # solve: X = A^T B
        A, B, X = solve_parts(s)
        want = (A.T @ B)[:, None]
    return float(np.abs(y - want).max())


def positional_error(s: dict) -> float:
    T = len(s["inputs"])
    angle = 2 * np.pi * np.arange(T) / T
    pos = s["inputs"][:, -2:].astype(np.float64)
    return float(max(np.abs(pos[:, 0] - np.cos(angle)).max(), np.abs(pos[:, 1] - np.sin(angle)).max()))


# ---------------------------------------------------------------------------------------------


def fmt(v: float) -> str:
    return f"{v:.3g}" if v == 0 or 1e-3 <= abs(v) < 1e4 else f"{v:.1e}"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def describe_shapes(group: list[dict]) -> tuple[str, str]:
    s = group[0]
    shape = lambda a: f"{list(a.shape)} {a.dtype}"
    assert all(t["inputs"].shape == s["inputs"].shape and t["targets"].shape == s["targets"].shape for t in group)
    return shape(s["inputs"]), shape(s["targets"])


def compare_task(seq1d, name: str, L: int, n: int, seed: int) -> tuple[list, list, list]:
    t0 = time.perf_counter()
    a = ours(name, L, n, seed)
    t1 = time.perf_counter()
    b = theirs(seq1d, name, L, n, seed)
    t2 = time.perf_counter()
    (ai, at), (bi, bt) = describe_shapes(a), describe_shapes(b)
    shapes = [name, ai, bi, at, bt, f"{1e3 * (t1 - t0) / n:.2f} / {1e3 * (t2 - t1) / n:.2f}"]
    pa = [probes(name, s, L) for s in a]
    pb = [probes(name, s, L) for s in b]
    dist = []
    for key in pa[0]:
        va, vb = np.array([p[key] for p in pa]), np.array([p[key] for p in pb])
        dist.append([name, key, f"{fmt(va.mean())} ± {fmt(va.std())}", f"{fmt(vb.mean())} ± {fmt(vb.std())}",
                     f"{stats.ks_2samp(va, vb).pvalue:.2f}"])
    if name == "solve":  # every entry of A against its exact law: A_ij² ~ Beta(1/2, (N-1)/2) for Haar A
        law = stats.beta(0.5, (len(a[0]["targets"]) - 1) / 2).cdf
        share = []
        for group in (a, b):
            A = np.array([solve_parts(s)[0] for s in group])  # (n, N, N)
            share.append(np.mean([stats.kstest(A[:, i, j] ** 2, law).pvalue < 0.01
                                  for i in range(A.shape[1]) for j in range(A.shape[2])]))
        dist.append([name, "share of the N² entries A_ij whose A_ij² fails a KS test against Beta(1/2, (N−1)/2) at 0.01",
                     f"{share[0]:.3f}", f"{share[1]:.3f}", "—"])
    exact = []
    for label, group in (("ours", a), ("theirs", b)):
        scaled = name not in ("solve", "solve-fixed", "mips")  # those have no max-abs scaling
        maxabs = [np.abs(signal(name, s, L)).max() for s in group] if scaled else None
        errors = np.array([target_error(name, s, L) for s in group])
        exact.append([name, label, fmt(errors.max()), f"{np.sum(errors > 1e-4)} of {len(group)}",
                      fmt(max(positional_error(s) for s in group)),
                      "—" if maxabs is None else f"{np.mean(np.array(maxabs) == 1.0):.3f}"])
    return shapes, dist, exact


# ---------------------------------------------------------------------------------------------
# Differences by design.


def shift_delays(seq1d, lengths: list[int]) -> list[list]:
    rows = []
    for L in lengths:
        _, y = seq1d.shift(L=L, num_shifts=C)
        theirs_d = [int(np.flatnonzero(np.abs(y[:, j].numpy()) > 1e-4)[0]) for j in range(C)]
        ours_y = lrbench.get_task("shift", length=L).sample(0)["targets"]
        ours_d = [int(np.flatnonzero(ours_y[:, j])[0]) for j in range(C)]
        rows.append([L, " ".join(map(str, ours_d)), " ".join(map(str, theirs_d)),
                     " ".join(str(j * L // C) for j in range(C)), "same" if ours_d == theirs_d else "DIFFERENT"])
    return rows


def context_shift_range(seq1d, L: int, n: int) -> list[list]:
    torch.manual_seed(0)
    s_theirs = [shift_of({"inputs": seq1d.context_shift(L=L)[0].numpy()}, L) for _ in range(n)]
    task = lrbench.get_task("context-shift", length=L)
    s_ours = [shift_of(task.sample(i), L) for i in range(n)]
    row = lambda label, v: [label, min(v), max(v), len(set(v)),
                            f"{stats.chisquare(np.bincount(v, minlength=L - 2)[: L - 2]).pvalue:.2f}"]
    return [row("ours", s_ours), row("theirs", s_theirs)]


def solve_sizes(seq1d, lengths: list[int]) -> list[list]:
    rows = []
    for L in lengths:
        _, y = seq1d.solve(task="solve", L=L)
        rows.append([L, atomic.solve_size(L), len(y), repr(float(np.max(np.roots([1, 2, -L])))),
                     "same" if atomic.solve_size(L) == len(y) else "DIFFERENT"])
    return rows


def mips_ties(seq1d, L: int, n: int, seed: int) -> list[list]:
    """Each side's samples scored by the other's rule: torch float32 masked argmax vs exact float64."""
    def torch_rule(q, k):
        sim = torch.from_numpy(q.astype(np.float32)) @ torch.from_numpy(k.astype(np.float32)).T
        i = torch.arange(len(q))
        sim.masked_fill_(i.view(-1, 1) < i.view(1, -1), -1e5)
        return sim.argmax(-1).numpy()

    rows = []
    for label, group in (("ours", ours("mips", L, n, seed)), ("theirs", theirs(seq1d, "mips", L, n, seed))):
        differ = total = samples = 0
        for s in group:
            q, k = (s["inputs"][:, j * D : (j + 1) * D] for j in range(2))
            a, b = atomic.causal_mips(q.astype(np.float64), k.astype(np.float64)), torch_rule(q, k)
            differ += int((a != b).sum())
            samples += bool((a != b).any())
            total += len(a)
        rows.append([label, f"{differ} of {total:,}", f"{samples} of {len(group)}"])
    return rows


def fixed_instances(seq1d, L: int) -> list[str]:
    lines = []
    # SelectFixed: their positions come from torch.Generator().manual_seed(0); ours from the dataset seed.
    t = [np.flatnonzero(seq1d.masked_select(task="masked_select_fixed", L=L, M=M)[0][:, 1].numpy())
         for _ in range(3)]
    same = all(np.array_equal(t[0], u) for u in t[1:])
    task = lrbench.get_task("select-fixed", length=L)
    o = {seed: np.flatnonzero(task.sample(0, "test", seed)["inputs"][:, 1]) for seed in (0, 1)}
    gaps = lambda p: f"gaps min {np.diff(p).min()}, max {np.diff(p).max()}"
    lines.append(f"SelectFixed at L = {L}: theirs (same in every call: {same}) first/last positions "
                 f"{t[0][:4].tolist()} … {t[0][-2:].tolist()}, {gaps(t[0])}; ours seed 0 {o[0][:4].tolist()} … "
                 f"{o[0][-2:].tolist()}, {gaps(o[0])}; ours seed 1 {o[1][:4].tolist()} …; "
                 f"positions in common between theirs and ours (seed 0): {len(np.intersect1d(t[0], o[0]))} of {M}")
    # SolveFixed: their A is the polar factor of randn(N, N) under manual_seed(0), a function of N only.
    A_t = [solve_parts({"inputs": x.numpy(), "targets": y.numpy()})[0]
           for x, y in (seq1d.solve(task="solve_fixed", L=L) for _ in range(3))]
    N = len(A_t[0])
    G = torch.randn((N, N), generator=torch.Generator().manual_seed(0))
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    recomputed = np.abs((U @ Vh).numpy() - A_t[0]).max()
    A_o = lrbench.get_task("solve-fixed", length=L).fixed(0)
    lines.append(f"SolveFixed at L = {L} (N = {N}): theirs the same in every call: "
                 f"{all(np.array_equal(A_t[0], B) for B in A_t[1:])}, and equal (to {recomputed:.1e}) to the "
                 f"orthogonal polar factor U Vh of torch.randn(N, N) drawn after manual_seed(0); "
                 f"A[0, :3] theirs {np.round(A_t[0][0, :3], 3).tolist()}, ours (seed 0) {np.round(A_o[0, :3], 3).tolist()}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a checkout of github.com/ag1988/dlr")
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", default=",".join(TASKS))
    args = ap.parse_args()
    seq1d = load_sequence1d(args.checkout)
    torch.set_num_threads(1)
    L, n = args.length, args.num_samples
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    print(f"L = {L}, {n} samples per side and task; ours: test split, seed {args.seed}; theirs: "
          f"torch.manual_seed({1000 * args.seed} + task number); torch {torch.__version__}, numpy {np.__version__}\n")
    shapes, dist, exact = [], [], []
    for name in names:
        a, b, c = compare_task(seq1d, name, L, n, args.seed)
        shapes.append(a)
        dist += b
        exact += c
        print(f"  {name} done", file=sys.stderr)
    print(table(["task", "inputs, ours", "inputs, theirs", "targets, ours", "targets, theirs", "ms per sample ours / theirs"],
                shapes))
    print()
    print(table(["task", "per sample", "ours mean ± sd", "theirs mean ± sd", "KS p"], dist))
    print()
    print(table(["task", "side", "largest target error", "samples off by > 1e-4", "largest positional error",
                 "share with max-abs(x) = 1 exactly"], exact))
    print("\nShift delays (first non-zero row of each target column; theirs above 1e-4, their FFT leaves noise):\n")
    print(table(["L", "ours", "theirs", "⌊jL/C⌋ (the paper's text)", ""],
                shift_delays(seq1d, [16, 20, 100, 512, 1000, 4096])))
    print(f"\nContextShift s at L = 16 over {20 * 16} samples per side:\n")
    print(table(["side", "min s", "max s", "distinct", "chi2 p, uniform on 0..L−3"], context_shift_range(seq1d, 16, 320)))
    print("\nSolve's N (theirs: the length of its targets):\n")
    print(table(["L", "ours", "theirs", "their float root", ""],
                solve_sizes(seq1d, [16, 63, 80, 99, 143, 512, 528, 4095, 4096, 4224])))
    print(f"\nMIPS at L = {L}: i' by torch's float32 masked argmax against our exact float64 rule, on each side's "
          f"samples ({min(n, 200)} each):\n")
    print(table(["samples", "positions where the rules differ", "samples with a difference"],
                mips_ties(seq1d, L, min(n, 200), args.seed)))
    print()
    for line in [line for length in sorted({L, 4096}) for line in fixed_instances(seq1d, length)]:
        print("- " + line)


if __name__ == "__main__":
    main()
