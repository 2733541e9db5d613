"""Back-test of data planning on the bundled tables (issue 17; numbers in docs/planning.md).

1. Data needed. For each table, law and budget ratio, fit every model on the columns up to
   ``D* / ratio`` (plus column 0 for the rectified law), ask for the data needed to reach the
   loss the model actually reached at ``D* = 1,638,400`` (read from the table), and count
   how often ``D*`` lies inside the 90% interval: calibrated (:mod:`lensllm.laws.calibration`,
   back-tests up to the question's distance ``log ratio``; and every back-test, for the
   choice between the two) and the bootstrap alone. The loss interval at ``D*`` covering the
   true loss is the same event read the other way (the data interval is the loss interval
   read sideways), so its coverage is printed beside it as a check.
2. Crossings. For each pair of the 5 models with the lowest true loss at ``D*``, the sizes
   in ``(D*/ratio, D*]`` where the table shows their order change (between two measured
   columns, located by interpolation in log D), against the crossings the calibrated fits
   predict in the same range, with their 90% interval.

Usage: ``python benchmarks/planning_backtest.py [--ratios 8,16,32,64] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from lensllm.bench import load_table
from lensllm.laws import get_law
from lensllm.laws.crossings import crossing_intervals, find_crossings, size_text
from lensllm.laws.calibration import (
    calibrated_curve_replicates,
    calibrated_interval,
    calibrated_predict,
    measure_calibration,
)
from lensllm.laws.inverse import plan_data

LEVEL = 0.9


def fit_table(table, law_name: str, max_data: float):
    """The law fitted to every model on the columns up to ``max_data`` (and column 0)."""
    from lensllm.laws.service import fit_points

    keep = table.sizes <= max_data
    return fit_points(get_law(law_name), table.sizes[keep], table.losses[:, keep],
                      table.zero_shot, names=table.models)


def _coverage(plan, lo, hi, truth, target) -> dict:
    """Coverage of ``D*`` by a data interval and of ``L(D*)`` by the matching loss one."""
    inside = (plan.lower <= target) & (target <= plan.upper)
    loss_inside = (lo[:, 0] <= truth) & (truth <= hi[:, 0])
    reached = plan.reached
    err = np.abs(np.log(plan.data_needed[reached] / target))
    with np.errstate(divide="ignore", invalid="ignore"):
        width = plan.upper[reached] / plan.lower[reached]
    return {"median_width": float(np.median(width)) if width.size else None,
            "coverage": float(inside.mean()), "loss_coverage": float(loss_inside.mean()),
            "never": int(plan.never.sum()), "unbounded_upper": int(np.isinf(plan.upper).sum()),
            "below": int((plan.upper < target).sum()), "above": int((plan.lower > target).sum()),
            "median_abs_log_error": float(np.median(err)) if err.size else None}


def coverage_row(table, law_name: str, ratio: int) -> dict:
    """Both intervals (bootstrap alone, calibrated) of one table, law and ratio."""
    target = float(table.sizes[-1])
    batch = fit_table(table, law_name, target / ratio)
    truth = table.losses[:, -1]
    row = {"table": table.name, "law": law_name, "ratio": ratio,
           "max_data_num": target / ratio, "n_models": int(len(truth))}
    lo, hi = batch.interval([target], LEVEL)
    row["bootstrap"] = _coverage(plan_data(batch, truth, LEVEL), lo, hi, truth, target)
    cal = measure_calibration(batch, float(np.log(ratio)))
    row["backtests"] = 0 if cal is None else int(cal.kappa.size)
    all_cal = measure_calibration(batch)  # every back-test, however far (for the docs)
    if all_cal is not None:
        lo, hi = calibrated_interval(batch, [target], all_cal, LEVEL)
        plan = plan_data(batch, truth, LEVEL, calibration=all_cal)
        row["calibrated_all_distances"] = _coverage(plan, lo, hi, truth, target)
    if cal is not None:
        lo, hi = calibrated_interval(batch, [target], cal, LEVEL)
        plan = plan_data(batch, truth, LEVEL, calibration=cal)
        row["calibrated"] = _coverage(plan, lo, hi, truth, target)
        row["kappa_median"] = cal.median
    return row


def crossing_rows(table, law_name: str, ratio: int) -> list[dict]:
    """Table crossings vs predicted ones, per pair of the 5 best models at ``D*``."""
    target = float(table.sizes[-1])
    lo_size = target / ratio
    top = [int(i) for i in np.argsort(table.losses[:, -1])[:5]]
    batch = fit_table(table, law_name, lo_size)
    grid = np.geomspace(lo_size, target, 240)
    cal = measure_calibration(batch, float(np.log(ratio)))
    curves = calibrated_predict(batch, grid, cal)
    predicted = crossing_intervals(grid, curves, calibrated_curve_replicates(batch, grid, cal),
                                   top, LEVEL)
    cols = table.sizes >= lo_size
    shown = find_crossings(table.sizes[cols], table.losses[:, cols], top)
    rows = []
    for i, a in enumerate(top):
        for b in top[i + 1:]:
            def of_pair(cs):
                return [c for c in cs if {c.before, c.after} == {a, b}]
            rows.append({
                "table": table.name, "law": law_name, "ratio": ratio,
                "max_data_num": lo_size, "target": target,
                "pair": [table.models[a], table.models[b]],
                "table_crossings": [c.size for c in of_pair(shown)],
                "predicted": [{"size": c.size, "lower": c.lower, "upper": c.upper}
                              for c in of_pair(predicted)],
                "order_at_target_right": bool(
                    (curves[a, -1] < curves[b, -1])
                    == (table.losses[a, -1] < table.losses[b, -1]))})
    return rows


def _short(model: str) -> str:
    return model.split("/")[-1]


def _cells(c: dict | None) -> str:
    if c is None:
        return "- | - | - | - | - | -"
    err = "-" if c["median_abs_log_error"] is None else f"{c['median_abs_log_error']:.3f}"
    width = "-" if c["median_width"] is None else f"{c['median_width']:.3g}"
    return (f"{100 * c['coverage']:.0f}% | {100 * c['loss_coverage']:.0f}% "
            f"| {c['above']} / {c['below']} | {c['never']} | {err} | {width} "
            f"({c['unbounded_upper']})")


def print_markdown(cov: list[dict], cross: list[dict]) -> None:
    cols = ("D* in 90% data interval | L(D*) in 90% loss interval | D* below / above "
            "| never | median abs log error | median upper/lower (unbounded)")
    print(f"| table | law | ratio | fitted up to | back-tests | median kappa | calibrated: {cols} "
          f"| bootstrap alone: {cols} |")
    print("|---" * 16 + "|")
    for r in cov:
        kappa = f"{r['kappa_median']:+.2f}" if "kappa_median" in r else "-"
        print(f"| {r['table']} | {r['law']} | {r['ratio']} | {r['max_data_num']:.0f} "
              f"| {r['backtests']} | {kappa} | {_cells(r.get('calibrated'))} "
              f"| {_cells(r['bootstrap'])} |")
    print()
    print("| table | law | ratio | back-tests up to the question's distance: coverage, median "
          "upper/lower | every back-test: coverage, median upper/lower |")
    print("|---|---|---|---|---|")
    for r in cov:
        a, b = r.get("calibrated"), r.get("calibrated_all_distances")
        print(f"| {r['table']} | {r['law']} | {r['ratio']} "
              + "".join("| - " if c is None else
                        f"| {100 * c['coverage']:.0f}%, {c['median_width']:.3g} "
                        for c in (a, b)) + "|")
    print()
    print("| table | law | ratio | pair | table shows order change at | fits predict "
          "(90% interval) | order at D* right |")
    print("|---|---|---|---|---|---|---|")
    for r in cross:
        shown = ", ".join(size_text(s) for s in r["table_crossings"]) or "none"
        lo_edge, hi_edge = r["max_data_num"], r["target"]
        pred = ", ".join(
            f"{size_text(p['size'])} ("
            f"{size_text(p['lower']) if p['lower'] >= lo_edge else '<' + size_text(lo_edge)} to "
            f"{size_text(p['upper']) if p['upper'] <= hi_edge else '>' + size_text(hi_edge)})"
            for p in r["predicted"]) or "none"
        print(f"| {r['table']} | {r['law']} | {r['ratio']} | {_short(r['pair'][0])} vs "
              f"{_short(r['pair'][1])} | {shown} | {pred} | "
              f"{'yes' if r['order_at_target_right'] else 'no'} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", default="8,16,32,64", help="budget ratios D*/max_data")
    parser.add_argument("--laws", default="rectified,power")
    parser.add_argument("--crossing-ratio", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ratios = [int(x) for x in args.ratios.split(",")]
    laws = args.laws.split(",")
    cov, cross = [], []
    for name in ("flan", "gigaword"):
        table = load_table(name)
        for law in laws:
            cov += [coverage_row(table, law, r) for r in ratios]
        for law in laws:
            cross += crossing_rows(table, law, args.crossing_ratio)
    if args.json:
        json.dump({"coverage": cov, "crossings": cross}, sys.stdout, indent=1,
                  default=lambda x: None)
        print()
    else:
        print_markdown(cov, cross)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
