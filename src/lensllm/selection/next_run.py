"""The one run that would best decide which candidate is best, per FLOP.

When no candidate is a clear winner (its P(best) below
:data:`lensllm.selection.p_best.CLEAR_WINNER`), the useful advice is which run to pay for
next. A run of candidate ``i`` at size ``s`` (between its largest paid run ``d_i`` and
``D*``) leaves only part of its extrapolation error: the error scales with the distance
still to go, so the part left is ``rho = (log(D*/s) / log(D*/d_i)) ** GROWTH`` of it (0 for
a run at ``D*`` itself) and the rest is revealed by the run.

Pre-posterior value: for ``K`` hypothetical outcomes of the run (each a replicate of the
candidate's error, of which the run reveals the share ``sqrt(1 - rho**2)``), the
candidate's replicates are re-centred on the outcome and shrunk by ``rho``, and the
leader's P(best) recomputed. The value of the run is the expected rise of the leader's
P(best) (how much more decided the verdict becomes); divided by its cost, the best
``(candidate, size)`` is the advice. Only contenders (P(best) of at least
:data:`CONTENDER` or the three highest) are considered. An approximation: the run's
outcome informs only its own candidate (not the drift shared with the others).

Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lensllm.selection.p_best import p_best
from lensllm.selection.predictive import GROWTH, Predictive

__all__ = ["CONTENDER", "DecisiveRun", "decisive_run"]

#: Candidates with at least this P(best) (or the three highest) are considered.
CONTENDER = 0.05
#: Hypothetical outcomes per (candidate, size) and replicates read for each.
N_OUTCOMES = 48
N_READ = 1000


@dataclass(frozen=True)
class DecisiveRun:
    """The advised run.

    Attributes:
        candidate: index of the candidate.
        size: training examples of the run.
        cost: its estimated cost (FLOPs on real runs; parameters x examples on tables).
        gain: expected rise of the leader's P(best).
    """

    candidate: int
    size: float
    cost: float
    gain: float


def _value(reps: np.ndarray, i: int, rho: float, rng: np.random.Generator) -> float:
    """Expected leader P(best) after a run that leaves ``rho`` of candidate ``i``'s error."""
    center = np.median(reps[i])
    dev = reps[i] - center
    total = 0.0
    picks = rng.integers(dev.size, size=N_OUTCOMES)
    for k in picks:
        new = reps.copy()
        new[i] = center + np.sqrt(max(0.0, 1 - rho * rho)) * dev[k] + rho * dev
        total += float(p_best(new).max())
    return total / N_OUTCOMES


def decisive_run(predictive: Predictive, largest: np.ndarray, target: float,
                 sizes: Sequence[float], cost: Callable[[int, float], float | None], *,
                 seed: int = 0) -> DecisiveRun | None:
    """The ``(candidate, size)`` run with the highest expected gain per unit of cost.

    Args:
        predictive: the joint distribution (None is returned when it is unknown).
        largest: each candidate's largest paid size ``(C,)``.
        target: ``D*``.
        sizes: sizes a run could use (those between a candidate's largest paid run and
            ``D*`` are considered; ``D*`` itself always is).
        cost: ``(candidate, size) -> cost`` or None when it cannot be estimated.
        seed: of the hypothetical outcomes.
    """
    if predictive.replicates is None:
        return None
    rng = np.random.default_rng(seed)
    reps = predictive.replicates[:, :N_READ]
    prob = p_best(reps)
    now = float(prob.max())
    order = np.argsort(-prob)
    contenders = [int(i) for i in order if prob[i] >= CONTENDER]
    contenders = sorted(set(contenders) | {int(i) for i in order[:3]})
    best: DecisiveRun | None = None
    options = sorted({float(s) for s in sizes} | {float(target)})
    for i in contenders:
        d_i = float(largest[i])
        for s in options:
            if not (np.isfinite(d_i) and d_i < s <= target):
                continue
            c = cost(i, s)
            if c is None or not c > 0:
                continue
            rho = (np.log(target / s) / np.log(target / d_i)) ** GROWTH
            gain = _value(reps, i, float(rho), rng) - now
            if best is None or gain / c > best.gain / best.cost:
                best = DecisiveRun(i, s, float(c), float(gain))
    return best
