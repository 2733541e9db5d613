"""``lensllm fit``: fit a scaling law to every model of a table within a budget."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = ["register"]

EPILOG = """\
examples:
  lensllm fit --table gigaword --law rectified --max-data 25600
  lensllm fit --table my_runs.csv --law power --max-data 3200 --target 100000 --json
  lensllm fit --table flan --law rectified --max-data 204800 --loss-goal 1.6
  lensllm fit --table zoo_table.csv --law lensllm --ntk features/ --max-data 800

The rectified and lensllm laws use the zero-shot column (D = 0) as a point; the power law
cannot (it is infinite at D = 0). The lensllm law needs NTK features of every table row
(`lensllm ntk --out features/NAME.json`), matched by model id. Fits minimise the squared
error of log L.
--loss-goal X adds, per model, the data size (examples) at which the law reaches loss X
and its 90% interval; "never" when X is at or below the fitted floor E.
Intervals (90%): --interval calibrated (default) adds the law's own extrapolation error,
measured by back-testing every model of the table inside --max-data (an extrapolation
warp pooled over the models, docs/planning.md); `predicted` and `data_needed` then use
the median warp, `predicted_law` and `data_needed_law` are the law's own answers. When
the table allows too few back-tests, the bootstrap is used and a line says so.
--interval bootstrap: the residual bootstrap alone, the fit's noise (docs/laws.md). With
no more points than parameters there is nothing to resample and the interval is n/a.

`usable` is "no", with the reason, when the fit did not converge, the measured losses
increase with D, the log RMSE is above 0.1 (about 10% of the loss), or a parameter ended
at the bound of its range. In --json: `usable`, `why`, and `interval_note`; a non-finite
number is written as null and named under `nonfinite` (the JSON policy of every command).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="fit a scaling law per model and predict L(target) with an interval",
        description="Fit a fine-tuning scaling law to each model's losses up to --max-data "
                    "and predict its loss at --target with a 90% interval.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", required=True, metavar="NAME_OR_PATH",
                   help="bundled table (flan, gigaword) or a CSV path")
    p.add_argument("--law", required=True, choices=["power", "rectified", "lensllm"],
                   help="power: A*D^-alpha+E; rectified: B/(D_l+D^beta)+E; lensllm: "
                        "B/(F(Theta,t)+D^beta)+E with F from --ntk features, t fitted")
    p.add_argument("--ntk", type=Path, metavar="PATH",
                   help="NTK features for --law lensllm, matched to table rows by model id: "
                        "a directory of `lensllm ntk` files, one such file, or a JSON object "
                        "of model -> spectrum")
    p.add_argument("--max-data", required=True, type=float, metavar="N",
                   help="use the size columns <= N")
    p.add_argument("--target", type=float, metavar="N",
                   help="size to predict at (default: the table's largest size)")
    p.add_argument("--loss-goal", type=float, metavar="X",
                   help="also report the data size at which each model reaches loss X")
    p.add_argument("--interval", choices=["calibrated", "bootstrap"], default="calibrated",
                   help="calibrated (default): with the law's extrapolation error measured "
                        "on the table; bootstrap: the fit's noise alone")
    p.add_argument("--json", action="store_true", help="print JSON records instead of text")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lensllm.bench import load_table
    from lensllm.commands._common import positive_number, print_json
    from lensllm.exceptions import CLIUsageError, FitError
    from lensllm.laws import get_law

    positive_number(args.max_data, "--max-data")
    positive_number(args.target, "--target")
    positive_number(args.loss_goal, "--loss-goal")
    table = load_table(args.table)
    target = float(args.target if args.target is not None else table.sizes[-1])
    keep = table.sizes <= args.max_data
    sizes, losses = table.sizes[keep], table.losses[:, keep]
    if (args.ntk is None) == (args.law == "lensllm"):
        raise CLIUsageError("--law lensllm needs --ntk PATH (its F(Theta, t) comes from NTK "
                            "features); --ntk goes only with --law lensllm")
    aux = {}
    if args.law == "lensllm":
        from lensllm.commands._features import match_spectra

        aux["spectra"] = match_spectra(args.ntk, list(table.models))
    if args.law in ("rectified", "lensllm") and table.zero_shot is not None:
        sizes = np.concatenate([[0.0], sizes])
        losses = np.column_stack([table.zero_shot, losses])
    law = get_law("lens" if args.law == "lensllm" else args.law)
    if sizes.size < law.n_params:
        raise CLIUsageError(
            f"--max-data {args.max_data:g} leaves {sizes.size} points per model "
            f"({', '.join(f'{s:g}' for s in sizes)}) but the {args.law} law has "
            f"{law.n_params} free parameters")
    try:
        batch = law.fit_many(sizes, losses, names=list(table.models), **aux)
    except FitError as exc:
        raise CLIUsageError(f"--max-data {args.max_data:g}: {exc}") from None
    cal, pred, lo, hi = _loss_at_target(batch, target, args.interval)
    records = _records(args, table, batch, target, (cal, pred, lo, hi))
    if args.loss_goal is not None:
        _add_data_needed(records, batch, args.loss_goal, cal)
    if args.json:
        print_json(records)
        return 0
    _print_table(args, records, list(batch.params), target, table.loss_unit)
    print(_interval_line(cal, args.interval))
    return 0


def _records(args: argparse.Namespace, table, batch, target: float, at_target) -> list[dict]:
    """One JSON-ready record per model: parameters, prediction, interval, usability."""
    import numpy as np

    from lensllm.laws.usability import assess_fits, interval_note

    cal, pred, lo, hi = at_target
    pred_law = batch.predict([target])[:, 0]
    notes = interval_note(batch)
    usability = assess_fits(batch)
    truth = table.column(target) if target in table.sizes else None
    # Each property computes over every curve: read them once, not once per record (on
    # 10,000 models the per-record reads took 8 s).
    params, rmse, success = batch.params, batch.rmse, batch.success
    records = []
    for i, model in enumerate(table.models):
        known = not notes[i]
        records.append({
            "model": model, "law": args.law, "max_data_num": args.max_data,
            "target": target, **{k: float(v[i]) for k, v in params.items()},
            "interval": "bootstrap" if cal is None else "calibrated",
            "predicted": float(pred[i]), "predicted_law": float(pred_law[i]),
            "lower": float(lo[i, 0]) if known else None,
            "upper": float(hi[i, 0]) if known and np.isfinite(hi[i, 0]) else None,
            "interval_note": notes[i] or None,
            "rmse": float(rmse[i]), "success": bool(success[i]),
            "usable": bool(usability.usable[i]), "why": usability.reasons[i] or None,
            "true": None if truth is None else float(truth[i]),
            "loss_unit": table.loss_unit})
    return records


def _print_table(args, records: list[dict], names: list[str], target: float,
                 loss_unit: str) -> None:
    unit = loss_unit.replace("nats_per_", "nats/")
    head = ["model"] + names + [f"L({target:g}) {unit}", "90% interval", "true", "rmse",
                                "usable"]
    rows = []
    for r in records:
        upper = "inf" if r["upper"] is None else f"{r['upper']:.4f}"
        interval = "n/a" if r["lower"] is None else f"[{r['lower']:.4f}, {upper}]"
        rows.append([r["model"]] + [f"{r[n]:.4g}" for n in names] + [
            f"{r['predicted']:.4f}", interval,
            "-" if r["true"] is None else f"{r['true']:.4f}", f"{r['rmse']:.2e}",
            "yes" if r["usable"] else f"NO: {r['why']}"])
    if args.loss_goal is not None:
        head += [f"D to reach {args.loss_goal:g}", "90% interval"]
        for row, r in zip(rows, records):
            row += _data_needed_cells(r)
    widths = [max(len(x[c]) for x in [head] + rows) for c in range(len(head))]
    for row in [head] + rows:
        print("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip())
    for r in records:
        if r.get("note"):
            print(f"{r['model']}: {r['note']}")
    for note in sorted({r["interval_note"] for r in records if r["interval_note"]}):
        print(f"note: {note}")


def _loss_at_target(batch, target: float, kind: str):
    """``(calibration or None, predicted, lower, upper)`` of the loss at ``target``."""
    import numpy as np

    from lensllm.laws.calibration import (
        calibrated_interval,
        calibrated_predict,
        measure_calibration,
    )

    top = float(np.max(batch.d))
    distance = float(np.log(target / top)) if target > top else np.inf
    cal = measure_calibration(batch, distance) if kind == "calibrated" else None
    if cal is None:
        lo, hi = batch.interval([target], 0.9)
        return None, batch.predict([target])[:, 0], lo, hi
    lo, hi = calibrated_interval(batch, [target], cal, 0.9)
    return cal, calibrated_predict(batch, [target], cal)[:, 0], lo, hi


def _interval_line(cal, kind: str) -> str:
    if cal is not None:
        return f"intervals: calibrated; {cal.summary()}"
    if kind == "calibrated":
        return ("intervals: bootstrap alone (the fit's noise, not the law's error): too few "
                "points per model for the back-tests of a calibration")
    return "intervals: bootstrap alone (the fit's noise, not the law's error)"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _add_data_needed(records: list[dict], batch, goal: float, cal) -> None:
    """Per record: the data needed to reach ``goal``, its interval, the floor, a note."""
    from lensllm.laws.inverse import plan_data

    plan = plan_data(batch, goal, 0.9, calibration=cal)
    for i, rec in enumerate(records):
        rec.update({
            "loss_goal": goal, "data_needed": _finite(plan.data_needed[i]),
            "data_needed_law": _finite(plan.law_data_needed[i]),
            "data_needed_lower": _finite(plan.lower[i]) if plan.reached[i] else None,
            "data_needed_upper": _finite(plan.upper[i]) if plan.reached[i] else None,
            "floor_lower": float(plan.floor_lower[i]),
            "floor_upper": float(plan.floor_upper[i]),
            "note": plan.note(i, batch.law.name)})


def _data_needed_cells(rec: dict) -> list[str]:
    if rec["data_needed"] is None:
        return ["never", "-"]
    upper = "inf" if rec["data_needed_upper"] is None else f"{rec['data_needed_upper']:.4g}"
    return [f"{rec['data_needed']:.4g}", f"[{rec['data_needed_lower']:.4g}, {upper}]"]
