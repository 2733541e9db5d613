"""``lensllm select``: choose the model to fine-tune by running small fine-tuning runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["print_outcome", "register"]

EPILOG = """\
example config (examples/select_tiny.toml is a runnable one):
  [experiment]
  sizes = [50, 100, 200, 400, 800]    # subset sizes a selector may ask for; give 5+
                                       # within max_data, or halving cannot prune
  seeds = [0]
  store = "select.sqlite"
  [data]
  path = "task.jsonl"                  # {"text": ...} or {"source": ..., "target": ...}
  [[candidates]]
  model = "./checkpoints/model-a"      # local path, cached hub id, gguf:NAME or tiny:ARCH
  [[candidates]]
  model = "./checkpoints/model-b"
  [finetune]
  learning_rate = 1e-3
  [selection]
  method = "halving"                   # or adaptive, lensllm, rectified_fit, subtuning...
                                       # (left out: halving with 4+ sizes within the
                                       # budget and 3+ candidates, else adaptive)
  target = 100000                      # D*: the full data size to predict at
  max_data = 800                       # budget: the largest subset a run may use
  max_params = 1.4e9                   # optional: skip larger candidates before any run

examples:
  lensllm select --config examples/select_tiny.toml --report reports/select
  lensllm select --config my.toml --json > ranking.json
  lensllm select --config my.toml --ray auto          # runs of one request in parallel
  lensllm select --config my.toml --mlflow mlruns     # also log to a local MLflow store

Every report checks itself: a back-test per candidate (the selector refitted without its
largest paid run predicts it), candidates tied with the leader (intervals overlap), and the
true losses with RelAcc, PearCorr and log-RMSE when the store has runs above the budget
(`lensllm validate` pays for some). It also says how many of the runs behind its points
converged (stopped on a plateau of its validation loss, not at its horizon still
improving), and warns naming any that did not, the runs above the budget behind the true
losses included. The cost fraction counts everything paid (runs with their evaluations,
zero-shot, NTK features, back-tests) over the training FLOPs of fine-tuning every
candidate on D*: measured when the store has the D* runs, else estimated (an upper
estimate, with its floor at the recipe's horizon).

Runs already in the store are reused (a second invocation runs nothing new). A candidate
that cannot be loaded or whose run fails is reported as failed with the reason; the others
are ranked, and the exit status is 1. Details: docs/select.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "select", help="rank candidate models by their predicted loss on the full data",
        description=(
            "Fine-tune the candidates of a TOML config on the small subsets a selection "
            "method asks for (runs are stored and never repeated), compute each candidate's "
            "NTK features, fit fine-tuning scaling laws, and print the ranking by predicted "
            "test loss at the full data size D*, with intervals and the compute spent as a "
            "fraction of fine-tuning every candidate on D*."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, metavar="FILE.toml",
                   help="experiment config with a [selection] table (see the example below)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="SQLite store (default: the config's experiment.store, else "
                        "<config name>.sqlite in the current directory)")
    p.add_argument("--method", metavar="NAME",
                   help="override selection.method (e.g. adaptive, lensllm, rectified_fit)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write an HTML report with PNG plots to DIR/index.html")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads (default: the config's experiment.threads, else 1)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="send the runs the selector asks for at once out in parallel, one Ray "
                        "task per run: 'auto', a cluster address, or 'local' (a private "
                        "local Ray); the store stays on this machine")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs that failed in an earlier call (default: their "
                        "candidates are reported failed again with the stored reason)")
    p.add_argument("--json", action="store_true",
                   help="print the ranking as JSON instead of a table")
    p.add_argument("--mlflow", metavar="DIR_OR_URI",
                   help="also log the selection (ranking, cost) and every paid run's loss "
                        "curve to MLflow: a local folder (a file store) or a tracking URI "
                        "(needs the mlflow extra: pip install 'lensllm[mlflow]')")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run)


def print_outcome(outcome, *, as_json: bool = False, stream=None) -> None:
    """Print the ranking, failures and compute spent (a table, or JSON)."""
    from lensllm.report.select_report import format_outcome, outcome_record

    stream = stream or sys.stdout
    if as_json:
        from lensllm.outputs import json_text

        stream.write(json_text(outcome_record(outcome)))
        return
    print(format_outcome(outcome), file=stream)


def _ray_factory(address: str | None, threads: int):
    """Builds one Ray executor per batch of runs (None: runs in this process)."""
    if not address:
        return None
    from lensllm.finetune.experiment import RayExecutor

    return lambda prepared: RayExecutor(prepared, address=address, threads=threads)


def _with_method(config, method: str | None):
    """``config`` with ``[selection] method`` replaced by ``method`` (when given)."""
    import dataclasses

    if not method:
        return config
    return dataclasses.replace(config,
                               selection=dataclasses.replace(config.selection, method=method))


def run(args: argparse.Namespace) -> int:
    from lensllm.api import select
    from lensllm.commands._common import as_option_error, check_report_apart, check_threads
    from lensllm.outputs import check_output_dir
    from lensllm.pipeline import load_select_config

    check_threads(args.threads, "--threads")
    if args.report is not None:  # checked again by the writer; here before any run
        check_output_dir(args.report, "--report")
    check_report_apart(args.report, args.config, args.store)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = load_select_config(args.config)
    with as_option_error({"`selection.method`": "--method"}):
        config = _with_method(config, args.method)
    if args.mlflow:
        from lensllm.report.mlflow_log import require_mlflow

        with as_option_error({"MLflow logging": "--mlflow"}):
            require_mlflow()
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    result = select(config, store=args.store, threads=args.threads, log=log,
                    executor_factory=_ray_factory(args.ray, args.threads or
                                                  config.experiment.threads or 1),
                    retry_failed=args.retry_failed, mlflow=args.mlflow or None)
    outcome = result.outcome
    print_outcome(outcome, as_json=args.json)
    if args.report is not None:
        from lensllm.report.select_report import write_select_report

        path = write_select_report(outcome, args.report)
        print(f"report: {path}", file=sys.stderr if args.json else sys.stdout)
    if result.mlflow_run_id is not None:
        print(f"mlflow: run {result.mlflow_run_id} in {args.mlflow}",
              file=sys.stderr if args.json else sys.stdout)
    if outcome.failed:
        print(f"{len(outcome.failed)} candidate(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0
