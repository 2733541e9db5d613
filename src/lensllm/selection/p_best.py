"""P(best): each candidate's probability of having the lowest loss at ``D*``.

The input is a *joint* predictive distribution: ``R`` replicates of the predicted
``log L(D*)`` of every candidate ``(C, R)``, where replicate ``r`` of all candidates is one
draw of the world (errors shared by the candidates, such as a drift of every curve, are
shared by the column). Each replicate votes for its lowest candidate; exact ties split the
vote. A Jeffreys pseudo-count of one half per candidate keeps every probability off 0 and 1
(``R`` replicates cannot show that something never happens), so that the Brier score of a
confident miss stays finite and a candidate is never declared certain.

Torch-free, numpy only.

Example:
    >>> import numpy as np
    >>> reps = np.array([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    >>> p_best(reps).round(3).tolist()
    [0.5, 0.5]
"""

from __future__ import annotations

import numpy as np

from lensllm.exceptions import InputError

__all__ = ["CLEAR_WINNER", "PSEUDO_COUNT", "brier_score", "p_best"]

#: The leader is a clear winner when its P(best) is above this: more likely to be best
#: than every other candidate together. Below it, the report says there is no clear winner
#: and names the run that would decide it (docs/select.md).
CLEAR_WINNER = 0.5
#: Pseudo-count added to every candidate's votes (Jeffreys' prior for a multinomial).
PSEUDO_COUNT = 0.5


def p_best(replicates: np.ndarray) -> np.ndarray:
    """Probabilities ``(C,)`` summing to 1 from joint replicates ``(C, R)`` (lower is best).

    A NaN or infinite value is never best in its replicate; a replicate where no candidate
    is finite votes for nobody. With no usable replicate the result is uniform.

    Raises:
        InputError: ``replicates`` is not two-dimensional or has no candidate.
    """
    reps = np.asarray(replicates, float)
    if reps.ndim != 2 or reps.shape[0] == 0:
        raise InputError(f"P(best) needs replicates of shape (candidates, replicates), got "
                         f"{reps.shape}")
    n_c = reps.shape[0]
    vals = np.where(np.isfinite(reps), reps, np.inf)
    usable = np.isfinite(vals).any(axis=0)
    vals = vals[:, usable]
    votes = np.zeros(n_c)
    if vals.shape[1]:
        low = vals.min(axis=0)
        winners = vals == low[None, :]
        votes = (winners / winners.sum(axis=0, keepdims=True)).sum(axis=1)
    counts = votes + PSEUDO_COUNT
    return counts / counts.sum()


def brier_score(prob: np.ndarray, best: int) -> float:
    """The multi-class Brier score ``sum_i (p_i - [i == best])**2`` of one forecast.

    0 is a certain right forecast, 2 a certain wrong one, ``1 - 1/C`` the uniform prior.
    """
    prob = np.asarray(prob, float)
    outcome = np.zeros_like(prob)
    outcome[int(best)] = 1.0
    return float(((prob - outcome) ** 2).sum())
