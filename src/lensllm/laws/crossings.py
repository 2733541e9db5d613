"""Which fitted curve is lowest at which data size: crossings, their intervals, advice.

A ranking at one size ``D*`` hides that the order of two models can change with the data:
on FLAN, Cerebras-GPT-2.7B is lowest up to ``D*/2`` and OPT-1.3B overtakes it at ``D*``.
Everything here is a pure function of curves sampled on a grid of sizes, so it serves
fitted laws, bootstrap replicates and measured tables alike:

- :func:`find_crossings`: the sizes where two curves swap order (the log-loss difference
  changes sign between two grid points; located by linear interpolation in ``log D``);
- :func:`crossing_intervals`: the same crossings with an interval from replicate curves
  (for each replicate, its crossing of the same pair nearest to the fitted one; a
  replicate without a crossing in the grid counts as 0 when the model that leads after
  the crossing leads throughout, and ``inf`` when the one before it does);
- :func:`leader_segments` and :func:`advice`: who is lowest where, and one sentence a
  manager can act on.

Sizes are numbers of fine-tuning examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from lensllm.laws import _engine
from lensllm.laws._inversion import quantile_with_infinities

__all__ = ["Crossing", "find_crossings", "crossing_intervals", "curve_replicates",
           "leader_segments", "advice", "size_text"]


@dataclass(frozen=True)
class Crossing:
    """Two curves swap order at ``size``.

    Attributes:
        before: index of the curve that is lower just below ``size``.
        after: index of the curve that is lower just above it.
        size: the crossing, in examples.
        lower, upper: its interval (``nan`` without replicates; 0 or ``inf`` where the
            replicates put it outside the grid on that side).
    """

    before: int
    after: int
    size: float
    lower: float = float("nan")
    upper: float = float("nan")


def _sign_changes(log_d: np.ndarray, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zeros of ``diff`` ``(m,)`` between grid points: ``log D`` there and the direction.

    Direction +1: ``diff`` goes from negative to positive. A zero exactly on a grid point
    counts once (on the interval it ends).
    """
    s = np.sign(diff)
    k = np.flatnonzero((s[:-1] * s[1:] < 0) | ((s[1:] == 0) & (s[:-1] != 0)))
    w = diff[k] / (diff[k] - diff[k + 1])
    return log_d[k] + w * (log_d[k + 1] - log_d[k]), np.sign(diff[k + 1] - diff[k])


def find_crossings(sizes: np.ndarray, curves: np.ndarray,
                   indices: list[int] | None = None) -> list[Crossing]:
    """Every size where two of ``curves`` swap order, by size.

    Args:
        sizes: increasing grid ``(m,)``, ``> 0``.
        curves: losses ``(C, m)`` (fitted curves or measured columns), ``> 0``.
        indices: the curves to compare (default all).
    """
    log_d = np.log(np.asarray(sizes, float))
    log_c = np.log(np.asarray(curves, float))
    out = []
    for a, b in combinations(indices if indices is not None else range(len(log_c)), 2):
        where, direction = _sign_changes(log_d, log_c[a] - log_c[b])
        for x, sgn in zip(where, direction):
            # sgn > 0: a - b turns positive, so a was lower before the crossing.
            before, after = (a, b) if sgn > 0 else (b, a)
            out.append(Crossing(before=before, after=after, size=float(np.exp(x))))
    return sorted(out, key=lambda c: c.size)


def crossing_intervals(sizes: np.ndarray, curves: np.ndarray, replicates: np.ndarray,
                       indices: list[int] | None = None, level: float = 0.9) -> list[Crossing]:
    """:func:`find_crossings` of ``curves`` with intervals from ``replicates`` ``(C, R, m)``."""
    log_d = np.log(np.asarray(sizes, float))
    log_r = np.log(np.asarray(replicates, float))
    out = []
    for c in find_crossings(sizes, curves, indices):
        diff = log_r[c.before] - log_r[c.after]  # < 0 where `before` leads
        picks = np.empty(diff.shape[0])
        for r, row in enumerate(diff):
            where, _ = _sign_changes(log_d, row)
            if where.size:
                picks[r] = where[np.argmin(np.abs(where - np.log(c.size)))]
            else:
                picks[r] = np.inf if row[-1] < 0 else -np.inf
        alpha = (1 - level) / 2
        lo = np.exp(quantile_with_infinities(picks, alpha))
        hi = np.exp(quantile_with_infinities(picks, 1 - alpha))
        out.append(Crossing(c.before, c.after, c.size, float(lo), float(hi)))
    return out


def curve_replicates(batch, sizes: np.ndarray, *, n_boot: int = 200,
                     seed: int = 0) -> np.ndarray:
    """The bootstrap replicate curves of a fit at ``sizes``: ``(C, R, m)``.

    The replicates of :meth:`lensllm.laws.BatchFit.replicates` without measurement noise
    (a crossing is a property of the expected curves).
    """
    phi_star, _ = batch.replicates(n_boot=n_boot, seed=seed)
    n_curves, n_rep, p = phi_star.shape
    aux_r = _engine._repeat_aux(batch.aux, n_rep)
    values = _engine.model_values(batch.law, np.asarray(sizes, float),
                                  phi_star.reshape(-1, p), aux_r)
    return values.reshape(n_curves, n_rep, -1)


def leader_segments(sizes: np.ndarray, curves: np.ndarray,
                    indices: list[int] | None = None) -> list[tuple[float, float, int]]:
    """``(start, end, index)`` runs of the grid where one curve is the lowest."""
    idx = np.asarray(indices if indices is not None else range(len(curves)))
    lead = idx[np.argmin(np.asarray(curves)[idx], axis=0)]
    segs: list[tuple[float, float, int]] = []
    start = 0
    for k in range(1, len(lead) + 1):
        if k == len(lead) or lead[k] != lead[start]:
            segs.append((float(sizes[start]), float(sizes[k - 1]), int(lead[start])))
            start = k
    return segs


def size_text(n: float) -> str:
    """``312000`` as ``312k``, ``1.6e6`` as ``1.6M`` (examples)."""
    if not np.isfinite(n):
        return "unbounded"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def advice(names: list[str], segments: list[tuple[float, float, int]],
           crossings: list[Crossing], level: float = 0.9) -> str:
    """One sentence: which model to choose below and above each change of leader.

    ``crossings`` (with intervals) give the switch points; each switch between two
    consecutive leaders uses their crossing nearest to the segment boundary.
    """
    if len(segments) == 1:
        lo, hi, who = segments[0]
        return (f"From {size_text(lo)} to {size_text(hi)} examples {names[who]} has the lowest "
                f"predicted loss throughout: choose {names[who]}.")
    low, high = segments[0][0], segments[-1][1]
    parts = []
    for (_, end, who), (start, _, nxt) in zip(segments[:-1], segments[1:]):
        pair = [c for c in crossings if {c.before, c.after} == {who, nxt}]
        edge = np.sqrt(end * start)
        c = min(pair, key=lambda c: abs(np.log(c.size / edge))) if pair else None
        iv = ""
        if c is not None and np.isfinite(c.lower):
            lo = size_text(c.lower) if c.lower >= low else f"<{size_text(low)}"
            hi = size_text(c.upper) if c.upper <= high else f">{size_text(high)}"
            iv = f" ({100 * level:.0f}% interval {lo} to {hi})"
        parts.append((who, c.size if c is not None else edge, iv))
    (who, at, iv) = parts[0]
    text = f"Below about {size_text(at)} examples{iv} choose {names[who]}"
    for (_, at_prev, _), (who, at, iv) in zip(parts[:-1], parts[1:]):
        text += f"; from {size_text(at_prev)} to about {size_text(at)}{iv}, {names[who]}"
    return text + f"; above, {names[segments[-1][2]]}."
