"""Speed of the rectified-law fits behind `lensllm bench` (issue 2), against scipy.

Measures, on one bundled table (default gigaword; 30 models x 7 budget ratios = 210 curves,
column 0 as D = 0 plus every size column up to D*/ratio, exactly what `rectified_fit` fits):

1. lensllm's engine: ``RectifiedLaw().fit_many`` once per budget ratio (as the bench calls
   it), all 7 ratios; median and best of ``--repeats`` runs, and the first (cold) run.
   Goal: <= 1 s.
2. The multi-start ``scipy.optimize.minimize`` (L-BFGS-B, analytic gradient) baseline of
   ``tests/laws_tests/scipy_reference.py`` (the reference the parity test checks against) on the same curves, in the same coordinates and bounds,
   with its benchmark grid of 32 starts per curve; measured once in the same process.
   Goal: the engine is >= 50x faster, and its log-space residual is no worse on every curve
   (relative 1e-6).
3. ``lensllm bench --json --table gigaword --methods rectified_fit`` as a subprocess, start-up
   included. Goal: < 2 s.

Both optimisers run single-threaded (``OMP_NUM_THREADS=1`` is set before numpy is imported,
as in the tests): with OpenBLAS threads on a busy 2-core machine, scipy's L-BFGS-B ran ~40x
slower, which would flatter the ratio.

Usage: ``python benchmarks/bench_fit_speed.py [--table flan] [--repeats 5]``. Exits 1 if a
goal is missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "laws_tests"))
import scipy_reference as baseline

from lensllm.bench import load_table
from lensllm.laws import RectifiedLaw

ENGINE_GOAL_S = 1.0
RATIO_GOAL = 50.0
CLI_GOAL_S = 2.0
RTOL = 1e-6


def time_engine(curves) -> tuple[float, list]:
    start = time.perf_counter()
    fits = [RectifiedLaw().fit_many(sizes, losses) for _, sizes, losses in curves]
    return time.perf_counter() - start, fits


def time_scipy(curves) -> tuple[float, list[np.ndarray], int]:
    start = time.perf_counter()
    sse, n_starts = [], 0
    for _, sizes, losses in curves:
        row = []
        for loss in losses:
            _, f, n_starts = baseline.fit_curve(sizes, loss, baseline.STARTS_BENCH)
            row.append(f)
        sse.append(np.array(row))
    return time.perf_counter() - start, sse, n_starts


def time_cli(repeats: int) -> list[float]:
    exe = Path(sys.executable).with_name("lensllm")
    cmd = ([str(exe)] if exe.exists() else [sys.executable, "-m", "lensllm.cli"]) + [
        "bench", "--json", "--table", "gigaword", "--methods", "rectified_fit"]
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"`{' '.join(cmd)}` failed: {proc.stderr}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="gigaword")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    table = load_table(args.table)
    curves = baseline.budget_curves(table)
    n_curves = sum(losses.shape[0] for _, _, losses in curves)
    print(f"table {table.name}: {table.n_models} models x {len(curves)} budget ratios "
          f"= {n_curves} rectified fits (points per curve: "
          f"{', '.join(str(s.size) for _, s, _ in curves)})")

    engine_times = []
    for _ in range(args.repeats):
        elapsed, fits = time_engine(curves)
        engine_times.append(elapsed)
    engine = statistics.median(engine_times)
    print(f"lensllm engine : median {engine:.3f} s, best {min(engine_times):.3f} s, "
          f"first {engine_times[0]:.3f} s over {args.repeats} runs")

    scipy_time, scipy_sse, n_starts = time_scipy(curves)
    print(f"scipy L-BFGS-B : {scipy_time:.2f} s ({n_starts} starts per curve, "
          f"{n_curves * n_starts} local fits)")
    ratio = scipy_time / engine
    print(f"speed-up       : {ratio:.0f}x (scipy time / engine median)")

    rel = np.concatenate([(fit.sse - ref) / ref for fit, ref in zip(fits, scipy_sse)])
    n_worse = int((rel > RTOL).sum())
    n_better = int((rel < -RTOL).sum())
    print(f"objective      : engine no worse than scipy on {n_curves - n_worse}/{n_curves} "
          f"curves (worst relative excess {rel.max():.2e}); strictly better on {n_better}")

    cli = time_cli(3)
    print(f"CLI            : `lensllm bench --json --table gigaword --methods rectified_fit` "
          f"{', '.join(f'{t:.2f}' for t in cli)} s (start-up included)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import lensllm.cli, lensllm.bench"], check=True)
    print(f"  of which start-up (import lensllm.cli, lensllm.bench): "
          f"{time.perf_counter() - start:.2f} s")

    goals = [
        (f"engine <= {ENGINE_GOAL_S:g} s", engine <= ENGINE_GOAL_S),
        (f"engine >= {RATIO_GOAL:g}x faster than scipy", ratio >= RATIO_GOAL),
        ("engine residual no worse than scipy on every curve", n_worse == 0),
        (f"CLI < {CLI_GOAL_S:g} s", max(cli) < CLI_GOAL_S),
    ]
    for name, ok in goals:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
