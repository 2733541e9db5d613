"""Export finished runs as a loss table (the format ``lensllm bench --table`` reads).

A plain CSV (``pandas.read_csv(path, index_col=0)`` reads it): the header
``config name [<unit>],0,<size>,...,size,family``, whose first cell names the unit of the
losses (``nats_per_token`` or ``nats_per_byte``; :func:`lensllm.bench.load_table` reads it
there); one row per model;
column ``0`` is the zero-shot test loss (size-0 runs), each size column the mean test loss
over the seeds that finished at that size, ``size`` the base model's parameter count and
``family`` its family. Torch-free.

Per byte (``unit="byte"``), each run's loss is its summed test loss divided by the UTF-8
bytes of the scored test text, ``test_loss * test_scored_tokens / test_bytes``: models with
different tokenizers are then scored on the same bytes. Runs stored before byte counts
existed (schema version 1), or whose scored test text was truncated by ``max_length``,
cannot give it and are refused by name.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from lensllm.exceptions import StoreError
from lensllm.outputs import write_text
from lensllm.store._base import BaseStore

__all__ = ["ExportedTable", "export_table", "write_table", "EXPORT_UNITS"]

#: ``unit`` argument -> the unit the table declares.
EXPORT_UNITS = {"token": "nats_per_token", "byte": "nats_per_byte"}


@dataclass(frozen=True)
class ExportedTable:
    """A loss table built from a store.

    Attributes:
        dataset: the dataset the runs were on.
        config_hash: the config hash of the runs.
        header: the CSV header.
        rows: one row per model, cells as strings.
        dropped_sizes: sizes left out because some model has no finished run there.
        dropped_models: models left out because some run of theirs failed.
        missing: ``(model, size, why)`` of every cell without a finished run (why:
            ``failed: <reason>``, ``running``, ``not run yet``, ``not planned``).
        loss_unit: ``nats_per_token`` or ``nats_per_byte``.
    """

    dataset: str
    config_hash: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    dropped_sizes: tuple[int, ...] = ()
    dropped_models: tuple[str, ...] = ()
    missing: tuple[tuple[str, int, str], ...] = ()
    loss_unit: str = "nats_per_token"

    def to_csv(self) -> str:
        """The table as plain CSV text, the unit in the header's first cell."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow((f"{self.header[0]} [{self.loss_unit}]", *self.header[1:]))
        writer.writerows(self.rows)
        return out.getvalue()


def export_table(
    store: BaseStore,
    *,
    dataset: str | None = None,
    config_hash: str | None = None,
    partial: bool = False,
    unit: str = "token",
) -> ExportedTable:
    """Build the loss table of one experiment (one dataset and config hash) in a store.

    A failed run is missing data: a model with a failed run (at any size) is left out of
    the table, and listed in ``missing`` with the reason, so the other models' rows are
    those of the experiment without it. A cell that is not run yet is an error unless
    ``partial`` (its size is then left out). When a model's files changed (new fingerprint),
    only the runs of its newest fingerprint count.

    Args:
        store: the store.
        dataset: which dataset, needed only when the store holds several.
        config_hash: which config hash, needed only when several exist for the dataset.
        partial: leave out sizes where some model has no run yet instead of failing.
        unit: ``"token"`` (nats per scored token) or ``"byte"`` (nats per byte of scored
            text).

    Returns:
        The table; models in order of first creation in the store.

    Raises:
        StoreError: no finished runs, an ambiguous dataset or config hash, every model
            failed, (without ``partial``) a model not run yet at some size, or per byte,
            a run without byte counts or with truncated test text.
    """
    if unit not in EXPORT_UNITS:
        raise StoreError(f"unit must be one of {', '.join(EXPORT_UNITS)}, got {unit!r}")
    runs = store.get_runs(status="finished", dataset=dataset, config_hash=config_hash)
    if not runs:
        what = f" for dataset '{dataset}'" if dataset else ""
        raise StoreError(f"store '{_path(store)}' has no finished runs{what}")
    dataset, config_hash = _one_experiment(store, runs)
    cells = _Cells(store.get_runs(dataset=dataset, config_hash=config_hash), unit)
    models = [m for m in cells.models if m not in cells.failed_models]
    if not models:
        raise StoreError("every model has failed runs: " + _listed(cells.missing()))
    missing = [c for c in cells.missing() if c[0] in models]
    if missing and not partial:
        raise StoreError(
            f"no finished run for {_listed(missing)}; finish them with `lensllm run` or "
            "pass --partial to leave those sizes out"
        )
    dropped = sorted({s for _, s, _ in missing})
    sizes = [s for s in cells.sizes if s not in dropped]
    if not sizes:
        raise StoreError("no size has a finished run for every model: " + _listed(missing))
    with_zero = all((m, 0) in cells.losses for m in models)
    columns = ([0] if with_zero else []) + sizes
    header = ["config name"] + [str(c) for c in columns] + ["size", "family"]
    rows = []
    for model in models:
        means = [sum(v) / len(v) for v in (cells.losses[(model, c)] for c in columns)]
        rows.append((model, *map(repr, means), str(cells.base_params[model]),
                     cells.family[model]))
    return ExportedTable(
        dataset=dataset, config_hash=config_hash, header=tuple(header), rows=tuple(rows),
        dropped_sizes=tuple(dropped), dropped_models=tuple(sorted(cells.failed_models)),
        missing=tuple(cells.missing()), loss_unit=EXPORT_UNITS[unit],
    )


def _one_experiment(store: BaseStore, runs: list) -> tuple[str, str]:
    datasets = sorted({r.key.dataset for r in runs})
    if len(datasets) > 1:
        raise StoreError(
            f"store '{_path(store)}' holds runs on {len(datasets)} datasets "
            f"({', '.join(datasets)}); pick one with --dataset"
        )
    hashes = sorted({r.key.config_hash for r in runs})
    if len(hashes) > 1:
        raise StoreError(
            f"store '{_path(store)}' holds runs of {len(hashes)} configs on '{datasets[0]}' "
            f"(config hashes {', '.join(hashes)}); pick one with --config-hash"
        )
    return datasets[0], hashes[0]


class _Cells:
    """Every run of one experiment by (model, size), each model at its newest fingerprint."""

    def __init__(self, runs: list, unit: str) -> None:
        newest = {}
        for run in runs:  # by id: the last run of a model has its newest fingerprint
            newest[run.key.model] = run.key.fingerprint
        runs = [r for r in runs if r.key.fingerprint == newest[r.key.model]]
        self.models = list(dict.fromkeys(r.key.model for r in runs))
        self.sizes = sorted({r.key.size for r in runs if r.key.size > 0})
        self.losses: dict[tuple[str, int], list[float]] = {}
        self.status: dict[tuple[str, int], str] = {}
        self.base_params: dict[str, int] = {}
        self.family: dict[str, str] = {}
        self.failed_models: set[str] = set()
        for run in runs:
            cell = (run.key.model, run.key.size)
            if run.status == "finished":
                self.losses.setdefault(cell, []).append(_run_loss(run, unit))
                self.base_params[run.key.model] = run.result.base_params
                self.family[run.key.model] = run.result.family or ""
            elif run.status == "failed":
                self.failed_models.add(run.key.model)
                reason = ((run.error or "").strip().splitlines() or ["unknown reason"])[0]
                self.status[cell] = f"failed: {reason}"
            elif not self.status.get(cell, "").startswith("failed"):
                self.status[cell] = "running" if run.status == "running" else "not run yet"

    def missing(self) -> list[tuple[str, int, str]]:
        """``(model, size, why)`` of the cells with a failed run or without a finished one
        (a cell with some seeds finished is the mean over those, as before)."""
        out = []
        for size in [0, *self.sizes]:
            for model in self.models:
                cell = (model, size)
                why = self.status.get(cell, "")
                if why.startswith("failed") or (why and cell not in self.losses):
                    out.append((model, size, why))
                elif cell not in self.losses and size > 0:
                    out.append((model, size, "not planned"))
        return out


def _run_loss(run, unit: str) -> float:
    """A finished run's test loss in ``unit``; per byte, :class:`StoreError` naming the run
    when its bytes are unknown or its scored test text was truncated."""
    result = run.result
    loss = result.loss(EXPORT_UNITS[unit])
    what = f"run of '{run.key.model}' at size {run.key.size} (seed {run.key.seed})"
    if loss is None:
        raise StoreError(f"{what} has no byte count (stored before lensllm counted bytes); "
                         "export per token, or run the experiment into a new store")
    if unit == "byte" and result.test_truncated:
        raise StoreError(f"{what}: {result.test_truncated} test examples had scored text cut "
                         "by `finetune.max_length`, so its bytes were not all scored; raise "
                         "max_length, or export per token")
    return loss


def _listed(cells: list[tuple[str, int, str]]) -> str:
    text = ", ".join(f"{m} at size {s} ({why})" for m, s, why in cells[:5])
    return text + (f" and {len(cells) - 5} more" if len(cells) > 5 else "")


def write_table(table: ExportedTable, path: str | Path) -> str:
    """Write a table as CSV, atomically (see :mod:`lensllm.outputs.files`); ``-`` is
    standard output. Returns the path written."""
    return write_text(path, table.to_csv(), "table")


def _path(store: BaseStore) -> str:
    return str(getattr(store, "path", "store"))
