"""How much data a fitted law needs to reach a loss goal, with a bootstrap interval.

Every law is ``L(D) = B * x(D; theta) + E`` with a basis ``x`` that falls with ``D``, so the
size that reaches a goal ``g`` solves ``x(D) = (g - E) / B``:

- ``g <= E``: the fitted curve never gets there (the goal is at or below the floor the law
  tends to); the answer is "never" only when ``g`` is also below the lower end of ``E``'s
  interval, otherwise it is an interval with no upper end (:attr:`DataNeeded.never`);
- power law ``x = D**-alpha``: ``D = ((g - E) / A)**(-1 / alpha)``;
- rectified law ``x = 1 / (D_l + D**beta)``: ``D = (B / (g - E) - D_l)**(1 / beta)``, and 0
  when ``g`` is at or above the zero-shot value ``B / D_l + E``;
- LensLLM law: the same with ``F(Theta, t)`` in place of ``D_l``.

The interval comes from the replicates behind the loss interval
(:meth:`lensllm.laws.BatchFit.replicates`): replicate ``r`` is the curve
``L_r(D) * exp(n_r)`` (refitted parameters, one resampled log residual), and its data need is
the ``D`` where that curve meets ``g``. Each replicate curve falls with ``D``, so the
``q``-quantile of the replicates' data needs is the size where the ``q``-quantile of their
losses equals ``g``: the interval of the data needed is the loss interval read sideways
(tested numerically). Quantiles are taken in ``log D``; replicates that never reach the goal
count as ``D = inf``, so an upper end can be unbounded.

Example:
    >>> import numpy as np
    >>> from lensllm.laws import PowerLaw, power_loss
    >>> from lensllm.laws.inverse import plan_data
    >>> d = np.geomspace(100, 12800, 8)
    >>> batch = PowerLaw().fit_many(d, power_loss(d, 30.0, 0.5, 1.0)[None, :])
    >>> round(float(plan_data(batch, 1.1).data_needed[0]))  # (0.1 / 30)**-2
    90000
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensllm.exceptions import InputError
from lensllm.laws import _engine
from lensllm.laws._inversion import bisect_basis, data_needed_at, quantile_with_infinities

__all__ = ["DataNeeded", "plan_data", "data_needed_at", "quantile_with_infinities",
           "bisect_basis"]


@dataclass(frozen=True)
class DataNeeded:
    """The data each curve needs to reach a loss goal (see :func:`plan_data`).

    Attributes:
        goal: the loss goal per curve ``(C,)``.
        data_needed: the fitted curve's answer ``(C,)``; ``inf`` when ``goal <= E`` (the
            answer is then "never" only when the goal is also below ``E``'s interval:
            :attr:`never`).
        lower, upper: the bootstrap interval ``(C,)`` at ``level``; ``upper`` is ``inf``
            when more than ``(1 - level) / 2`` of the replicates never reach the goal.
        floor, floor_lower, floor_upper: the fitted ``E`` and its bootstrap interval ``(C,)``.
        level: central coverage of the intervals.
        no_info: curves with as many points as parameters (interval ``(0, inf)``) ``(C,)``.
        law_data_needed: the fitted law's own answer ``(C,)``; equal to ``data_needed``
            unless a calibration moved the point estimate (the median warp).
        calibration: the :class:`lensllm.laws.calibration.Calibration` behind the
            interval, or None (the bootstrap alone).
    """

    goal: np.ndarray
    data_needed: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    floor: np.ndarray
    floor_lower: np.ndarray
    floor_upper: np.ndarray
    level: float
    no_info: np.ndarray
    law_data_needed: np.ndarray | None = None
    calibration: object | None = None

    @property
    def reached(self) -> np.ndarray:
        """Whether the fitted curve reaches the goal at a finite size ``(C,)``."""
        return np.isfinite(self.data_needed)

    @property
    def never(self) -> np.ndarray:
        """Curves whose answer is "never" ``(C,)``: the fitted curve does not reach the goal
        and the goal lies below the lower end of the floor ``E``'s interval (or too few
        replicates reach it for the interval to have a finite lower end). A goal inside
        ``E``'s interval gets an interval with an unbounded upper end instead."""
        return ~self.reached & ((self.goal < self.floor_lower) | ~np.isfinite(self.lower))

    def note(self, i: int, law_name: str) -> str | None:
        """One plain sentence when curve ``i``'s answer needs one, else None."""
        pct = f"{100 * self.level:.0f}%"
        floor = (f"E = {self.floor[i]:.4g} ({pct} interval [{self.floor_lower[i]:.4g}, "
                 f"{self.floor_upper[i]:.4g}])")
        if self.never[i]:
            return (f"never: the goal {self.goal[i]:.4g} is below the fitted floor {floor}, "
                    f"the loss the {law_name} law tends to with unlimited data")
        if not self.reached[i]:
            return (f"no point estimate: the goal {self.goal[i]:.4g} is at or below the "
                    f"fitted floor {floor} but inside its interval; at least "
                    f"{self.lower[i]:.4g} examples, upper end unbounded")
        if self.data_needed[i] == 0:
            return (f"already reached without fine-tuning: the fitted loss at D = 0 is at or "
                    f"below {self.goal[i]:.4g}")
        if self.no_info[i]:
            return "no interval: as many points as parameters leave no residuals to resample"
        if not np.isfinite(self.upper[i]):
            return (f"upper end unbounded: more than {100 * (1 - self.level) / 2:g}% of the "
                    f"bootstrap replicates never reach {self.goal[i]:.4g} (floor {floor})")
        return None


def plan_data(batch, goal, level: float = 0.9, *, n_boot: int = 200, seed: int = 0,
              calibration=None) -> DataNeeded:
    """The data size at which each fitted curve reaches ``goal``, with an interval.

    Args:
        batch: a :class:`lensllm.laws.BatchFit` (any law).
        goal: the loss goal, one number or one per curve ``(C,)``, finite and ``> 0``.
        level: central coverage of the intervals, in (0, 1).
        n_boot, seed: the bootstrap (the same replicates as ``batch.interval``).
        calibration: a :class:`lensllm.laws.calibration.Calibration`: each replicate's
            answer is unwarped by its drawn ``kappa`` and the point estimate by the median
            one, so the interval is :func:`lensllm.laws.calibration.calibrated_interval`
            read sideways. None: the bootstrap alone (the fit's noise, not the law's error).

    Raises:
        InputError: a goal that is not finite and positive, or a bad ``level``.
    """
    if not 0 < level < 1:
        raise InputError(f"`level` must be in (0, 1), got {level}")
    n_curves = len(batch)
    goal = np.broadcast_to(np.asarray(goal, float), (n_curves,)).copy()
    if not np.all(np.isfinite(goal)) or np.any(goal <= 0):
        raise InputError(f"the loss goal must be finite and > 0, got {goal.tolist()}")
    point = data_needed_at(batch.law, batch.raw.phi, batch.aux, goal)
    phi_star, noise = batch.replicates(n_boot=n_boot, seed=seed)
    _, n_rep, p = phi_star.shape
    aux_r = _engine._repeat_aux(batch.aux, n_rep)
    # Replicate r meets the goal where L_r(D) * exp(noise_r) = goal.
    goal_r = (goal[:, None] * np.exp(-noise)).ravel()
    reps = data_needed_at(batch.law, phi_star.reshape(-1, p), aux_r, goal_r)
    reps = reps.reshape(n_curves, n_rep)
    law_point = point
    if calibration is not None:
        from lensllm.laws.calibration import max_sizes, replicate_warps, unwarp_sizes

        d_max = max_sizes(batch)
        kappa = replicate_warps(calibration, n_curves, n_rep, seed)
        reps = unwarp_sizes(reps, d_max[:, None], kappa)
        point = unwarp_sizes(point, d_max, calibration.median)
    with np.errstate(divide="ignore"):
        log_reps = np.log(reps)
    alpha = (1 - level) / 2
    lower = np.exp(quantile_with_infinities(log_reps, alpha, axis=1))
    upper = np.exp(quantile_with_infinities(log_reps, 1 - alpha, axis=1))
    e_star = phi_star[:, :, -1]
    no_info = batch.mask.sum(axis=1) <= p
    lower[no_info], upper[no_info] = 0.0, np.inf
    return DataNeeded(
        goal=goal, data_needed=point, lower=lower, upper=upper, floor=batch.raw.phi[:, -1],
        floor_lower=np.quantile(e_star, alpha, axis=1),
        floor_upper=np.quantile(e_star, 1 - alpha, axis=1), level=level, no_info=no_info,
        law_data_needed=law_point, calibration=calibration)
