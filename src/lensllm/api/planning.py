""":func:`plan`: who leads at which data size and how much data reaches a loss, for the
models of a table (the data plan that ``lensllm select`` gives its top candidates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lensllm.api._results import Result
from lensllm.api._tables import as_table
from lensllm.exceptions import InputError
from lensllm.laws.service import DEFAULT_INTERVAL, DEFAULT_LEVEL, check_interval
from lensllm.selection.planning import plan_candidates

__all__ = ["PlanResult", "plan"]


@dataclass(frozen=True, eq=False)
class PlanResult(Result):
    """A data plan (see :func:`lensllm.selection.planning.plan_candidates`).

    Attributes:
        plan: the JSON-ready plan: ``sizes``, ``candidates`` (curves and bands),
            ``crossings``, ``leaders``, ``advice``, ``calibration`` and, with a goal,
            ``data_needed``; the ``planning`` object of ``lensllm select --json``.
    """

    plan: dict[str, Any]

    @property
    def advice(self) -> str | None:
        """One sentence to act on."""
        return self.plan["advice"]

    def to_dict(self) -> dict[str, Any]:
        """The plan, as ``lensllm select --json`` writes it under ``planning``."""
        return dict(self.plan)

    def frame_records(self) -> tuple[list[dict[str, Any]], str | None]:
        """The data needed per candidate with a goal; else each candidate's curve."""
        if "data_needed" in self.plan:
            return [dict(r) for r in self.plan["data_needed"]], "model"
        return [dict(c) for c in self.plan["candidates"]], "model"


def plan(data: Any, *, max_data: float | None = None, target: float | None = None,
         models: Sequence[str] | None = None, loss_goal: float | None = None,
         span: float = 8.0, interval: str = DEFAULT_INTERVAL,
         loss_unit: str | None = None) -> PlanResult:
    """The data plan of some models of a table, from the rectified law fitted to the
    zero-shot loss and their points up to ``max_data``.

    Every model of the table measures the law's extrapolation error (the calibration of
    :mod:`lensllm.laws.service`); the plan covers ``models`` (default all).

    Args:
        data: a table (as :func:`lensllm.fit` takes).
        max_data: the largest size used (default: all).
        target: ``D*`` (default: the largest size).
        models: the models to plan (default all).
        loss_goal: also give the data each needs to reach this loss.
        span: the curves cover ``target / span`` to ``span * target``.
        interval: ``"calibrated"`` (default) or ``"bootstrap"``.
        loss_unit: the unit of a data frame's or a mapping's losses.

    Example:
        >>> import lensllm
        >>> p = lensllm.plan("gigaword", max_data=25600, models=["t5-small", "t5-base"],
        ...                  loss_goal=1.6)
        >>> [r["model"] for r in p.plan["data_needed"]]
        ['t5-small', 't5-base']
    """
    table = as_table(data, loss_unit=loss_unit)
    check_interval(interval, allow_none=False)
    max_data = float(max_data if max_data is not None else table.sizes[-1])
    target = float(target if target is not None else table.sizes[-1])
    keep = table.sizes <= max_data
    chosen = list(models) if models is not None else list(table.models)
    unknown = [m for m in chosen if m not in table.models]
    if unknown:
        raise InputError(f"`models`: {', '.join(map(repr, unknown))} not in the table "
                         f"({', '.join(table.models[:5])}{', ...' if table.n_models > 5 else ''})")
    rows = [table.models.index(m) for m in chosen]
    observed = [(table.sizes[keep], table.losses[i, keep]) for i in range(table.n_models)]
    zero = table.zero_shot
    pool = [(*observed[i], None if zero is None else float(zero[i]))
            for i in range(table.n_models)]
    result = plan_candidates(chosen, [observed[i] for i in rows],
                             None if zero is None else [float(zero[i]) for i in rows], target,
                             loss_goal=loss_goal, span=span, level=DEFAULT_LEVEL, pool=pool,
                             interval=interval)
    return PlanResult(result)
