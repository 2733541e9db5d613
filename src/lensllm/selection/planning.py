"""Data planning for a set of candidates: who wins at which data size, and how much data.

A selection answers "which model at ``D*``". The next questions are "would the answer change
with less or more data" and "how much data reaches loss X". :func:`plan_candidates` fits
the rectified law (with the zero-shot point at ``D = 0`` when known) to each candidate's
observed points, then, over the sizes ``D*/span`` to ``span * D*``:

- the predicted curves and their 90% bands (the bootstrap of :mod:`lensllm.laws`);
- the sizes where two candidates swap order, with intervals
  (:func:`lensllm.laws.crossings.crossing_intervals`);
- who leads where, and one sentence to act on (:func:`lensllm.laws.crossings.advice`);
- with a loss goal, the data each candidate needs (:func:`lensllm.laws.inverse.plan_data`).

Torch-free; sizes are numbers of fine-tuning examples, losses are the runs' test losses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lensllm.exceptions import InputError, LensLLMError
from lensllm.laws import RectifiedLaw
from lensllm.laws.crossings import (
    advice,
    crossing_intervals,
    curve_replicates,
    leader_segments,
)
from lensllm.laws.inverse import plan_data

__all__ = ["plan_candidates"]


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _fit_one(sizes, losses, zero_shot):
    """The rectified law fitted to one candidate's points, or the reason it cannot be."""
    d, y = np.asarray(sizes, float), np.asarray(losses, float)
    if zero_shot is not None:
        d, y = np.concatenate([[0.0], d]), np.concatenate([[zero_shot], y])
    law = RectifiedLaw()
    if d.size < law.n_params:
        return None, f"{d.size} points < {law.n_params} parameters of the rectified law"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return law.fit_many(d, y[None, :]), ""
    except LensLLMError as exc:
        return None, str(exc).splitlines()[0]


def _data_needed(names, batches, goal: float, level: float) -> list[dict[str, Any]]:
    out = []
    for name, batch in zip(names, batches):
        plan = plan_data(batch, goal, level)
        reached = bool(plan.reached[0])
        out.append({
            "model": name, "data_needed": _finite(plan.data_needed[0]),
            "data_needed_lower": _finite(plan.lower[0]) if reached else None,
            "data_needed_upper": _finite(plan.upper[0]) if reached else None,
            "note": plan.note(0, batch.law.name)})
    return out


def plan_candidates(names: Sequence[str], observed: Sequence[tuple[Any, Any]],
                    zero_shot: Sequence[float] | None, target: float, *,
                    loss_goal: float | None = None, span: float = 8.0, level: float = 0.9,
                    n_grid: int = 160) -> dict[str, Any]:
    """The data plan of some candidates (for example the top three of a ranking).

    Args:
        names: candidate names ``(C,)``.
        observed: per candidate, ``(sizes, losses)`` of its runs.
        zero_shot: per candidate, the loss without fine-tuning, or None.
        target: ``D*``.
        loss_goal: a loss to reach (optional).
        span: the curves cover ``target / span`` to ``target * span``.
        level: central coverage of every interval.

    Returns:
        A JSON-ready dict: ``sizes``, ``candidates`` (name, predicted curve, band), ``skipped``
        (name, reason), ``crossings`` (the two names, size, interval, which leads before and
        after), ``leaders`` (segments), ``advice`` (a sentence), and with a goal
        ``loss_goal`` and ``data_needed`` (one record per candidate).
    """
    if not (target > 0 and span > 1):
        raise InputError(f"planning needs target > 0 and span > 1, got {target}, {span}")
    grid = np.geomspace(target / span, target * span, n_grid)
    kept, batches, skipped = [], [], []
    for i, name in enumerate(names):
        batch, why = _fit_one(*observed[i], None if zero_shot is None else zero_shot[i])
        if batch is None:
            skipped.append({"model": name, "reason": why})
        else:
            kept.append(name)
            batches.append(batch)
    plan: dict[str, Any] = {"sizes": grid.tolist(), "target": target, "level": level,
                            "candidates": [], "skipped": skipped, "crossings": [],
                            "leaders": [], "advice": None}
    if loss_goal is not None:
        plan["loss_goal"] = loss_goal
        plan["data_needed"] = _data_needed(kept, batches, loss_goal, level)
    if not batches:
        return plan
    curves = np.vstack([b.predict(grid) for b in batches])
    bands = [b.interval(grid, level) for b in batches]
    reps = np.concatenate([curve_replicates(b, grid) for b in batches])
    for name, curve, (lo, hi) in zip(kept, curves, bands):
        plan["candidates"].append({"model": name, "predicted": curve.tolist(),
                                   "lower": lo[0].tolist(),
                                   "upper": [_finite(v) for v in hi[0]]})
    crossings = crossing_intervals(grid, curves, reps, level=level)
    plan["crossings"] = [{"before": kept[c.before], "after": kept[c.after], "size": c.size,
                          "lower": _finite(c.lower) if c.lower > 0 else 0.0,
                          "upper": _finite(c.upper)} for c in crossings]
    segments = leader_segments(grid, curves)
    plan["leaders"] = [{"from": a, "to": b, "model": kept[w]} for a, b, w in segments]
    plan["advice"] = advice(kept, segments, crossings, level)
    return plan
