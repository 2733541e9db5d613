"""``lensllm export``: a store's finished runs as a loss table (CSV)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

EPILOG = """\
examples:
  lensllm export --store tiny.sqlite --out table.csv
  lensllm export --store runs.sqlite --dataset my_task --out table.csv --partial
  lensllm export --store runs.sqlite --unit byte --out table_per_byte.csv
  lensllm bench --table table.csv                # then rank the candidates

The table has one row per model: column 0 is the zero-shot test loss, each size column the
mean test loss over seeds, `size` the model's parameter count, `family` its family. It is a
plain CSV (pandas.read_csv(path, index_col=0) reads it); the header's first cell,
`config name [nats_per_token]` or `config name [nats_per_byte]`, says the unit.
Per byte, a loss is divided by the UTF-8 bytes of the scored test text instead of its
tokens, so candidates with different tokenizers are compared on the same bytes. `bench`
refuses tables of different units in one call; `fit` shows the unit it fitted.
The store is opened read-only and never changed (a read-only file, folder or filesystem can
be exported), and --out may not be the store or one of its -wal/-shm/-journal files. A model
with a failed run is left out and each missing cell is listed on stderr with the reason.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a store's finished runs as a loss table (CSV)",
        description=(
            "Write the finished runs of one experiment in a store as a loss table (rows = "
            "models, columns = subset sizes) that `lensllm bench --table` and `lensllm fit` "
            "read."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, type=Path, metavar="FILE",
                   help="the SQLite store written by `lensllm run`")
    p.add_argument("--out", required=True, metavar="TABLE.csv",
                   help="where to write the table ('-': standard output); written atomically, "
                        "a symlink or special file there, or the store itself, is refused")
    p.add_argument("--dataset", metavar="NAME",
                   help="the dataset to export (needed when the store holds several)")
    p.add_argument("--config-hash", metavar="HASH",
                   help="the config to export (needed when a dataset has runs of several)")
    p.add_argument("--unit", choices=["token", "byte"], default="token",
                   help="losses in nats per scored token (default) or nats per byte of "
                        "scored text (comparable across tokenizers)")
    p.add_argument("--partial", action="store_true",
                   help="leave out sizes some model has not finished instead of failing")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lensllm.outputs import STDOUT, check_apart, check_output_file
    from lensllm.store import SQLiteStore
    from lensllm.store.export import export_table, write_table

    check_output_file(args.out, "--out", allow_stdout=True)
    check_apart({"--out": args.out}, {"--store": args.store}, stores=["--store"])
    store = SQLiteStore(args.store, read_only=True)  # the store is never changed
    try:
        table = export_table(
            store, dataset=args.dataset, config_hash=args.config_hash, partial=args.partial,
            unit=args.unit,
        )
    finally:
        store.close()
    write_table(table, args.out)
    sizes = [c for c in table.header[1:] if c not in ("size", "family")]
    report = sys.stderr if args.out == STDOUT else sys.stdout
    print(f"wrote {args.out}: {len(table.rows)} models x sizes {', '.join(sizes)} "
          f"(dataset {table.dataset}, config {table.config_hash}, {table.loss_unit})",
          file=report)
    for model, size, why in table.missing:
        print(f"missing: {model} at size {size}: {why}", file=sys.stderr)
    if table.dropped_models:
        print(f"left out models with failed runs: {', '.join(table.dropped_models)}",
              file=report)
    if table.dropped_sizes:
        print(f"left out unfinished sizes: {', '.join(map(str, table.dropped_sizes))}",
              file=report)
    return 0
