"""Issue-6 scorecard: the `adaptive` selector against accept-then-stop on the bundled tables.

Prints, per table and budget ratio, adaptive's PearCorr, RelAcc, log-RMSE, cost fraction and
interval coverage next to AtS (published values and this run's reimplementation), then the
aggregate targets, then the leave-one-table-out choice of the interval growth exponent.

    python benchmarks/bench_adaptive.py
"""

from __future__ import annotations

import numpy as np

from lensllm.bench import load_published, load_table, run_bench

GROWTHS = (1.0, 1.25, 1.5, 1.75, 2.0)


def scorecard(tables) -> None:
    pub = load_published()
    ats = {(r.record.dataset, r.record.budget_ratio): r.record
           for r in run_bench(tables, ["ats"])}
    res = run_bench(tables, ["adaptive"])
    print(f"{'table':9} {'ratio':>5} {'PC':>6} {'AtS':>6} {'RA':>6} {'AtS':>6} {'rmse':>6} "
          f"{'AtS':>6} {'cost':>7} {'AtS':>7} {'cover':>5}  target(a)")
    pcs, ras = [], []
    for r in res:
        rec = r.record
        a = ats[(rec.dataset, rec.budget_ratio)]
        p_pc = pub[(rec.dataset, int(rec.budget_ratio), "ats", "pearcorr")]
        p_ra = pub[(rec.dataset, int(rec.budget_ratio), "ats", "relacc")]
        # Published values are rounded to 0.1 point: half of that is the tolerance.
        ok = (rec.pearcorr >= p_pc - 5e-4 and rec.relacc >= p_ra - 5e-4
              and rec.cost_fraction <= a.cost_fraction)
        pcs.append(rec.pearcorr)
        ras.append(rec.relacc)
        print(f"{rec.dataset:9} {rec.budget_ratio:5.0f} {rec.pearcorr:6.3f} {p_pc:6.3f} "
              f"{rec.relacc:6.3f} {p_ra:6.3f} {rec.rmse:6.3f} {a.rmse:6.3f} "
              f"{rec.cost_fraction:7.4f} {a.cost_fraction:7.4f} {rec.coverage:5.2f}  "
              f"{'met' if ok else 'not met'}")
    print(f"mean PearCorr {np.mean(pcs):.3f} (target 0.88), mean RelAcc {np.mean(ras):.3f} "
          f"(target 0.97)")


def leave_one_table_out(tables) -> None:
    """Growth = the smallest value whose minimum coverage on the *training* table is >= 0.8."""
    cover = {}
    for t in tables:
        for g in GROWTHS:
            res = run_bench([t], ["adaptive"], options={"adaptive": {"growth": g}})
            cover[(t.name, g)] = [r.record.coverage for r in res]
    for train in tables:
        ok = [g for g in GROWTHS if min(cover[(train.name, g)]) >= 0.8]
        g = ok[0] if ok else GROWTHS[-1]
        for test in tables:
            if test is train:
                continue
            c = cover[(test.name, g)]
            print(f"LOTO train={train.name:9} growth={g:<5} test={test.name:9} "
                  f"coverage mean {np.mean(c):.2f} min {np.min(c):.2f}")


if __name__ == "__main__":
    tabs = [load_table("flan"), load_table("gigaword")]
    scorecard(tabs)
    leave_one_table_out(tabs)
