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

Curves, bands, crossings and data needed are calibrated
(:mod:`lensllm.laws.calibration`): the law's extrapolation error is measured by back-testing
the observed points of every candidate given in ``pool`` (default: the planned ones),
pooled, and carried beyond each candidate's largest run. Without enough back-tests the plan
says so and uses the bootstrap alone.

Torch-free; sizes are numbers of fine-tuning examples, losses are the runs' test losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lensllm.exceptions import InputError
from lensllm.laws import RectifiedLaw
from lensllm.laws.calibration import shortfall_words
from lensllm.laws.crossings import advice, crossing_intervals, leader_segments
from lensllm.laws.service import (
    DEFAULT_INTERVAL,
    calibrate,
    data_needed,
    fit_candidate,
    predict_band,
    predict_curves,
    predictive_samples,
)

__all__ = ["plan_candidates"]


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _fit_one(sizes, losses, zero_shot):
    """The rectified law fitted to one candidate's points, or the reason it cannot be."""
    return fit_candidate(RectifiedLaw(), sizes, losses, zero_shot)


def _data_needed(names, batches, goal: float, level: float, cal) -> list[dict[str, Any]]:
    keys = ("data_needed", "data_needed_law", "data_needed_lower", "data_needed_upper",
            "never", "note")
    return [{"model": name, **{k: rec[k] for k in keys}}
            for name, batch in zip(names, batches)
            for rec in data_needed(batch, goal, cal, level)]


def _calibration(pool, batches, target: float, interval: str | None):
    """The pooled back-test warps of the ``pool`` candidates (or of ``batches``), or None."""
    fitted = batches if pool is None else [
        b for b in (_fit_one(*obs)[0] for obs in pool) if b is not None]
    return calibrate(fitted, target, interval, fitted=batches)


def _no_calibration(interval: str | None, pool, batches) -> str:
    if interval == "calibrated":
        return _shortfall(pool, batches)
    return "none asked for: intervals are the bootstrap alone (the fit's noise)"


def _shortfall(pool, batches) -> str:
    """Why there is no calibration, naming the minimum (:func:`shortfall_words`)."""
    counts = ([int(b.mask.sum()) for b in batches] if pool is None else
              [len(obs[0]) + (obs[2] is not None) for obs in pool])
    return shortfall_words(counts, RectifiedLaw().n_params, "rectified")


def plan_candidates(names: Sequence[str], observed: Sequence[tuple[Any, Any]],
                    zero_shot: Sequence[float] | None, target: float, *,
                    loss_goal: float | None = None, span: float = 8.0, level: float = 0.9,
                    n_grid: int = 160, pool: Sequence[tuple[Any, Any, Any]] | None = None,
                    interval: str | None = DEFAULT_INTERVAL) -> dict[str, Any]:
    """The data plan of some candidates (for example the top three of a ranking).

    Args:
        names: candidate names ``(C,)``.
        observed: per candidate, ``(sizes, losses)`` of its runs.
        zero_shot: per candidate, the loss without fine-tuning, or None.
        target: ``D*``.
        loss_goal: a loss to reach (optional).
        span: the curves cover ``target / span`` to ``target * span``.
        level: central coverage of every interval.
        pool: ``(sizes, losses, zero_shot or None)`` of every candidate whose runs measure
            the extrapolation error (for example all candidates of a selection); default
            the planned candidates.
        interval: the interval policy of :mod:`lensllm.laws.service` (``"calibrated"``,
            the default, or ``"bootstrap"``).

    Returns:
        A JSON-ready dict: ``sizes``, ``candidates`` (name, predicted curve, band), ``skipped``
        (name, reason), ``crossings`` (the two names, size, interval, which leads before and
        after), ``leaders`` (segments), ``advice`` (a sentence), ``calibration`` (a
        sentence: the measured warp, or why there is none), and with a goal ``loss_goal``
        and ``data_needed`` (one record per candidate).
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
    cal = _calibration(pool, batches, target, interval) if batches else None
    plan: dict[str, Any] = {"sizes": grid.tolist(), "target": target, "level": level,
                            "candidates": [], "skipped": skipped, "crossings": [],
                            "leaders": [], "advice": None, "calibration": (
                                cal.summary(level) if cal is not None else
                                _no_calibration(interval, pool, batches))}
    if loss_goal is not None:
        plan["loss_goal"] = loss_goal
        plan["data_needed"] = _data_needed(kept, batches, loss_goal, level, cal)
    if not batches:
        return plan
    curves = np.vstack([predict_curves(b, grid, cal) for b in batches])
    bands = [predict_band(b, grid, cal, level) for b in batches]
    reps = np.concatenate([predictive_samples(b, grid, cal, noise=False, shared_warp=True)
                           for b in batches])
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
