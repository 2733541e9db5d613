"""Export finished runs as a loss table (the format ``lensllm bench --table`` reads).

Header ``config name,0,<size>,...,size,family``; one row per model; column ``0`` is the
zero-shot test loss (size-0 runs), each size column the mean test loss over the seeds that
finished at that size, ``size`` the base model's parameter count and ``family`` its family.
Torch-free.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from lensllm.exceptions import StoreError
from lensllm.store._base import BaseStore

__all__ = ["ExportedTable", "export_table", "write_table"]


@dataclass(frozen=True)
class ExportedTable:
    """A loss table built from a store.

    Attributes:
        dataset: the dataset the runs were on.
        config_hash: the config hash of the runs.
        header: the CSV header.
        rows: one row per model, cells as strings.
        dropped_sizes: sizes left out because some model has no finished run there.
    """

    dataset: str
    config_hash: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    dropped_sizes: tuple[int, ...] = ()

    def to_csv(self) -> str:
        """The table as CSV text."""
        out = io.StringIO()
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
) -> ExportedTable:
    """Build the loss table of one experiment (one dataset and config hash) in a store.

    Args:
        store: the store.
        dataset: which dataset, needed only when the store holds several.
        config_hash: which config hash, needed only when several exist for the dataset.
        partial: leave out sizes where some model has no finished run instead of failing.

    Returns:
        The table; models in order of first creation in the store.

    Raises:
        StoreError: no finished runs, an ambiguous dataset or config hash, or (without
            ``partial``) a model missing a size.
    """
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
    models: list[str] = []
    losses: dict[tuple[str, int], list[float]] = {}
    base_params: dict[str, int] = {}
    family: dict[str, str] = {}
    for run in runs:
        model = run.key.model
        if model not in models:
            models.append(model)
        losses.setdefault((model, run.key.size), []).append(run.result.test_loss)
        base_params[model] = run.result.base_params
        family[model] = run.result.family or ""
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
        dropped_sizes=tuple(dropped),
    )


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
