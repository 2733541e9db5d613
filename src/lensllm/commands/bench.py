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
    from lensllm.bench import BUNDLED_TABLES, check_same_unit, load_table, run_bench
    from lensllm.commands._common import (
        parse_name_list,
        parse_number_list,
        positive_number,
        print_json,
    )
    from lensllm.exceptions import CLIUsageError
    from lensllm.outputs import check_output_dir
    from lensllm.report.bench_report import format_bench_tables
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
    tables = [load_table(t) for t in (args.table or BUNDLED_TABLES)]
    check_same_unit(tables)
    study = bool(args.grid or args.max_params)
    start = time.perf_counter()
    ntk = None
    if args.ntk is not None:
        if study:
            raise CLIUsageError("--ntk does not combine with --grid/--max-params yet")
        from lensllm.ntk.files import match_spectra

        ntk = {t.name: match_spectra(args.ntk, list(t.models)) for t in tables}
    if study:
        from lensllm.bench.sweep import parse_grid, run_study
        from lensllm.report.study_report import format_study_tables as format_bench_tables

        limits = (parse_number_list(args.max_params, "--max-params")
                  if args.max_params else None)
        results = run_study(tables, methods, ratios, args.target, max_params=limits,
                            grid=parse_grid(args.grid or []))
    else:
        results = run_bench(tables, methods, ratios, args.target, ntk=ntk)
    elapsed = time.perf_counter() - start
    records = [r.record.to_json() for r in results]
    if args.json:
        print_json(records)
    else:
        print(format_bench_tables(results))
        print(f"{len(records)} evaluations in {elapsed:.2f} s")
    if args.out is not None:
        from lensllm.outputs import json_text, make_dir, write_text
        from lensllm.report.bench_report import write_bench_report

        sys.stderr.write(f"writing plots to {args.out} ...\n")
        make_dir(args.out, "--out")
        write_text(args.out / "bench.json", json_text(records), "bench.json")
        if study:
            from lensllm.report.study_report import write_study_report

            summary = write_study_report(results, args.out)
        else:
            summary = write_bench_report(results, tables, args.out)
        sys.stderr.write(f"report: {summary}\n")
    return 0
