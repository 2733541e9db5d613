"""The bench harness: every method on every table at every budget, scored against ``L(D*)``.

For a table, a target ``D*`` (default: its largest size column) and a budget ratio ``r``, a
method gets a :class:`~lensllm.bench.budget.BudgetView` with ``max_data_num = D* / r`` and
returns a :class:`~lensllm.selection.Selection`; the harness scores it against the true
losses at ``D*`` (which the method never sees) and reads the cost from the view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lensllm.bench.budget import BudgetView
from lensllm.bench.metrics import coverage, log_rmse, pearson_corr, rel_acc
from lensllm.bench.table import LossTable
from lensllm.exceptions import InputError
from lensllm.selection import REGISTRY, NotApplicable, Selection, get_selector

__all__ = ["DEFAULT_RATIOS", "BenchRecord", "Evaluation", "run_bench", "resolve_target"]

#: Budget ratios of the published tables: ``max_data_num = D* / ratio``.
DEFAULT_RATIOS = (8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class BenchRecord:
    """One (dataset, budget ratio, method) outcome. Metrics are fractions; None = n/a.

    ``options`` (the selector's constructor options of a ``--grid`` sweep) and ``max_params``
    (the size constraint of a ``--max-params`` study) are set only by the studies of
    :mod:`lensllm.bench.sweep`; :meth:`to_json` leaves them out when unset.
    """

    dataset: str
    budget_ratio: float
    max_data_num: float
    method: str
    pearcorr: float | None
    relacc: float | None
    rmse: float | None
    cost_fraction: float | None
    selected: str | None
    coverage: float | None = None
    note: str | None = None
    options: dict[str, Any] | None = None
    max_params: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("options", "max_params"):
            if out[key] is None:
                del out[key]
        for key in ("budget_ratio", "max_data_num"):
            if float(out[key]).is_integer():
                out[key] = int(out[key])
        return out


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One evaluation of a method on a table at a budget: its record plus what produced it
    (for plots and reports)."""

    record: BenchRecord
    selection: Selection | None = None
    paid: np.ndarray | None = field(default=None, repr=False)
    visible_sizes: np.ndarray | None = field(default=None, repr=False)


def resolve_target(table: LossTable, target: float | None) -> float:
    """``D*``: the given size (must be a column) or the table's largest size."""
    if target is None:
        return float(table.sizes[-1])
    table.column(target)  # raises with the list of sizes when absent
    return float(target)


def _evaluate(method: str, table: LossTable, ratio: float, target: float,
              ntk: Sequence[object] | None, options: dict[str, Any]) -> Evaluation:
    max_data = target / ratio
    base = dict(dataset=table.name, budget_ratio=float(ratio), max_data_num=float(max_data),
                method=method)
    none = dict(pearcorr=None, relacc=None, rmse=None, cost_fraction=None, selected=None)
    if max_data < table.sizes[0]:
        return Evaluation(BenchRecord(**base, **none, note=(
            f"budget {max_data:g} is below the smallest size {table.sizes[0]:g}")))
    view = BudgetView(table, max_data, target, ntk=ntk)
    selector = get_selector(method, **options.get(method, {}))
    try:
        sel = selector.select(view)
    except NotApplicable as exc:
        return Evaluation(BenchRecord(**base, **none, note=f"not applicable: {exc}"))
    truth = table.column(target)
    rmse = cov = None
    if sel.predicted is not None:
        rmse = log_rmse(sel.predicted, truth)
    if sel.lower is not None and sel.upper is not None:
        cov = coverage(sel.lower, sel.upper, truth)
    record = BenchRecord(
        **base, pearcorr=pearson_corr(sel.score, truth), relacc=rel_acc(sel.selected, truth),
        rmse=rmse, cost_fraction=view.cost() / view.full_cost(),
        selected=table.models[sel.selected], coverage=cov)
    return Evaluation(record, sel, view.paid, view.sizes)


def run_bench(
    tables: Iterable[LossTable],
    methods: Sequence[str] | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    target: float | None = None,
    *,
    ntk: dict[str, Sequence[object]] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Evaluation]:
    """Run ``methods`` (default: all registered) on every table and budget ratio.

    Args:
        tables: loss tables.
        methods: registered selector names.
        ratios: budget ratios (``max_data_num = D* / ratio``).
        target: ``D*``; default each table's largest size.
        ntk: NTK spectra per dataset name (one per model), for ``lensllm``.
        options: constructor keywords per method name.
        progress: called with a short label before each evaluation.
    """
    methods = list(methods) if methods is not None else list(REGISTRY)
    for m in methods:
        if m not in REGISTRY:
            raise InputError(f"unknown method {m!r}; choose from {', '.join(REGISTRY)}")
    for r in ratios:
        if not r >= 1:
            raise InputError(f"budget ratios must be >= 1, got {r}")
    out = []
    for table in tables:
        d_star = resolve_target(table, target)
        for ratio in ratios:
            for method in methods:
                if progress:
                    progress(f"{table.name} 1/{ratio:g} {method}")
                out.append(_evaluate(method, table, ratio, d_star,
                                     (ntk or {}).get(table.name), options or {}))
    return out
