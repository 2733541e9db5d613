"""``lensllm run``: fine-tune candidates x sizes x seeds into a store, resumably."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

__all__ = ["MAX_LEASE_S", "register"]

#: The longest lease (seconds): a day. An infinite lease would keep a run whose process
#: died held forever; one under a second would be renewed in a busy loop.
MAX_LEASE_S = 86400.0

EPILOG = """\
examples:
  lensllm run --config examples/tiny.toml                # tiny models, ~1 min on 2 CPUs
  lensllm run --config examples/tiny.toml --store runs.sqlite --threads 2
  lensllm run --config my.toml --ray auto                # one Ray task per run
  lensllm export --store runs.sqlite --out table.csv     # then: lensllm bench --table table.csv

Kill it at any time and run the same command again: finished runs are kept and not
repeated, the run that was interrupted starts over (Ctrl-C, SIGTERM or SIGHUP give it back
at once).
A run that fails (non-finite loss, an error inside the model, out of memory) is stored as
failed with its reason and cost; the others go on, and the command exits 1 with a summary.
Failed runs are not retried unless you pass --retry-failed. A local model whose files
changed (size or modification time) gets new runs. Several `lensllm run` processes (or
machines sharing the store file) may work on the same config and store at once.
Each run trains until its validation loss stops improving (the default recipe: a constant
learning rate, patience of one epoch or a quarter of the steps to the best validation if
longer, and at least 50 steps but not more than four epochs (`min_patience_steps`),
extended while the recent validation losses still fall (`patience_trend`), no floor on the
training length), keeps its best weights and prints
"best step b of s"; one still improving at its end is flagged NOT converged (raise
`finetune.epochs` or `max_steps`).
Config keys, the recipe, the FLOPs definition and Ray: docs/running.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="fine-tune candidate models on nested subsets into a store",
        description=(
            "Fine-tune every candidate model on nested, seeded subsets of a task dataset "
            "(the sizes and seeds of a TOML config), with early stopping on a validation "
            "split, and store each run's test loss, steps, tokens and FLOPs in one SQLite "
            "file. The whole config is checked before the store is touched."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, metavar="FILE.toml",
                   help="experiment config (see examples/tiny.toml and docs/running.md)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="SQLite store to write (default: the config's experiment.store, else "
                        "<config name>.sqlite in the current directory)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run one Ray task per run: 'auto' (the cluster this machine belongs "
                        "to), a cluster address, or 'local' (start a private local Ray)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads per run (and CPUs per Ray task); default: the "
                        "config's experiment.threads, else 1")
    p.add_argument("--lease", type=float, default=60.0, metavar="SECONDS",
                   help="a run whose process stopped renewing its lease for this long is "
                        "taken over by another process; 1 to 86400 (default: %(default)s)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs that failed before (default: leave them failed)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lensllm.exceptions import CLIUsageError

    if args.threads is not None and args.threads < 1:
        raise CLIUsageError(f"--threads must be >= 1, got {args.threads}")
    if not 1 <= args.lease <= MAX_LEASE_S:  # NaN fails too
        raise CLIUsageError(f"--lease must be a number of seconds in [1, {MAX_LEASE_S:g}], "
                            f"got {args.lease:g}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from lensllm.finetune.config import load_config
    from lensllm.finetune.experiment import (
        LocalExecutor,
        RayExecutor,
        prepare_experiment,
        run_experiment,
    )
    from lensllm.finetune.progress import make_progress
    from lensllm.store import open_store

    config = _experiment_config(args.config, load_config)
    threads = args.threads or config.threads or 1
    prepared = prepare_experiment(config, store_path=args.store)  # validates everything

    import torch

    torch.set_num_threads(threads)
    from lensllm.finetune.models import quiet_transformers

    quiet_transformers()  # lensllm's progress lines say what runs; no per-load bars
    if args.ray:
        executor = RayExecutor(prepared, address=args.ray, threads=threads)
    else:
        executor = LocalExecutor(prepared, threads=threads)
    store = open_store(prepared.store_path)
    try:
        summary = run_experiment(
            prepared, store, executor=executor, progress=make_progress(sys.stdout),
            lease_s=args.lease, heartbeat_s=min(5.0, args.lease / 4),
            retry_failed=args.retry_failed,
        )
        store.check_intact()
    finally:
        store.close()
    if _print_summary(summary, prepared.store_path):
        return 1
    store_arg = shlex.quote(str(prepared.store_path))
    table = shlex.quote(f"{args.config.stem}_table.csv")
    print("next:")
    print(f"  lensllm export --store {store_arg} --out {table}")
    print(f"  lensllm bench --table {table}")
    print(f"  lensllm fit --table {table} --law rectified --max-data {config.sizes[-1]}")
    return 0


def _experiment_config(path: Path, load_config):
    """The experiment of ``path``: a ``lensllm run`` config, or the ``[experiment]`` part of
    a ``lensllm select`` config (one with a ``[selection]`` table), so that the truth runs
    at ``D*`` need no second file."""
    from lensllm.finetune.config import read_toml

    if "selection" not in read_toml(path):
        return load_config(path)
    from lensllm.pipeline import load_select_config

    print(f"note: {path} is a select config; running its experiment (the [selection] and "
          "[ntk] tables are read by lensllm select)", file=sys.stderr)
    return load_select_config(path).experiment


def _print_summary(summary, store_path) -> bool:
    """Print what was done; True if some run is failed (now or before)."""
    for notice in summary.notices:
        print(f"notice: {notice}", file=sys.stderr)
    print(f"store: {store_path}")
    failed = summary.failed + summary.failed_before
    print(f"runs: {summary.total} planned, {summary.finished_before} finished before, "
          f"{summary.ran} run now, {len(summary.failed)} failed now"
          + (f", {len(summary.failed_before)} failed before (not retried)"
             if summary.failed_before else ""))
    for key, message in failed[:5]:
        print(f"  failed: {key.model} size={key.size} seed={key.seed}: {message}")
    if len(failed) > 5:
        print(f"  ... and {len(failed) - 5} more failed runs")
    if failed:
        print("the other runs are stored; rerun with --retry-failed to try the failed "
              "runs again")
    return bool(failed)
