"""``lensllm fit``: fit a scaling law to every model of a table within a budget."""

from __future__ import annotations

import argparse
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
and its 90% interval; "never" only when X is below the whole 90% interval of the fitted
floor E. A goal at or below E but inside its interval has no point estimate and an
interval whose upper end is unbounded (null in --json, with a note).
Intervals (90%): --interval calibrated (default) adds the law's own extrapolation error,
measured by back-testing every model of the table inside --max-data (an extrapolation
warp pooled over the models, docs/planning.md); `predicted` and `data_needed` then use
the median warp, `predicted_law` and `data_needed_law` are the law's own answers. When
the table allows too few back-tests, the bootstrap is used and a line says so.
--interval bootstrap: the residual bootstrap alone, the fit's noise (docs/laws.md). With
no more points than parameters there is nothing to resample and the interval is n/a.

Each record also gives `stderr`: the bootstrap standard error of every parameter. The
same numbers come from Python: lensllm.fit(table, law=..., max_data=...) (docs/api.md).

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


#: Argument names of :func:`lensllm.api.fit` as the options that set them.
_OPTIONS = {"`max_data`": "--max-data", "`target`": "--target", "`loss_goal`": "--loss-goal",
            "`law` 'lensllm'": "--law lensllm", "`ntk`": "--ntk", "`law`": "--law"}


def run(args: argparse.Namespace) -> int:
    from lensllm.api import fit
    from lensllm.commands._common import (
        as_option_error,
        positive_number,
        print_json,
    )

    positive_number(args.max_data, "--max-data")
    positive_number(args.target, "--target")
    positive_number(args.loss_goal, "--loss-goal")
    with as_option_error(_OPTIONS):
        result = fit(args.table, law=args.law, max_data=args.max_data, target=args.target,
                     interval=args.interval, loss_goal=args.loss_goal, ntk=args.ntk)
    if args.json:
        print_json(result.to_dict())
        return 0
    _print_table(args, result.records, list(result.params), result.target,
                 result.table.loss_unit)
    print(result.prediction.summary())
    return 0


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


def _data_needed_cells(rec: dict) -> list[str]:
    if rec["never"]:
        return ["never", "-"]
    if rec["data_needed"] is None:  # the goal is inside E's interval: no point estimate
        return ["-", f"[{rec['data_needed_lower']:.4g}, inf]"]
    upper = "inf" if rec["data_needed_upper"] is None else f"{rec['data_needed_upper']:.4g}"
    return [f"{rec['data_needed']:.4g}", f"[{rec['data_needed_lower']:.4g}, {upper}]"]
