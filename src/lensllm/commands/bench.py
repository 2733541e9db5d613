"""``lensllm bench``: selection methods on loss tables, scored against published truth."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["register"]

EPILOG = """\
examples:
  lensllm bench                                  # every method, both bundled tables
  lensllm bench --table gigaword --methods ats,rectified_fit --ratios 8,64
  lensllm bench --json > bench.json               # one record per (dataset, ratio, method)
  lensllm bench --table my_runs.csv --out reports/mine   # your own table, with plots
  lensllm bench --methods ats --grid k=3,4,5 --grid delta=1,2,3,4,5 --out reports/ablation
  lensllm bench --methods ats,zero_shot --max-params 7e8,1.4e9,1.9e9,7e9 --json

studies:
  --grid NAME=V1,V2   sweep a constructor option of the methods (repeatable: the grid is
                      the product); values take the type of the option's default. Records
                      carry `options`; --out adds a heatmap per ratio (PNG).
  --max-params N1,N2  rerun with only the candidates of at most N parameters (removed from
                      the table first; metrics over the remaining ones, as published).
                      Records carry `max_params`.

metrics (fractions in --json, percent on the terminal):
  PearCorr  Pearson correlation between a method's per-model score (its predicted
            L(D*), or the loss it ranks by) and the true loss at D*.
  RelAcc    (L_worst - L_selected) / (L_worst - L_best) at D*: 1 = picked the best.
  rmse      root mean squared error of log L(D*) predictions (methods that predict).
  cost      sum over the runs a method paid for of parameters x examples, divided by
            fine-tuning every candidate on D* (parameters x D* summed over models).
"""


def methods_help() -> str:
    """The ``methods:`` section of ``--help``: every registered selector with its summary."""
    from lensllm.selection import REGISTRY

    width = max(len(name) for name in REGISTRY)
    lines = [f"  {name:{width}}  {cls.summary}" for name, cls in REGISTRY.items()]
    return "\nmethods (--methods; default: all):\n" + "\n".join(lines) + "\n"


def register(sub: argparse._SubParsersAction) -> None:
    from lensllm.bench.harness import DEFAULT_RATIOS

    p = sub.add_parser(
        "bench", help="run selection methods on loss tables and score them",
        description=(
            "Run selection methods on loss tables (rows = models, columns = fine-tuning "
            "data sizes). A method with budget ratio r sees only the columns up to D*/r "
            "(plus the zero-shot column 0) and predicts or ranks the models at D*, the "
            "largest column by default. Results are scored against the true losses at D*."),
        epilog=EPILOG + methods_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", nargs="+", action="extend", metavar="NAME_OR_PATH",
                   help="bundled table (flan, gigaword) or a CSV path in the same format; "
                        "repeatable (default: both bundled tables)")
    p.add_argument("--methods", metavar="M1,M2",
                   help="comma-separated methods (default: all registered; see below)")
    p.add_argument("--ratios", metavar="R1,R2",
                   default=",".join(str(r) for r in DEFAULT_RATIOS),
                   help="budget ratios D*/max_data_num (default: %(default)s)")
    p.add_argument("--target", type=float, metavar="N",
                   help="the size D* to predict at (a column; default: the largest)")
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                   help="sweep a constructor option of the methods (repeatable)")
    p.add_argument("--max-params", metavar="N1,N2",
                   help="size constraints: only candidates with at most N parameters")
    p.add_argument("--ntk", type=Path, metavar="PATH",
                   help="NTK features for the `lensllm` method, matched to table rows by "
                        "model id: a directory of `lensllm ntk` files, one such file, or a "
                        "JSON object of model -> spectrum (without it `lensllm` is n/a)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON array (one record per dataset, ratio, method) instead")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="also write PNG plots, bench.json and summary.md into DIR")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lensllm.api import bench
    from lensllm.bench import BUNDLED_TABLES
    from lensllm.commands._common import (
        as_option_error,
        parse_name_list,
        parse_number_list,
        positive_number,
        print_json,
        table_paths,
    )
    from lensllm.exceptions import CLIUsageError
    from lensllm.outputs import check_apart, check_output_dir
    from lensllm.selection import REGISTRY

    methods = (parse_name_list(args.methods, "--methods", list(REGISTRY))
               if args.methods else list(REGISTRY))
    ratios = parse_number_list(args.ratios, "--ratios")
    for r in ratios:
        if r < 1:
            raise CLIUsageError(f"--ratios: each ratio must be >= 1, got {r:g}")
    positive_number(args.target, "--target")
    if args.out is not None:
        check_output_dir(args.out, "--out")
        check_apart({"--out": args.out}, {**table_paths(args.table), "--ntk": args.ntk})
    study = bool(args.grid or args.max_params)
    if args.ntk is not None and study:
        raise CLIUsageError("--ntk does not combine with --grid/--max-params yet")
    if study:
        from lensllm.bench.sweep import parse_grid

        grid = parse_grid(args.grid or [])
        limits = (parse_number_list(args.max_params, "--max-params")
                  if args.max_params else None)
    start = time.perf_counter()
    with as_option_error({"`ntk`": "--ntk"}):
        result = bench(list(args.table or BUNDLED_TABLES), methods=methods, ratios=ratios,
                       target=args.target, ntk=args.ntk,
                       **({"grid": grid, "max_params": limits} if study else {}))
    elapsed = time.perf_counter() - start
    if args.json:
        print_json(result.to_dict())
    else:
        print(_tables_text(result, study))
        print(f"{len(result.records)} evaluations in {elapsed:.2f} s")
    if args.out is not None:
        _write_report(result, study, args.out)
    return 0


def _tables_text(result, study: bool) -> str:
    if study:
        from lensllm.report.study_report import format_study_tables

        return format_study_tables(result.evaluations)
    from lensllm.report.bench_report import format_bench_tables

    return format_bench_tables(result.evaluations)


def _write_report(result, study: bool, out: Path) -> None:
    """PNG plots, bench.json and summary.md into ``out``."""
    from lensllm.outputs import make_dir, write_text

    sys.stderr.write(f"writing plots to {out} ...\n")
    make_dir(out, "--out")
    write_text(out / "bench.json", result.to_json(), "bench.json")
    if study:
        from lensllm.report.study_report import write_study_report

        summary = write_study_report(result.evaluations, out)
    else:
        from lensllm.report.bench_report import write_bench_report

        summary = write_bench_report(result.evaluations, result.tables, out)
    sys.stderr.write(f"report: {summary}\n")
