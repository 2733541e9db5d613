"""Scale: `bench --methods rectified_fit --out DIR` and `fit --law rectified` on a generated
table of 10,000 models, peak memory and wall time (issue 11).

Goal: peak resident memory <= 1 GB (1024 MiB) and wall time <= 60 s each, on 2 cores.
Each command runs in a fresh process (`python -m lensllm.cli`); peak memory is that
process's maximum resident set size (`getrusage(RUSAGE_CHILDREN)` read around each run, so
one child at a time). The baseline, measured in the same run, is the same command on a
table of 1,000 models: the ratios show how time and memory grow with the model count.
CPU seconds (user + system of the command and its fit workers) are printed next to the
wall time, with the load average: on a busy machine the wall time measures the others'
work too. Fits of tables of 2,048 models or more run in worker processes, one per usable
CPU (``LENSLLM_WORKERS`` sets the number).

    OMP_NUM_THREADS=1 python benchmarks/bench_scale.py            # 10,000 models
    python benchmarks/bench_scale.py --models 2000 --baseline 200  # quicker

The table: losses from the rectified law B / (D_l + D^beta) + E with parameters drawn per
model (seeded), times log-normal noise of 1%, sizes 200 ... 1,638,400 (14 columns) and a
zero-shot column, like the published tables.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LIMIT_MIB, LIMIT_S = 1024.0, 60.0


def write_table(path: Path, n_models: int, seed: int = 0) -> None:
    """A loss table of ``n_models`` rectified-law curves with 1% noise (seeded)."""
    rng = np.random.default_rng(seed)
    sizes = 200 * 2 ** np.arange(14)
    beta = rng.uniform(0.3, 0.8, n_models)
    d_l = 10 ** rng.uniform(1, 3, n_models)
    e = rng.uniform(0.5, 2.0, n_models)
    b = rng.uniform(1.0, 3.0, n_models) * d_l
    d = np.concatenate([[0.0], sizes])
    loss = b[:, None] / (d_l[:, None] + d[None, :] ** beta[:, None]) + e[:, None]
    loss *= np.exp(rng.normal(0, 0.01, loss.shape))
    params = 10 ** rng.uniform(7, 10, n_models)
    lines = ["config name,0," + ",".join(str(s) for s in sizes) + ",size,family"]
    for i in range(n_models):
        cells = ",".join(f"{x:.6f}" for x in loss[i])
        lines.append(f"model-{i:05d},{cells},{params[i]:.0f},synthetic")
    path.write_text("\n".join(lines) + "\n")


def measure(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the command and its workers) and peak RSS
    (MiB) of ``python -m lensllm.cli argv`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lensllm.cli", *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"lensllm {' '.join(argv)} failed: {proc.stderr.strip()}")
    if after.ru_maxrss <= before.ru_maxrss:  # a maximum over children: a smaller one hides
        print(f"  (peak of this child not above an earlier one's: "
              f"{before.ru_maxrss / 1024:.0f} MiB)")
    return wall, cpu, max(after.ru_maxrss, before.ru_maxrss) / 1024.0


def commands(table: Path, out: Path) -> dict[str, list[str]]:
    return {"bench --out": ["bench", "--table", str(table), "--methods", "rectified_fit",
                            "--out", str(out)],
            "fit rectified": ["fit", "--table", str(table), "--law", "rectified",
                              "--max-data", "25600", "--json"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        # the big table first: ru_maxrss of children only grows, so run the biggest first
        for n in (args.models, args.baseline):
            table = Path(tmp) / f"table_{n}.csv"
            write_table(table, n)
            for name, argv in commands(table, Path(tmp) / f"out_{n}").items():
                rows[(name, n)] = measure(argv)
                wall, cpu, mib = rows[(name, n)]
                print(f"{name:14s} {n:6d} models: {wall:6.1f} s wall, {cpu:6.1f} s CPU, peak "
                      f"{mib:6.0f} MiB (load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"\ngoal: <= {LIMIT_S:.0f} s and <= {LIMIT_MIB:.0f} MiB at {args.models} models")
        for name in commands(Path("t"), Path("o")):
            wall, _, mib = rows[(name, args.models)]
            b_wall, _, b_mib = rows[(name, args.baseline)]
            passed = wall <= LIMIT_S and mib <= LIMIT_MIB
            ok &= passed
            print(f"{name:14s} time {wall / LIMIT_S:5.2f} x limit, memory {mib / LIMIT_MIB:5.2f}"
                  f" x limit; vs {args.baseline} models: time x{wall / b_wall:.1f}, memory "
                  f"x{mib / b_mib:.2f} -> {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
