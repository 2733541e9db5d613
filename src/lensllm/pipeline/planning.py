"""The data plan of a ``lensllm select`` outcome: the plan (JSON-ready) and its text lines.

The top candidates of the ranking (3 by default) are planned from the selector's own
curves and its calibrated predictive distribution
(:func:`lensllm.selection.predictive_plan.plan_from_predictive`), so that the plan and the
ranking agree at ``D*``. Only a selector that draws no curve falls back to the rectified law
fitted to the paid points (:func:`lensllm.selection.planning.plan_candidates`, intervals by
the one default policy of :mod:`lensllm.laws.service`), and the plan says so. The loss goal
comes from ``[selection] loss_goal`` in the config. See docs/planning.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lensllm.laws.crossings import size_text
from lensllm.selection.planning import plan_candidates
from lensllm.selection.predictive_plan import plan_from_predictive

__all__ = ["outcome_plan", "plan_lines", "need_text", "crossing_text"]

N_TOP = 3


def outcome_plan(outcome, n_top: int = N_TOP) -> dict[str, Any]:
    """:func:`plan_candidates` for the ``n_top`` best-ranked candidates of ``outcome``."""
    view, sel = outcome.view, outcome.selection
    top = [int(i) for i in sel.ranking()[:n_top]]
    pred = getattr(outcome, "predictive", None)
    if pred is not None and sel.curve is not None and sel.predicted is not None:
        from lensllm.pipeline.predictive import largest_paid

        return plan_from_predictive(
            [view.models[i] for i in top], lambda d: np.asarray(sel.curve(d))[top],
            pred.subset(top), largest_paid(view)[top], float(view.target),
            law=f"{outcome.config.selection.method} (the selector's curves)",
            loss_goal=outcome.config.selection.loss_goal)
    zero = None if view.zero_shot is None else [float(view.zero_shot[i]) for i in top]
    pool = [(*outcome.observed[i], None if view.zero_shot is None else
             float(view.zero_shot[i])) for i in range(view.n_models)]
    plan = plan_candidates([view.models[i] for i in top], [outcome.observed[i] for i in top],
                           zero, float(outcome.config.target),
                           loss_goal=outcome.config.selection.loss_goal, pool=pool)
    plan["law"] = "rectified law (a second law: the selector draws no curve)"
    return plan


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
    if rec["data_needed_lower"] is None:
        return f"{size_text(rec['data_needed'])} examples" + (
            f"; {rec['note']}" if rec["note"] else "")
    text = (f"{size_text(rec['data_needed'])} examples (90% interval "
            f"{size_text(rec['data_needed_lower'])} to "
            f"{'unbounded' if upper is None else size_text(upper)})")
    return text + (f"; {rec['note']}" if rec["note"] else "")


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """What ``lensllm select`` prints about the plan: the advice, the data needed."""
    lines = []
    if plan["advice"]:
        lines.append(f"data plan (top {len(plan['candidates'])}, "
                     f"{plan.get('law', 'rectified law')}): {plan['advice']}")
    for rec in plan.get("data_needed", []):
        lines.append(f"to reach loss {plan['loss_goal']:g}, {Path(rec['model']).name} needs "
                     f"{need_text(rec)}")
    for rec in plan["skipped"]:
        lines.append(f"data plan leaves out {Path(rec['model']).name}: {rec['reason']}")
    if plan["candidates"]:
        lines.append(f"data plan intervals: {plan['calibration']}")
    return lines
