"""Stage 4b of ``lensllm select``: the selector's predictive distribution, used everywhere.

:func:`calibrate_outcome` measures the selector's error at the extrapolation asked
(:func:`lensllm.selection.predictive.calibrate`: the selector, unchanged, back-tested on
views of the same store restricted to smaller sizes) and puts its intervals on the
selection, so that the ranking, the ties, the trust section, the plots, the data plan and
``--json`` all read one distribution. The runs the back-tests pay for (small sizes the
selection had not needed) are counted apart. :func:`decide` names the one run that would
decide the best candidate per FLOP when none is clear.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from lensllm.pipeline.view import RunView
from lensllm.selection import Selection
from lensllm.selection.next_run import DecisiveRun, decisive_run
from lensllm.selection.p_best import CLEAR_WINNER
from lensllm.selection.predictive import Predictive, calibrate, largest_paid, reach_fraction

__all__ = ["CLEAR_WINNER", "LEVEL", "calibrate_outcome", "decide", "joint_ties",
           "largest_paid"]

#: Coverage of the intervals every output shows.
LEVEL = 0.9


def calibrate_outcome(view: RunView, selection: Selection, make_selector: Callable[[], Any],
                      log: Callable[[str], None] = lambda s: None
                      ) -> tuple[Selection, Predictive, frozenset]:
    """The predictive distribution of ``selection`` and the selection carrying its intervals.

    Returns:
        ``(selection with calibrated lower/upper, distribution, (model, size) runs the
        back-tests read)``. A selection without predictions is returned unchanged.
    """
    made: list[RunView] = []

    def make_view(budget: float, target: float) -> RunView:
        sub = view.restricted([int(s) for s in view.sizes if s <= budget], target)
        made.append(sub)
        return sub

    log(f"calibration: the selector back-tested at the extrapolation asked "
        f"(D*/budget = {view.target / float(view.sizes[-1]):.3g}x)")
    pred = calibrate(selection, view, make_selector, make_view)
    log(f"calibration: {pred.note}")
    spent = frozenset().union(*(v.paid_runs for v in made)) if made else frozenset()
    if selection.predicted is None:
        return selection, pred, spent
    lo, hi = pred.interval(LEVEL)
    info = {**selection.info, "predictive": pred.to_dict(LEVEL)}
    if selection.lower is not None:
        info["selector_interval"] = {"lower": selection.lower.tolist(),
                                     "upper": selection.upper.tolist(),
                                     "level": selection.level}
    changes = {"lower": lo, "upper": hi, "level": LEVEL}
    if pred.known:  # the calibrated point prediction, and curves that pass through it
        info["selector_predicted"] = np.asarray(selection.predicted, float).tolist()
        changes["predicted"] = pred.predicted
        changes["curve"] = calibrated_curve(selection, pred, largest_paid(view),
                                            float(view.target))
    return dataclasses.replace(selection, info=info, **changes), pred, spent


def calibrated_curve(selection: Selection, pred: Predictive, largest: np.ndarray,
                     target: float) -> Callable[[np.ndarray], np.ndarray] | None:
    """The selector's curves moved to the calibrated point prediction at ``D*``: the shift
    ``log(calibrated / selector's)`` is carried with the share of the distance beyond each
    candidate's largest paid run (:func:`~lensllm.selection.predictive.reach_fraction`), so
    a curve is unchanged over the runs paid and reaches the calibrated value at ``D*``."""
    if selection.curve is None:
        return None
    curve = selection.curve
    shift = pred.center - np.log(np.asarray(selection.predicted, float))
    d_max = np.where(np.isfinite(largest), largest, np.nanmax(largest))

    def moved(d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, float)
        return np.asarray(curve(d), float) * np.exp(shift[:, None]
                                                    * reach_fraction(d, d_max, target))

    return moved


def joint_ties(pred: Predictive, leader: int, level: float = LEVEL) -> np.ndarray | None:
    """Per candidate, whether it is tied with ``leader``: lower than it in at least
    ``(1 - level) / 2`` of the joint replicates (the leader itself: False). Read from the
    joint distribution, so a drift shared by both moves neither ahead; None when unknown."""
    if not pred.known:
        return None
    ahead = (pred.replicates < pred.replicates[leader][None, :]).mean(axis=1)
    tied = ahead >= (1 - level) / 2
    tied[leader] = False
    return tied


def decide(view: RunView, pred: Predictive) -> DecisiveRun | None:
    """The run that would best decide the leader per FLOP, when the leader is not clear
    (None when it is, or when the distribution is unknown or no run can be priced)."""
    if not pred.known or pred.p_best().max() > CLEAR_WINNER:
        return None
    largest = largest_paid(view)
    top = float(np.nanmax(largest))
    sizes = [top * 2 ** k for k in range(1, 64) if top * 2 ** k < view.target]

    def cost(i: int, size: float) -> float | None:
        return view.estimate_run(i, int(round(size)))

    return decisive_run(pred, largest, float(view.target), sizes, cost)
