"""Intervals that hold at ``D*`` and a calibrated P(best), on the published and zoo tables.

For every table, budget ratio and selector: the selector runs within the budget, its
predictive distribution is calibrated by :func:`lensllm.selection.predictive.calibrate`
(back-tests at the ratio asked, as far as the points allow), and the 90% intervals and
P(best) are scored against the true ``L(D*)``:

- ``cover``: the share of candidates whose 90% interval holds the true ``L(D*)``;
- ``expect``: how many of them the calibrated distribution itself expects to hold it, the
  central 90% range over its joint replicates taken as the truth
  (:func:`lensllm.selection.expected_coverage.expected_coverage`): the error shared by
  every candidate moves all the truths of a table together, so a calibrated distribution
  often gives a share of 1.00 on one table and 0.70 on the next; ``*`` marks a count
  outside that range;
- ``width``: the median ratio ``upper / lower`` of the intervals;
- ``brier``: the Brier score of P(best) against the true best, next to the uniform prior's
  (``1 - 1/C``) and the 0/1 pick's (0 when right, 2 when wrong);
- ``p_sel`` / ``p_true``: P(best) of the pick and of the true best;
- ``bt_cost``: the back-test's own cost as a fraction of fine-tuning every candidate on
  ``D*`` (runs the selection had not paid for).

Nothing here changes ``lensllm bench``: its records (and their ``coverage`` field, the
selector's own intervals) are untouched.

``--held-out`` checks that the calibration carries beyond the tables it was studied on:
the default selector on 40 random 9-candidate fields of each published table (seeded) at
D*/8 and D*/16, on the zoo's earlier tables (``benchmarks/results/zoo/zoo_table.csv``,
step-limited curves with SmolLM2 and Gemma among the candidates, and the curvature study's
``curvature_table.csv``), on the word-list task run after the calibration was settled
(``plateau/wordlist``) and on a new user's task (``results/newuser``, five ``tiny:``
models). Per group: mean coverage, median width, mean Brier against the
uniform prior and the pick, and the mean PearCorr and log-RMSE of the ``L(D*)`` ``select``
reports (the calibrated median) next to the selector's own.

    python benchmarks/bench_intervals.py                 # bundled flan, gigaword + zoo
    python benchmarks/bench_intervals.py --json out.json --plot docs/p_best_reliability.png
    python benchmarks/bench_intervals.py --held-out      # also the held-out fields
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from lensllm.bench import load_table
from lensllm.bench.budget import BudgetView
from lensllm.bench.metrics import log_rmse, pearson_corr
from lensllm.pipeline.config import default_method
from lensllm.selection import REGISTRY, NotApplicable, get_selector
from lensllm.selection.expected_coverage import coverage_counts, expected_coverage
from lensllm.selection.p_best import brier_score
from lensllm.selection.predictive import calibrate

HERE = Path(__file__).parent
#: The zoo tables of the plateau-recipe rerun (docs/zoo.md), one per task.
ZOO = tuple(HERE / f"results/zoo/plateau/{task}/zoo_table.csv"
            for task in ("docstrings", "comments"))
#: Earlier zoo tables, used only by ``--held-out`` (never studied for the calibration).
HELD_OUT = (HERE / "results/zoo/zoo_table.csv", HERE / "results/zoo/curvature_table.csv",
            HERE / "results/zoo/plateau/wordlist/zoo_table.csv",
            HERE / "results/newuser/doc2name_table.csv")
SELECTORS = ("adaptive", "rectified_fit", "vanilla_fit", "ats", "halving")
RATIOS = (8, 16, 32, 64)


def evaluate(table, method: str, ratio: float) -> dict | None:
    """One (table, selector, ratio): coverage, width, Brier, P(best) of pick and truth."""
    target = float(table.sizes[-1])
    budget = target / ratio
    if budget < table.sizes[0]:
        return None
    view = BudgetView(table, budget, target)

    def make_selector():  # as `lensllm select` builds it (the method's report options)
        return get_selector(method, **REGISTRY[method].report_options)

    try:
        sel = make_selector().select(view)
    except NotApplicable:
        return None
    extra = []

    def make_view(b: float, t: float) -> BudgetView:
        v = BudgetView(table, b, t)
        extra.append(v)
        return v

    pred = calibrate(sel, view, make_selector, make_view)
    truth = table.column(target)
    lo, hi = pred.interval(0.9)
    prob = pred.p_best()
    best = int(np.argmin(truth))
    paid = {(m, s) for m, s in zip(*np.nonzero(view.paid))}
    bt = 0.0
    for v in extra:
        for m, j in zip(*np.nonzero(v.paid)):
            col = int(np.searchsorted(view.sizes, v.sizes[j]))
            if (m, col) not in paid:
                paid.add((m, col))
                bt += table.n_params[m] * v.sizes[j]
    c = table.n_models
    default = default_method(view.sizes.size, table.n_models) == method
    covered = int(((lo <= truth) & (truth <= hi)).sum())
    expected = expected_coverage(pred)
    share = None if not pred.known else coverage_counts(pred.replicates) / c
    band = None if share is None else {  # the share a calibrated distribution gives
        "in_band": float(np.mean((share >= 0.8 - 1e-9) & (share <= 0.95 + 1e-9))),
        "all": float(np.mean(share == 1)), "below": float(np.mean(share < 0.8 - 1e-9)),
        "mean": float(share.mean())}
    return {"table": table.name, "method": method, "ratio": ratio, "known": pred.known,
            "default": default,
            "ratio_tested": pred.ratio_tested, "n_errors": pred.n_errors,
            "coverage": covered / c, "covered": covered,
            "coverage_expected": None if expected is None else expected.to_dict(),
            "as_expected": None if expected is None else expected.holds(covered),
            "share_if_calibrated": band,
            "width": float(np.median(hi / lo)) if pred.known else None,
            "brier": brier_score(prob, best), "brier_uniform": 1 - 1 / c,
            "brier_pick": brier_score(np.eye(c)[sel.selected], best),
            "p_selected": float(prob[sel.selected]), "p_true_best": float(prob[best]),
            "p_best": prob.tolist(), "true_best": best,
            "pearcorr": pearson_corr(pred.predicted, truth),
            "pearcorr_selector": pearson_corr(np.asarray(sel.predicted, float), truth),
            "log_rmse": log_rmse(pred.predicted, truth),
            "log_rmse_selector": log_rmse(np.asarray(sel.predicted, float), truth),
            "backtest_cost": bt / float(table.n_params.sum() * target)}


def reliability_plot(rows: list[dict], path: Path) -> None:
    """Reliability diagram of P(best): every candidate of every calibrated selection, its
    P(best) against whether it was the true best (binned, with binomial error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = [r for r in rows if r["known"]]
    p = np.concatenate([r["p_best"] for r in known])
    hit = np.concatenate([np.arange(len(r["p_best"])) == r["true_best"] for r in known])
    edges = np.array([0.0, 0.02, 0.1, 0.25, 0.45, 0.65, 0.85, 1.0])
    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if sel.any():
            f = hit[sel].mean()
            ax.errorbar(p[sel].mean(), f, yerr=np.sqrt(max(f * (1 - f), 1e-4) / sel.sum()),
                        fmt="o", color="C0")
            ax.annotate(str(int(sel.sum())), (p[sel].mean(), f), textcoords="offset points",
                        xytext=(4, 8 if f < 0.1 else -10), fontsize=8,
                        rotation=60 if f < 0.1 else 0)
    ax.set_xlabel("P(best) of a candidate")
    ax.set_ylabel("share that were the true best at D*")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"P(best) reliability: {len(known)} calibrated selections\n(tables, "
                 "5 selectors, D*/8 to D*/64; n per bin)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def field_of(table, rows: np.ndarray, name: str):
    """The table restricted to some candidates (a user's field drawn from it)."""
    return dataclasses.replace(
        table, name=name, models=tuple(table.models[i] for i in rows),
        losses=table.losses[rows], n_params=table.n_params[rows],
        zero_shot=None if table.zero_shot is None else table.zero_shot[rows],
        family=tuple(table.family[i] for i in rows))


def held_out(n_fields: int = 40, field_size: int = 9, seed: int = 0) -> None:
    """Print the default selector's calibration on fields it was not studied on (module
    docstring): random fields of the published tables, and the zoo's earlier tables."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[dict]] = {}
    for name in ("flan", "gigaword"):
        table = load_table(name)
        for ratio in (8, 16):
            rows = []
            for k in range(n_fields):
                pick = np.sort(rng.choice(table.n_models, field_size, replace=False))
                target = float(table.sizes[-1])
                field = field_of(table, pick, f"{name} field {k}")
                n_sizes = int((table.sizes <= target / ratio).sum())
                row = evaluate(field, default_method(n_sizes, field_size), ratio)
                if row is not None and row["known"]:
                    rows.append(row)
            groups[f"{name}: {n_fields} random {field_size}-candidate fields, D*/{ratio}"] = rows
    for path in HELD_OUT:
        if not path.exists():
            continue
        table = load_table(path)
        for ratio in (4, 8, 16):
            n_sizes = int((table.sizes <= table.sizes[-1] / ratio).sum())
            row = evaluate(table, default_method(n_sizes, table.n_models), ratio)
            if row is not None and row["known"]:
                groups[f"{path.relative_to(HERE)}, D*/{ratio}"] = [row]
    print(f"\nheld out (the default selector): coverage, median width, Brier (P(best) / "
          f"uniform / pick), PearCorr and log-RMSE of the reported L(D*) (selector's own)")
    for label, rows in groups.items():
        if not rows:
            continue

        def mean(key):
            return float(np.nanmean([np.nan if r[key] is None else r[key] for r in rows]))

        fine = [r["as_expected"] for r in rows if r["as_expected"] is not None]
        print(f"  {label:62} coverage {mean('coverage'):.2f} (as expected {sum(fine)}/"
              f"{len(fine)})  width "
              f"{np.median([r['width'] for r in rows]):.2f}  Brier {mean('brier'):.2f} / "
              f"{mean('brier_uniform'):.2f} / {mean('brier_pick'):.2f}  PearCorr "
              f"{mean('pearcorr'):.2f} ({mean('pearcorr_selector'):.2f})  log-RMSE "
              f"{mean('log_rmse'):.3f} ({mean('log_rmse_selector'):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(SELECTORS))
    ap.add_argument("--ratios", nargs="+", type=float, default=list(RATIOS))
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    ap.add_argument("--plot", type=Path, help="write the reliability diagram (PNG)")
    ap.add_argument("--held-out", action="store_true",
                    help="also the default selector on fields it was not studied on")
    args = ap.parse_args()
    tables = [load_table("flan"), load_table("gigaword")]
    tables += [dataclasses.replace(load_table(p), name=f"zoo {p.parent.name}")
               for p in ZOO if p.exists()]
    rows = []
    print(f"{'table':14} {'method':14} {'ratio':>5} {'tested':>6} {'M':>3} {'cover':>6} "
          f"{'expect':>12} {'width':>6} {'brier':>6} {'unif':>5} {'pick':>5} {'p_sel':>6} "
          f"{'p_true':>6} {'bt_cost':>7}")
    for table in tables:
        for ratio in args.ratios:
            for method in args.methods:
                row = evaluate(table, method, ratio)
                if row is None:
                    continue
                rows.append(row)
                width = "-" if row["width"] is None else f"{row['width']:6.3f}"
                tested = "-" if row["ratio_tested"] is None else f"{row['ratio_tested']:6.3g}"
                mark = "*" if row["default"] else " "
                exp = row["coverage_expected"]
                expect = "-" if exp is None else (
                    f"{row['covered']} in {exp['low']}-{exp['high']}"
                    + (" " if row["as_expected"] else "*"))
                print(f"{table.name[:14]:14} {method + mark:14} {ratio:5g} {tested:>6} "
                      f"{row['n_errors']:3d} {row['coverage']:6.2f} {expect:>12} {width:>6} "
                      f"{row['brier']:6.3f} {row['brier_uniform']:5.2f} "
                      f"{row['brier_pick']:5.2f} {row['p_selected']:6.3f} "
                      f"{row['p_true_best']:6.3f} {row['backtest_cost']:7.4f}")
    print("\n* after a method: the selector `lensllm select` uses by default on that table "
          "and budget; after `expect`: a count outside the range the distribution expects")
    defaults = [r for r in rows if r["default"] and r["ratio"] == 8]
    print("default selector at D*/8: " + ", ".join(
        f"{r['table']} {r['method']} coverage {r['coverage']:.2f} ({r['covered']} of "
        f"{round(r['covered'] / r['coverage']) if r['coverage'] else '?'}, expected "
        + ("-" if r["coverage_expected"] is None else
           f"{r['coverage_expected']['low']}-{r['coverage_expected']['high']}")
        + f") width {'-' if r['width'] is None else format(r['width'], '.2f')}"
        for r in defaults))
    print("the same distributions, each replicate taken as the truth (calibrated by "
          "construction): the share of a table's intervals that hold it")
    p_all_in = 1.0
    for r in defaults:
        b = r["share_if_calibrated"]
        if b is None:
            continue
        p_all_in *= b["in_band"]
        print(f"  {r['table']:16} mean {b['mean']:.2f}  P(0.80-0.95) {b['in_band']:.2f}  "
              f"P(all hold) {b['all']:.2f}  P(< 0.80) {b['below']:.2f}")
    print(f"  every table inside 0.80-0.95 at once: {p_all_in:.1e} of the outcomes")
    known = [r for r in rows if r["as_expected"] is not None]
    print(f"coverage count inside the range its distribution expects (90% of outcomes): "
          f"{sum(r['as_expected'] for r in known)} of {len(known)} (table, selector, ratio) "
          f"cases")
    print("\nmean Brier per selector (P(best) / uniform / 0-1 pick) and coverage at D*/8:")
    for method in args.methods:
        rs = [r for r in rows if r["method"] == method]
        if not rs:
            continue
        at8 = [r["coverage"] for r in rs if r["ratio"] == 8]
        print(f"  {method:14} {np.mean([r['brier'] for r in rs]):.3f} / "
              f"{np.mean([r['brier_uniform'] for r in rs]):.3f} / "
              f"{np.mean([r['brier_pick'] for r in rs]):.3f}   coverage at D*/8: "
              + ", ".join(f"{c:.2f}" for c in at8))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.plot:
        reliability_plot(rows, args.plot)
    if args.held_out:
        held_out()


if __name__ == "__main__":
    main()
