"""Path-X throughput: `lrbench generate pathfinder --size 128` end to end (drawing, compression,
sha256, shards), timed, extrapolated to LRA's 200,000 images and compared with SPEC §10's budget of
one hour on a 2-core machine. Also prints the original generator's cost for the same count from the
figures in ../shared/reference/lra_pathfinder_reference.json (one core, a quiet machine).

    python benchmarks/lra_pathx_throughput.py --images 4000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOTAL = 200_000  # LRA's Path-X: 160K / 20K / 20K
BUDGET_S = 3600.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pathx-"))
    try:
        cmd = [sys.executable, "-m", "lrbench", "generate", "pathfinder", "--size", str(a.size), "--splits", "train",
               "--num-samples", f"train={a.images}", "--workers", str(a.workers), "--out", str(out / "d")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        size = sum(p.stat().st_size for p in (out / "d").rglob("*.h5"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    per = wall / a.images
    print(f"pathfinder-{a.size}: {a.images} images with {a.workers} workers in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({cpu / a.images * 1e3:.1f} ms CPU per image; load average {load:.1f} at the end); {size / a.images / 1024:.1f} "
          "KiB per image on disk")
    print(f"  {TOTAL:,} images: {TOTAL * per / 60:.1f} min wall at this rate "
          f"({TOTAL * per / BUDGET_S:.2f} of the one-hour budget); with the CPU time spread over 2 cores: "
          f"{TOTAL * cpu / a.images / 2 / 60:.1f} min")
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "lra_pathfinder_reference.json"
    if shared.exists():  # measured on a quiet machine (our interleaved runs were on a loaded one)
        sec = json.loads(shared.read_text())["sizes"].get(str(a.size), {}).get("seconds_per_image")
        if sec:
            print(f"  the original generator (../shared/reference, one core): mean {sec['mean']:.2f} s, median "
                  f"{sec['median']:.2f} s per image -> {TOTAL * sec['mean'] / 3600:.0f} core-hours for {TOTAL:,}; "
                  f"CPU per image {sec['mean'] / (cpu / a.images):.0f}x ours on means, "
                  f"{sec['median'] / (cpu / a.images):.0f}x with its median")

if __name__ == "__main__":
    main()
