"""``lensllm validate``: pay for real runs at a larger size and see how the predictions held."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["register"]

EPILOG = """\
examples:
  lensllm validate --config examples/select_tiny.toml --size 512
  lensllm validate --config my.toml --size 4096 --top 3 --json > validation.json

It runs `lensllm select` on the config (reusing every run in the store), then fine-tunes the
--top best-ranked candidates on --size examples (above the budget; every seed; runs already
in the store are reused) and reports, for each, the prediction at that size (the selection's
own at D*, else the selector refitted to predict there) next to the observed loss, whether
the interval covered it, and RelAcc, PearCorr and log-RMSE over the validated candidates.
At D* it also says how many covered intervals the calibrated distribution expects ("2 of 3
intervals held the truth, a calibrated distribution expects 2-3 of 3"): an error shared by
every candidate moves all the truths together, so all or none holding is common. Later
`lensllm select` reports on the same store show the same truth. Exit status 1 when a
candidate or a validation run failed, 2 for a bad config or option. Details: docs/select.md
("How far to trust a ranking").
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="fine-tune the top candidates at a larger size and check the "
                         "predictions",
        description=(
            "Check a selection against reality: fine-tune the best-ranked candidates of a "
            "`lensllm select` config on a data size above the budget (for example D*) and "
            "compare the observed losses with the predictions."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, metavar="FILE.toml",
                   help="the `lensllm select` config")
    p.add_argument("--size", required=True, type=int, metavar="N",
                   help="training examples of the validation runs (above selection.max_data)")
    p.add_argument("--method", metavar="NAME",
                   help="override selection.method, as `lensllm select --method` does")
    p.add_argument("--top", type=int, default=2, metavar="K",
                   help="how many best-ranked candidates to validate (default 2)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="SQLite store (default: the config's experiment.store)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default 1)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="also write the select report (with the truth) to DIR/index.html")
    p.add_argument("--json", action="store_true",
                   help="print the select record with a `validation` section as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run)


def _lines(rows: list[dict], size: int, metrics: dict | None) -> list[str]:
    from lensllm.outputs.numbers import interval_text, loss_text as f
    from lensllm.report._plots import short_name
    from lensllm.report.trust_report import metric_words

    out = [f"validation at D={size}:"]
    for r in rows:
        iv = interval_text(r["lower"], r["upper"])
        cov = {True: "covered", False: "NOT covered", None: "no interval"}[r["covered"]]
        late = (metrics is not None and r["model"] in metrics.get("unconverged", ())
                and r["observed"] is not None)
        out.append(f"  {short_name(r['model'])}: predicted {f(r['predicted'])} {iv}, "
                   f"observed {f(r['observed'])} ({cov})"
                   + ("; NOT converged: the run ended at the recipe's horizon still "
                      "improving, its loss is an upper bound" if late else ""))
    out.append("  " + metric_words(metrics))
    return out


def _with_method(config, method: str | None):
    """``config`` with ``selection.method`` replaced (``--method``), checked like select's."""
    if not method:
        return config
    import dataclasses

    from lensllm.exceptions import CLIUsageError, ConfigError

    try:
        sel = dataclasses.replace(config.selection, method=method)
    except ConfigError as exc:
        raise CLIUsageError(f"--method: {exc}") from None
    return dataclasses.replace(config, selection=sel)


def _check_pool(config, size: int) -> None:
    """Refuse a ``--size`` above the task's training examples before any run is paid."""
    from lensllm.exceptions import CLIUsageError
    from lensllm.finetune.data import load_data, split_indices

    data = config.experiment.data
    task = load_data(data)
    pool = len(split_indices(len(task), n_validation=data.validation_size,
                             n_test=data.test_size, seed=data.split_seed).train)
    if size > pool:
        raise CLIUsageError(f"--size {size} is more than the {pool} training examples of "
                            f"the task '{task.path}'; the largest possible validation is "
                            f"--size {pool}")


def run(args: argparse.Namespace) -> int:
    from lensllm.commands._common import check_report_apart, check_threads, print_json
    from lensllm.exceptions import CLIUsageError
    from lensllm.outputs import check_output_dir
    from lensllm.pipeline import load_select_config, run_select
    from lensllm.report.select_report import format_outcome, outcome_record
    from lensllm.report.trust_report import check_metrics, check_rows

    check_threads(args.threads, "--threads")
    if args.report is not None:  # checked again by the writer; here before any run
        check_output_dir(args.report, "--report")
    check_report_apart(args.report, args.config, args.store)
    if args.top < 1:
        raise CLIUsageError(f"--top must be >= 1, got {args.top}")
    config = _with_method(load_select_config(args.config), args.method)
    if args.size <= config.max_data:
        raise CLIUsageError(f"--size {args.size} must be above the budget "
                            f"(selection.max_data = {config.max_data:g})")
    _check_pool(config, args.size)  # before the selection, not after it
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    outcome = run_select(config, store_path=args.store, threads=args.threads, log=log,
                         validate=(args.size, args.top))
    rows = check_rows(outcome, args.size)
    check = outcome.trust.at(args.size)
    metrics = None if check is None else check_metrics(check)
    if args.json:
        record = outcome_record(outcome)
        record["validation"] = {"size": args.size, "top": args.top, "candidates": rows,
                                "metrics": metrics}
        print_json(record)
    else:
        print(format_outcome(outcome))
        print("\n".join(_lines(rows, args.size, metrics)))
    if args.report is not None:
        from lensllm.report.select_report import write_select_report

        path = write_select_report(outcome, args.report)
        print(f"report: {path}", file=sys.stderr if args.json else sys.stdout)
    return 1 if outcome.failed or outcome.trust.notes else 0
