"""``lensllm select``: choose the model to fine-tune by running small fine-tuning runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["print_outcome", "register"]

EPILOG = """\
example config (examples/select_tiny.toml is a runnable one):
  [experiment]
  sizes = [50, 100, 200, 400, 800]    # subset sizes a selector may ask for
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
  method = "adaptive"                  # or lensllm, rectified_fit, subtuning, nlp_metrics...
  target = 100000                      # D*: the full data size to predict at
  max_data = 800                       # budget: the largest subset a run may use

examples:
  lensllm select --config examples/select_tiny.toml --report reports/select
  lensllm select --config my.toml --json > ranking.json
  lensllm select --config my.toml --ray auto          # runs of one request in parallel

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
    p.add_argument("--json", action="store_true",
                   help="print the ranking as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(handler=run)


def print_outcome(outcome, *, as_json: bool = False, stream=None) -> None:
    """Print the ranking, failures and compute spent."""
    from lensllm.selectrun.report import format_ranking, ranking_rows

    stream = stream or sys.stdout
    view = outcome.view
    if as_json:
        payload = {
            "method": outcome.config.selection.method, "target": outcome.config.target,
            "max_data": outcome.config.max_data, "selected": view.models[
                outcome.selection.selected],
            "ranking": ranking_rows(outcome),
            "failed": [{"model": m, "reason": r} for m, r in outcome.failed],
            "cost_flops": view.cost(), "full_cost_flops": view.full_cost(),
            "full_cost_source": view.full_cost_source,
            "full_cost_estimated_flops": view.estimated_full_cost(),
            "cost_fraction": outcome.cost_fraction, "ntk_flops": outcome.ntk_flops,
            "zero_shot_flops": outcome.zero_shot_flops, "runs_executed": outcome.ran,
            "wall_time_s": outcome.wall_time}
        json.dump(payload, stream, indent=1)
        stream.write("\n")
        return
    from lensllm.selectrun.report import _short

    print(format_ranking(outcome), file=stream)
    print(f"selected: {_short(view.models[outcome.selection.selected])}", file=stream)
    print(f"compute: {view.cost():.3g} FLOPs of fine-tuning = {100 * outcome.cost_fraction:.2f}% "
          f"of fine-tuning all {view.n_models} candidates on D*={outcome.config.target:g} "
          f"({view.full_cost():.3g} FLOPs, {_source_words(view)}); zero-shot {outcome.zero_shot_flops:.3g}, NTK "
          f"{outcome.ntk_flops:.3g} FLOPs; {outcome.ran} runs executed now, "
          f"{outcome.wall_time:.0f} s", file=stream)


def _source_words(view) -> str:
    if view.full_cost_source == "measured":
        return (f"measured on real D* runs; the recipe estimated "
                f"{view.estimated_full_cost():.3g}")
    return "estimated by the training recipe, no D* run in the store"


def _ray_factory(address: str | None, threads: int):
    """Builds one Ray executor per batch of runs (None: runs in this process)."""
    if not address:
        return None
    from lensllm.finetune.experiment import RayExecutor

    return lambda prepared: RayExecutor(prepared, address=address, threads=threads)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from lensllm.exceptions import CLIUsageError

    if args.threads is not None and args.threads < 1:
        raise CLIUsageError(f"--threads must be >= 1, got {args.threads}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from lensllm.selectrun import load_select_config, run_select
    from lensllm.selectrun.config import SelectionSettings

    config = load_select_config(args.config)
    if args.method:
        from lensllm.exceptions import ConfigError

        try:
            sel = dataclasses.replace(config.selection, method=args.method)
        except ConfigError as exc:
            raise CLIUsageError(f"--method: {exc}") from None
        config = dataclasses.replace(config, selection=sel)
    assert isinstance(config.selection, SelectionSettings)
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    outcome = run_select(config, store_path=args.store, threads=args.threads, log=log,
                         executor_factory=_ray_factory(args.ray, args.threads or
                                                       config.experiment.threads or 1))
    print_outcome(outcome, as_json=args.json)
    if args.report is not None:
        from lensllm.selectrun.report import write_select_report

        path = write_select_report(outcome, args.report)
        print(f"report: {path}", file=sys.stderr if args.json else sys.stdout)
    if outcome.failed:
        print(f"{len(outcome.failed)} candidate(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0
