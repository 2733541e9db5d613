"""How many of its own intervals a calibrated predictive distribution expects to hold the truth.

A 90% interval per candidate holds the truth for 90% of candidates *on average over tasks*,
not on every task. The error of extrapolating to ``D*`` has a part shared by every
candidate (a curvature every line misses, a drift of the whole field) and a part of each.
When the shared part dominates, the truths of one task sit together inside their intervals
(every interval holds) or together outside (few hold): the share of a task's candidates
whose interval holds the truth is far from binomial. Judging a distribution by whether one
task's share lands near 0.90 therefore says little; the right question is whether the share
seen is one the distribution itself expects.

This module answers it from the joint replicates of
:class:`~lensllm.selection.predictive.Predictive`: each replicate, taken as the truth, gives
the number of candidates whose interval holds it. The spread of that number is what a
perfectly calibrated distribution produces. (Measured on the bundled and zoo tables at
D*/8 with the default selector: a task's share lands in [0.80, 0.95] in 5-19% of the
replicates, all intervals hold in 50-78% of them; docs/select.md.)

Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lensllm.exceptions import InputError

__all__ = ["ExpectedCoverage", "coverage_counts", "expected_coverage"]


@dataclass(frozen=True)
class ExpectedCoverage:
    """The number of intervals expected to hold the truth, among ``n`` candidates.

    Attributes:
        n: candidates counted.
        low, high: the central ``mass`` range of the count (both inclusive).
        mass: the share of outcomes the range holds (0.9: 90%).
        all_held: the share of outcomes where every one of the ``n`` intervals holds.
        mean: the expected count.
    """

    n: int
    low: int
    high: int
    mass: float
    all_held: float
    mean: float

    def holds(self, covered: int) -> bool:
        """Whether ``covered`` of the ``n`` is inside the expected range."""
        return self.low <= covered <= self.high

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``n, low, high, mass, all_held, mean``."""
        return {"n": self.n, "low": self.low, "high": self.high, "mass": self.mass,
                "all_held": self.all_held, "mean": self.mean}


def coverage_counts(replicates: np.ndarray, among: np.ndarray | None = None,
                    level: float = 0.9) -> np.ndarray:
    """Per replicate taken as the truth, how many candidates' central ``level`` intervals
    (read from the same replicates) hold it ``(R,)``.

    Args:
        replicates: joint replicates ``(C, R)`` (any monotone scale: log losses or losses).
        among: the candidates counted (indices or a boolean mask; default: all).
        level: the intervals' level.
    """
    reps = np.asarray(replicates, float)
    if reps.ndim != 2 or reps.shape[1] < 2:
        raise InputError(f"`replicates` must be (candidates, replicates) with at least 2 "
                         f"replicates, got shape {reps.shape}")
    if not 0 < level < 1:
        raise InputError(f"`level` must be in (0, 1), got {level}")
    if among is not None:
        reps = reps[np.asarray(among)]
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a], axis=1)
    inside = (reps >= lo[:, None]) & (reps <= hi[:, None])
    return inside.sum(axis=0)


def expected_coverage(pred: Any, among: np.ndarray | None = None, level: float = 0.9,
                      mass: float = 0.9) -> ExpectedCoverage | None:
    """The range of the count :func:`coverage_counts` gives in ``mass`` of the outcomes.

    Args:
        pred: a :class:`~lensllm.selection.predictive.Predictive` (anything with
            ``replicates`` ``(C, R)`` or None).
        among: the candidates counted (those with a true loss); default all.
        level: the intervals' level.
        mass: the central share of outcomes the range holds.

    Returns:
        None when the distribution is unknown or ``among`` is empty.
    """
    if not 0 < mass < 1:
        raise InputError(f"`mass` must be in (0, 1), got {mass}")
    if getattr(pred, "replicates", None) is None:
        return None
    counts = coverage_counts(pred.replicates, among, level)
    n = int(pred.replicates.shape[0] if among is None else
            np.arange(pred.replicates.shape[0])[np.asarray(among)].size)
    if n == 0:
        return None
    a = (1 - mass) / 2
    low, high = np.quantile(counts, [a, 1 - a], method="inverted_cdf")
    return ExpectedCoverage(n=n, low=int(low), high=int(high), mass=float(mass),
                            all_held=float(np.mean(counts == n)),
                            mean=float(counts.mean()))
