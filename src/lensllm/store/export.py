"""Export finished runs as a loss table (the format ``lensllm bench --table`` reads).

A first line ``# loss_unit: nats_per_token`` (or ``nats_per_byte``) says which unit the
losses are in; then the header ``config name,0,<size>,...,size,family``; one row per model;
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
        loss_unit: ``nats_per_token`` or ``nats_per_byte``.
    """

    dataset: str
    config_hash: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    dropped_sizes: tuple[int, ...] = ()
    loss_unit: str = "nats_per_token"

    def to_csv(self) -> str:
        """The table as CSV text, led by its ``# loss_unit`` line."""
        out = io.StringIO()
        out.write(f"# loss_unit: {self.loss_unit}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
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

    Args:
        store: the store.
        dataset: which dataset, needed only when the store holds several.
        config_hash: which config hash, needed only when several exist for the dataset.
        partial: leave out sizes where some model has no finished run instead of failing.
        unit: ``"token"`` (nats per scored token) or ``"byte"`` (nats per byte of scored
            text).

    Returns:
        The table; models in order of first creation in the store.

    Raises:
        StoreError: no finished runs, an ambiguous dataset or config hash, (without
            ``partial``) a model missing a size, or per byte, a run without byte counts or
            with truncated test text.
    """
    if unit not in EXPORT_UNITS:
        raise StoreError(f"unit must be one of {', '.join(EXPORT_UNITS)}, got {unit!r}")
    runs = store.get_runs(status="finished", dataset=dataset, config_hash=config_hash)
    if not runs:
        what = f" for dataset '{dataset}'" if dataset else ""
        raise StoreError(f"store '{_path(store)}' has no finished runs{what}")
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
    models, losses, base_params, family = _collect(runs, unit)
    sizes = sorted({size for _, size in losses if size > 0})
    missing = [(m, s) for s in sizes for m in models if (m, s) not in losses]
    dropped: list[int] = []
    if missing and not partial:
        listed = ", ".join(f"{m} at size {s}" for m, s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise StoreError(
            f"no finished run for {listed}{more}; finish them with `lensllm run` or pass "
            "--partial to leave those sizes out"
        )
    if missing:
        dropped = sorted({s for _, s in missing})
        sizes = [s for s in sizes if s not in dropped]
    if not sizes:
        raise StoreError("no size has a finished run for every model")
    with_zero = all((m, 0) in losses for m in models)
    header = ["config name"] + (["0"] if with_zero else []) + [str(s) for s in sizes]
    header += ["size", "family"]
    rows = []
    for model in models:
        cells = [model]
        columns = ([0] if with_zero else []) + sizes
        for size in columns:
            values = losses[(model, size)]
            cells.append(repr(sum(values) / len(values)))
        cells += [str(base_params[model]), family[model]]
        rows.append(tuple(cells))
    return ExportedTable(
        dataset=datasets[0], config_hash=hashes[0], header=tuple(header), rows=tuple(rows),
        dropped_sizes=tuple(dropped), loss_unit=EXPORT_UNITS[unit],
    )


def _collect(runs, unit: str):
    """Models in order of first appearance, losses in ``unit`` by ``(model, size)`` (one
    per seed), and each model's parameter count and family."""
    models: list[str] = []
    losses: dict[tuple[str, int], list[float]] = {}
    base_params: dict[str, int] = {}
    family: dict[str, str] = {}
    for run in runs:
        model = run.key.model
        if model not in models:
            models.append(model)
        losses.setdefault((model, run.key.size), []).append(_run_loss(run, unit))
        base_params[model] = run.result.base_params
        family[model] = run.result.family or ""
    return models, losses, base_params, family


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


def write_table(table: ExportedTable, path: str | Path) -> Path:
    """Write a table as CSV (atomically: a temporary file then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(table.to_csv(), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise StoreError(f"cannot write table '{path}': {exc}") from None
    return path


def _path(store: BaseStore) -> str:
    return str(getattr(store, "path", "store"))
