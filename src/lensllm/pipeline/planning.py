"""The data plan of a ``lensllm select`` outcome: the plan (JSON-ready) and its text lines.

The top candidates of the ranking (3 by default) go through
:func:`lensllm.selection.planning.plan_candidates` with the points the selector paid for;
the loss goal comes from ``[selection] loss_goal`` in the config; the intervals follow the
one default policy of :mod:`lensllm.laws.service`. See docs/planning.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lensllm.laws.crossings import size_text
from lensllm.selection.planning import plan_candidates

__all__ = ["outcome_plan", "plan_lines", "need_text", "crossing_text"]

N_TOP = 3


def outcome_plan(outcome, n_top: int = N_TOP) -> dict[str, Any]:
    """:func:`plan_candidates` for the ``n_top`` best-ranked candidates of ``outcome``."""
    view = outcome.view
    top = [int(i) for i in outcome.selection.ranking()[:n_top]]
    zero = None if view.zero_shot is None else [float(view.zero_shot[i]) for i in top]
    pool = [(*outcome.observed[i], None if view.zero_shot is None else
             float(view.zero_shot[i])) for i in range(view.n_models)]
    return plan_candidates([view.models[i] for i in top], [outcome.observed[i] for i in top],
                           zero, float(outcome.config.target),
                           loss_goal=outcome.config.selection.loss_goal, pool=pool)


def crossing_text(c: dict[str, Any]) -> str:
    """One crossing of a plan in words (the report lists them)."""
    upper = "unbounded" if c["upper"] is None else size_text(c["upper"])
    return (f"{Path(c['before']).name} leads below, {Path(c['after']).name} above about "
            f"{size_text(c['size'])} examples (90% interval {size_text(c['lower'])} to "
            f"{upper})")


def need_text(rec: dict[str, Any]) -> str:
    """The data one candidate needs for the goal, in words (or the note saying why not)."""
    if rec["data_needed"] is None:  # "never", or no point estimate (the note says which)
        return rec["note"]
    upper = rec["data_needed_upper"]
    text = (f"{size_text(rec['data_needed'])} examples (90% interval "
            f"{size_text(rec['data_needed_lower'])} to "
            f"{'unbounded' if upper is None else size_text(upper)})")
    return text + (f"; {rec['note']}" if rec["note"] else "")


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """What ``lensllm select`` prints about the plan: the advice, the data needed."""
    lines = []
    if plan["advice"]:
        lines.append(f"data plan (top {len(plan['candidates'])}, rectified law): "
                     f"{plan['advice']}")
    for rec in plan.get("data_needed", []):
        lines.append(f"to reach loss {plan['loss_goal']:g}, {Path(rec['model']).name} needs "
                     f"{need_text(rec)}")
    for rec in plan["skipped"]:
        lines.append(f"data plan leaves out {rec['model']}: {rec['reason']}")
    if plan["candidates"]:
        lines.append(f"data plan intervals: {plan['calibration']}")
    return lines
