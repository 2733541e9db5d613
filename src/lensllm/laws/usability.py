"""Is a fit usable? Flags and reasons for each curve of a :class:`~lensllm.laws.BatchFit`.

Why: a least-squares fit always returns numbers, and ``success`` only says the optimiser
stopped; a user reading ``L(D*)`` needs to know when those numbers mean nothing. A fit is
marked not usable, with the reason, when:

- it did not converge (``success`` is false);
- the measured curve increases with ``D`` (the least-squares slope of ``log L`` on
  ``log D`` over the positive sizes is above ``max_slope``): every law here decreases, so
  its prediction is an extrapolation of a shape the data do not have;
- its residuals are far above the noise: log-space RMSE above ``max_rmse`` (default 0.1,
  about 10% of the loss; fits on the published tables are at most a few percent), or above
  ``noise_factor`` times a given measurement noise;
- a non-linear parameter or the scale ``log B`` ends within ``bound_tol`` (relative to the
  box width) of its bound: the optimum lies outside the law's range, so the value is set
  by the box, not by the data.

Intervals: a curve with no more points than parameters has no residuals to resample, so
its interval is ``(0, inf)``; :func:`interval_note` says so in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensllm.laws import _engine
from lensllm.laws._base import BatchFit

__all__ = ["Usability", "assess_fits", "interval_note"]


@dataclass(frozen=True)
class Usability:
    """Per curve: ``usable`` ``(C,)`` and the reasons (``""`` where usable)."""

    usable: np.ndarray
    reasons: tuple[str, ...]


def _log_slope(batch: BatchFit) -> np.ndarray:
    """Least-squares slope of log L on log D per curve, over masked points with D > 0."""
    d = np.broadcast_to(batch.d, batch.loss.shape)
    ok = batch.mask & (d > 0)
    x = np.log(np.where(d > 0, d, 1.0))
    y = np.log(np.where(ok, batch.loss, 1.0))
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(ok, x, 0).sum(axis=1) / n
        my = np.where(ok, y, 0).sum(axis=1) / n
        dx = np.where(ok, x - mx[:, None], 0.0)
        dy = np.where(ok, y - my[:, None], 0.0)
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
    return np.where(n >= 2, slope, 0.0)


def _at_bounds(batch: BatchFit, tol: float) -> list[list[str]]:
    """Names of the non-linear parameters (and ``B``) at their bounds, per curve."""
    lower, upper = _engine.full_bounds(batch.law, batch.loss, batch.mask, batch.aux)
    names = [p.name for p in batch.law.theta_params()] + ["B"]
    k = len(names)
    width = upper[:, :k] - lower[:, :k]
    phi = batch.raw.phi[:, :k]
    near = (phi - lower[:, :k] <= tol * width) | (upper[:, :k] - phi <= tol * width)
    return [[names[j] for j in range(k) if near[i, j]] for i in range(phi.shape[0])]


def assess_fits(batch: BatchFit, *, max_rmse: float = 0.1, noise: float | None = None,
                noise_factor: float = 3.0, max_slope: float = 0.0,
                bound_tol: float = 1e-3) -> Usability:
    """Mark each fit of ``batch`` usable or not, with the reasons (see the module)."""
    slope = _log_slope(batch)
    bounds = _at_bounds(batch, bound_tol)
    limit = max_rmse if noise is None else min(max_rmse, noise_factor * noise)
    usable, reasons = [], []
    success, rmse = batch.success, batch.rmse  # computed over all curves: read once
    for i in range(len(batch)):
        why = []
        if not success[i]:
            why.append("did not converge")
        if slope[i] > max_slope:
            why.append(f"loss increases with D (log-log slope {slope[i]:+.3g})")
        if rmse[i] > limit:
            why.append(f"residuals far above the noise (log RMSE {rmse[i]:.3g} > "
                       f"{limit:.3g})")
        if bounds[i]:
            why.append(f"{', '.join(bounds[i])} at the bound of its range")
        usable.append(not why)
        reasons.append("; ".join(why))
    return Usability(usable=np.array(usable, dtype=bool), reasons=tuple(reasons))


def interval_note(batch: BatchFit) -> list[str]:
    """Per curve, why its interval is ``(0, inf)`` (``""`` where the interval is finite)."""
    n_pts = batch.mask.sum(axis=1)
    p = batch.law.n_params
    return [f"no interval: {int(n)} points for {p} parameters leave no residual to "
            "resample; add sizes" if n <= p else "" for n in n_pts]
