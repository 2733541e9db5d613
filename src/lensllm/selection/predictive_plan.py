"""The data plan read from the selector's own predictive distribution.

The ranking is made at ``D*`` by the selector; the plan answers the neighbouring questions
(who leads from ``D*/span`` to ``span * D*``, where the order changes, how much data a loss
goal needs). Both must tell one story, so the plan reads the *same* distribution: each
candidate's curve is the selector's (:attr:`lensllm.selection.Selection.curve`), and its
replicate curves add the calibrated errors of :class:`lensllm.selection.predictive.Predictive`,
scaled with the distance beyond the candidate's largest paid run
(:meth:`~lensllm.selection.predictive.Predictive.log_errors`). At ``D*`` the curves are the
ranking's predictions and the bands its intervals, exactly.

Names in the sentences are the short names (the last part of a path or hub id), never a
full cache path. Torch-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.laws.crossings import (
    advice,
    crossing_intervals,
    find_crossings,
    leader_segments,
)
from lensllm.selection.predictive import Predictive

__all__ = ["first_reach", "plan_from_predictive", "short"]

#: Replicate curves read for the data needed (bands and crossings read them all, so that
#: the bands at ``D*`` are the ranking's intervals exactly).
N_NEED = 1000
#: A loss goal not reached by ``NEED_SPAN * D*`` is reported as not reached.
NEED_SPAN = 1000.0


def short(name: str) -> str:
    """The last part of a model path or hub id (``/cache/models--a--b/x`` -> ``x``)."""
    return Path(str(name).rstrip("/")).name or str(name)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _replicate_curves(curve: Callable, pred: Predictive, largest: np.ndarray,
                      grid: np.ndarray, target: float, n: int | None = None
                      ) -> np.ndarray | None:
    """``(C, R, m)`` replicate curves, the first ``n`` replicates (None: all); None when
    the distribution is unknown."""
    if not pred.known:
        return None
    base = np.log(np.maximum(curve(grid), 1e-300))
    sub = dataclasses.replace(pred, replicates=pred.replicates[:, :n])
    return np.exp(base[:, None, :] + sub.log_errors(grid, largest, target))


def first_reach(grid: np.ndarray, values: np.ndarray, goal: float) -> np.ndarray:
    """The smallest size where curves ``(..., m)`` reach ``goal``, interpolated in log-log
    between grid points: ``grid[0]`` when already reached there, ``inf`` when never."""
    x = np.log(grid)
    logv = np.log(np.maximum(values, 1e-300))
    reached = values <= goal
    h = np.argmax(reached, axis=-1)
    hp = np.maximum(h - 1, 0)
    v0 = np.take_along_axis(logv, hp[..., None], -1)[..., 0]
    v1 = np.take_along_axis(logv, h[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip(np.nan_to_num((v0 - np.log(goal)) / (v0 - v1)), 0.0, 1.0)
    d = np.exp(x[hp] + t * (x[h] - x[hp]))
    d = np.where(h == 0, grid[0], d)
    return np.where(reached.any(axis=-1), d, np.inf)


def _data_needed(names, curve, pred, largest, target, goal, level) -> list[dict[str, Any]]:
    """Per candidate, the smallest size whose predicted loss reaches ``goal``, with an
    interval from the replicate curves."""
    lo_d = max(1.0, float(np.nanmin(largest)) / 2)
    grid = np.geomspace(lo_d, target * NEED_SPAN, 800)
    need = first_reach(grid, np.asarray(curve(grid), float), goal)
    reps = _replicate_curves(curve, pred, largest, grid, target, N_NEED)
    a = (1 - level) / 2
    out = []
    for i, name in enumerate(names):
        rec = {"model": name, "data_needed": _finite(need[i]), "data_needed_lower": None,
               "data_needed_upper": None, "note": ""}
        if not np.isfinite(need[i]):
            rec["note"] = (f"the predicted curve does not reach {goal:g} by "
                           f"{NEED_SPAN:g} x D*")
        elif need[i] <= grid[0]:
            rec["note"] = f"already reached at {grid[0]:.4g} examples or fewer"
        if reps is not None:
            firsts = np.minimum(first_reach(grid, reps[i], goal), 1e300)  # inf: never
            lo, hi = np.quantile(firsts, [a, 1 - a])
            lo, hi = (np.inf if v >= 1e300 else v for v in (lo, hi))
            rec["data_needed_lower"], rec["data_needed_upper"] = _finite(lo), _finite(hi)
        else:
            rec["note"] = (rec["note"] + "; " if rec["note"] else "") + \
                "no interval (the predictive distribution is unknown)"
        out.append(rec)
    return out


def plan_from_predictive(names: Sequence[str], curve: Callable[[np.ndarray], np.ndarray],
                         pred: Predictive, largest: np.ndarray, target: float, *,
                         law: str, loss_goal: float | None = None, span: float = 8.0,
                         level: float = 0.9, n_grid: int = 161) -> dict[str, Any]:
    """The data plan of some candidates from their curves and joint distribution.

    Args:
        names: candidate names ``(C,)``.
        curve: ``d (m,) -> L (C, m)``: the selector's curves of these candidates.
        pred: their joint predictive distribution at ``D*`` (rows in the order of ``names``).
        largest: each candidate's largest paid size ``(C,)``.
        target: ``D*`` (always a grid point).
        law: what the curves are, in words (for example ``"adaptive (the selector)"``).
        loss_goal: a loss to reach (optional).
        span, level, n_grid: the grid ``D*/span .. span D*`` and the intervals' coverage.

    Returns:
        The dict of :func:`lensllm.selection.planning.plan_candidates` (``sizes``,
        ``candidates``, ``crossings``, ``leaders``, ``advice``, ``calibration``, ...), plus
        ``law``.
    """
    grid = np.unique(np.append(np.geomspace(target / span, target * span, n_grid), target))
    values = np.asarray(curve(grid), float)
    reps = _replicate_curves(curve, pred, largest, grid, target)
    a = (1 - level) / 2
    plan: dict[str, Any] = {"sizes": grid.tolist(), "target": target, "level": level,
                            "law": law, "candidates": [], "skipped": [], "crossings": [],
                            "leaders": [], "advice": None, "calibration": pred.note}
    for i, name in enumerate(names):
        if reps is None:
            lo, hi = np.zeros(grid.size), np.full(grid.size, np.inf)
        else:
            lo, hi = np.exp(np.quantile(np.log(reps[i]), [a, 1 - a], axis=0))  # as ranked
        plan["candidates"].append({"model": name, "predicted": values[i].tolist(),
                                   "lower": lo.tolist(), "upper": [_finite(v) for v in hi]})
    crossings = (find_crossings(grid, values) if reps is None else
                 crossing_intervals(grid, values, reps, level=level))
    plan["crossings"] = [{"before": names[c.before], "after": names[c.after], "size": c.size,
                          "lower": (_finite(c.lower) if c.lower > 0 else 0.0)
                          if np.isfinite(c.lower) or c.lower == np.inf else 0.0,
                          "upper": _finite(c.upper)} for c in crossings]
    segments = leader_segments(grid, values)
    plan["leaders"] = [{"from": s, "to": e, "model": names[w]} for s, e, w in segments]
    plan["advice"] = advice([short(n) for n in names], segments, crossings, level)
    if loss_goal is not None:
        plan["loss_goal"] = loss_goal
        plan["data_needed"] = _data_needed(names, curve, pred, largest, target, loss_goal,
                                           level)
    return plan
