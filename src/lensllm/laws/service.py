"""The one laws service: fit a candidate's points, predict ``L(D*)``, give the interval.

Every caller that turns measured points into a prediction goes through here: ``lensllm
fit`` and :func:`lensllm.fit`, the law-fit selectors (``vanilla_fit``, ``rectified_fit``,
``lensllm``), the data plan of ``lensllm select`` and the laws drawn in its report. So the
same points give the same numbers whichever command asks.

The rules, written once:

- **Points.** A law defined at ``D = 0`` (rectified, LensLLM) gets the zero-shot loss as
  its point at ``D = 0`` when one is known (it costs no fine-tuning); the power law, infinite
  at ``D = 0``, does not (:func:`with_zero_shot`).
- **Interval policy**, an explicit argument with one default, :data:`DEFAULT_INTERVAL`:

  - ``"calibrated"``: the residual bootstrap plus the law's own extrapolation error,
    measured by back-testing the fitted curves inside their data
    (:mod:`lensllm.laws.calibration`); the point estimate is the law read at the median
    warp. When too few back-tests are possible it falls back to the bootstrap, and
    :attr:`Prediction.interval` says ``"bootstrap"``.
  - ``"bootstrap"``: the residual bootstrap alone (the fit's noise, not the law's error);
    the point estimate is the law's own.
  - ``None``: no interval; the point estimate is the law's own (the benchmarks rank on it:
    it is the cheapest answer and what the published tables measure).

- **Predictive distribution.** :func:`predictive_samples` gives the replicate predictions
  behind every interval (bootstrap refits, one resampled residual each, read at their
  calibrated warp): quantiles of these samples are the interval, and anything else drawn
  from the joint distribution (the chance of each candidate being best) reads the same
  replicates.

Sizes are numbers of fine-tuning examples; losses are test losses (any unit, one per table).

Example:
    >>> import numpy as np
    >>> from lensllm.laws import RectifiedLaw, rectified_loss
    >>> from lensllm.laws.service import fit_points, predict_at
    >>> d = np.array([200, 400, 800, 1600, 3200.0])
    >>> losses = np.array([rectified_loss(d, 40.0, 10.0, 0.5, e) for e in (1.0, 1.2)])
    >>> batch = fit_points(RectifiedLaw(), d, losses, zero_shot=[5.0, 5.2])
    >>> pred = predict_at(batch, 6400, interval="bootstrap")
    >>> np.round(pred.predicted, 3).tolist()  # 40 / (10 + 6400 ** 0.5) + E
    [1.444, 1.644]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lensllm.exceptions import InputError, LensLLMError
from lensllm.laws import _engine
from lensllm.laws._base import BaseLaw, BatchFit
from lensllm.laws.calibration import (
    Calibration,
    calibrated_interval,
    calibrated_predict,
    max_sizes,
    measure_calibration,
    replicate_warps,
    warp_sizes,
)

__all__ = ["INTERVAL_POLICIES", "DEFAULT_INTERVAL", "DEFAULT_LEVEL", "N_BOOT", "Prediction",
           "check_interval", "with_zero_shot", "fit_points", "fit_candidate", "calibrate",
           "predict_curves", "predict_band", "predict_at", "predictive_samples",
           "parameter_errors"]

#: The interval policies (see the module docstring).
INTERVAL_POLICIES = ("calibrated", "bootstrap")
#: The one default of every caller.
DEFAULT_INTERVAL = "calibrated"
#: The central coverage of every interval unless a caller asks for another.
DEFAULT_LEVEL = 0.9
#: Bootstrap replicates behind every interval (and every predictive sample).
N_BOOT = 200


def check_interval(interval: str | None, *, allow_none: bool = True) -> str | None:
    """``interval`` if it is a policy (or None where allowed); else InputError naming it."""
    if interval is None and allow_none:
        return None
    if interval not in INTERVAL_POLICIES:
        allowed = ", ".join(repr(p) for p in INTERVAL_POLICIES) + (
            " or None" if allow_none else "")
        raise InputError(f"`interval` must be one of {allowed}, got {interval!r}")
    return interval


def with_zero_shot(law: BaseLaw, sizes: Any, losses: Any,
                   zero_shot: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The points a law is fitted to: ``(sizes, losses)`` with the zero-shot loss as the
    point at ``D = 0`` when the law is defined there and ``zero_shot`` is given.

    Args:
        law: the law.
        sizes: fine-tuned sizes ``(S,)``.
        losses: ``(S,)`` for one candidate or ``(C, S)``.
        zero_shot: one number, ``(C,)``, or None.

    Returns:
        ``(d, y)`` with ``S`` or ``S + 1`` points.
    """
    d, y = np.asarray(sizes, float), np.asarray(losses, float)
    if zero_shot is None or law.min_size() > 0:
        return d, y
    z = np.asarray(zero_shot, float)
    d = np.concatenate([[0.0], d])
    if y.ndim == 1:
        return d, np.concatenate([[float(z)], y])
    return d, np.column_stack([np.broadcast_to(z, (y.shape[0],)), y])


def fit_points(law: BaseLaw, sizes: Any, losses: Any, zero_shot: Any = None, *,
               names: Sequence[str] | None = None, **aux: Any) -> BatchFit:
    """Fit ``law`` to every candidate's points in one vectorised pass.

    Args:
        law: the law.
        sizes: fine-tuned sizes ``(S,)`` shared by the candidates.
        losses: ``(C, S)``.
        zero_shot: ``(C,)`` or None (see :func:`with_zero_shot`).
        names: candidate names for messages.
        **aux: the law's extra inputs (``spectra=``, ``t=`` for the LensLLM law).

    Raises:
        InputError, FitError: as :meth:`lensllm.laws.BaseLaw.fit_many`.
    """
    d, y = with_zero_shot(law, sizes, np.atleast_2d(np.asarray(losses, float)), zero_shot)
    return law.fit_many(d, y, names=None if names is None else list(names), **aux)


def fit_candidate(law: BaseLaw, sizes: Any, losses: Any, zero_shot: float | None = None, *,
                  name: str | None = None, **aux: Any) -> tuple[BatchFit | None, str]:
    """Fit ``law`` to one candidate's points, or say why it cannot be.

    Convergence warnings are silenced (the fit's ``success`` and the usability checks
    carry them). Returns ``(fit of one curve, "")`` or ``(None, reason)``.
    """
    d, y = with_zero_shot(law, sizes, losses, zero_shot)
    if d.size < law.n_params:
        return None, f"{d.size} points < {law.n_params} parameters of the {law.name} law"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return law.fit_many(d, y[None, :], names=None if name is None else [name],
                                **aux), ""
    except LensLLMError as exc:
        return None, str(exc).splitlines()[0]


def calibrate(pool: BatchFit | Sequence[BatchFit], target: float,
              interval: str | None = DEFAULT_INTERVAL, *,
              fitted: Sequence[BatchFit] | None = None) -> Calibration | None:
    """The extrapolation warp for predicting at ``target``, or None.

    None unless ``interval`` is ``"calibrated"`` and the fits of ``pool`` allow enough
    back-tests (:func:`lensllm.laws.calibration.measure_calibration`).

    Args:
        pool: the fits whose curves are back-tested (for example every candidate).
        target: the size predicted at; the back-tests are chosen for the distance
            ``log(target / D_max)``, ``D_max`` the largest fitted size of ``fitted``.
        interval: the policy.
        fitted: the fits predicted from (default ``pool``).
    """
    if check_interval(interval) != "calibrated":
        return None
    pool = [pool] if isinstance(pool, BatchFit) else list(pool)
    if not pool:
        return None
    top = max(float(max_sizes(b).max()) for b in (fitted or pool))
    distance = math.log(target / top) if target > top else math.inf
    return measure_calibration(pool, distance)


def predict_curves(batch: BatchFit, sizes: Any,
                   calibration: Calibration | None = None) -> np.ndarray:
    """Point estimates ``L(d)`` per curve ``(C, m)``: the law's own, or read at the median
    warp of ``calibration``."""
    if calibration is None:
        return batch.predict(sizes)
    return calibrated_predict(batch, sizes, calibration)


def predict_band(batch: BatchFit, sizes: Any, calibration: Calibration | None = None,
                 level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The prediction interval ``(lower, upper)``, each ``(C, m)``, of a new loss
    measurement at ``sizes``: the bootstrap, with the warp of ``calibration`` if given.
    A curve with no more points than parameters gets ``(0, inf)``."""
    if calibration is None:
        return batch.interval(sizes, level, n_boot=N_BOOT)
    return calibrated_interval(batch, sizes, calibration, level, n_boot=N_BOOT)


@dataclass(frozen=True)
class Prediction:
    """``L(target)`` per curve of a fit, with the interval of one policy.

    Attributes:
        target: the size predicted at.
        predicted: the point estimate per curve ``(C,)`` (the policy's).
        predicted_law: the fitted law's own value ``(C,)``.
        lower, upper: the interval ``(C,)`` (``(0, inf)`` for a curve with no more points
            than parameters); None when no interval was asked for.
        level: central coverage of the interval (None without one).
        interval: the policy applied: ``"calibrated"``, ``"bootstrap"`` (asked for, or the
            fallback of a calibration without enough back-tests) or None.
        requested: the policy asked for.
        calibration: the warp behind a calibrated interval, else None.
    """

    target: float
    predicted: np.ndarray
    predicted_law: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    level: float | None
    interval: str | None
    requested: str | None
    calibration: Calibration | None

    def summary(self) -> str:
        """One line saying what the intervals are."""
        if self.interval is None:
            return "intervals: none asked for"
        if self.calibration is not None:
            return f"intervals: calibrated; {self.calibration.summary(self.level)}"
        if self.requested == "calibrated":
            return ("intervals: bootstrap alone (the fit's noise, not the law's error): too "
                    "few points per model for the back-tests of a calibration")
        return "intervals: bootstrap alone (the fit's noise, not the law's error)"


def predict_at(batch: BatchFit, target: float, *, interval: str | None = DEFAULT_INTERVAL,
               level: float = DEFAULT_LEVEL,
               pool: Sequence[BatchFit] | None = None) -> Prediction:
    """Predict ``L(target)`` for every curve of ``batch`` with the interval of a policy.

    Args:
        batch: the fits (from :func:`fit_points`).
        target: ``D*``.
        interval: ``"calibrated"`` (default), ``"bootstrap"`` or None (no interval).
        level: central coverage, in (0, 1).
        pool: the fits back-tested for a calibration (default ``[batch]``).
    """
    check_interval(interval)
    if not 0 < level < 1:
        raise InputError(f"`level` must be in (0, 1), got {level}")
    law_point = batch.predict([target])[:, 0]
    if interval is None:
        return Prediction(float(target), law_point, law_point, None, None, None, None, None,
                          None)
    cal = calibrate(pool if pool is not None else [batch], target, interval, fitted=[batch])
    lo, hi = predict_band(batch, [target], cal, level)
    point = law_point if cal is None else predict_curves(batch, [target], cal)[:, 0]
    return Prediction(float(target), point, law_point, lo[:, 0], hi[:, 0], level,
                      "calibrated" if cal is not None else "bootstrap", interval, cal)


def predictive_samples(batch: BatchFit, sizes: Any, calibration: Calibration | None = None,
                       *, noise: bool = True, shared_warp: bool = False,
                       seed: int = 0) -> np.ndarray:
    """The predictive distribution of each curve's loss: replicates ``(C, R, m)``.

    Replicate ``r`` of curve ``c`` is the law refitted to a bootstrap resample
    (:meth:`lensllm.laws.BatchFit.replicates`), read at ``sizes`` warped by the replicate's
    drawn ``kappa`` when ``calibration`` is given, times ``exp`` of one resampled log
    residual when ``noise`` (a new measurement of the loss, as the intervals are; without
    it, the curve itself). The draws are those of :func:`predict_band`: with ``noise``, the
    ``(1 -+ level) / 2`` quantiles of their logs over ``R`` are its interval.

    The warps are drawn independently per curve, as for the interval; ``shared_warp``
    gives replicate ``r`` of every curve the same warp (the drift of a table moves all its
    curves alike), which is what a joint statement about several candidates (who leads,
    where two curves cross, the chance of being best) needs. With the same ``seed`` the
    draws are shared across separate fits too (one fit per candidate).

    Args:
        batch: the fits.
        sizes: ``(m,)``.
        calibration: from :func:`calibrate`, or None (the bootstrap alone).
        noise: include the measurement noise.
        shared_warp: one warp per replicate for all curves (see above).
        seed: the bootstrap's seed (0 is the one of every interval).
    """
    d = batch._check_d(sizes)
    phi_star, resid = batch.replicates(n_boot=N_BOOT, seed=seed)
    n_curves, n_rep, p = phi_star.shape
    grid = np.broadcast_to(d[None, None, :], (n_curves, n_rep, d.size))
    if calibration is not None:
        if shared_warp:
            kappa = np.broadcast_to(replicate_warps(calibration, 1, n_rep, seed),
                                    (n_curves, n_rep))
        else:
            kappa = replicate_warps(calibration, n_curves, n_rep, seed)
        grid = warp_sizes(grid, max_sizes(batch)[:, None, None], kappa[..., None])
    aux_r = _engine._repeat_aux(batch.aux, n_rep)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        values = _engine.model_values(batch.law, grid.reshape(n_curves * n_rep, -1),
                                      phi_star.reshape(-1, p), aux_r)
    values = values.reshape(n_curves, n_rep, -1)
    if noise:
        values = np.maximum(values, 1e-300) * np.exp(resid[..., None])
    return values


def parameter_errors(batch: BatchFit) -> dict[str, np.ndarray]:
    """Standard error of each user-facing parameter per curve ``(C,)``: the standard
    deviation of the parameter over the bootstrap refits behind the intervals.

    NaN for a curve with no more points than parameters (nothing to resample).
    """
    phi_star, _ = batch.replicates(n_boot=N_BOOT, seed=0)
    n_curves, n_rep, p = phi_star.shape
    aux_r = _engine._repeat_aux(batch.aux, n_rep)
    with np.errstate(over="ignore", invalid="ignore"):
        reps = batch.law.user_params(phi_star.reshape(-1, p), aux_r)
    no_info = batch.mask.sum(axis=1) <= p
    out = {}
    for name, values in reps.items():
        v = np.asarray(values, float).reshape(n_curves, n_rep)
        v = np.where(np.isfinite(v), v, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            err = np.nanstd(v, axis=1, ddof=1)
        err[no_info] = np.nan
        out[name] = err
    return out


def data_needed(batch: BatchFit, goal: float, calibration: Calibration | None = None,
                level: float = DEFAULT_LEVEL) -> list[dict[str, Any]]:
    """Per curve, the data needed to reach the loss ``goal``, JSON-ready.

    The answer of :func:`lensllm.laws.inverse.plan_data` (with the warp of
    ``calibration`` when given), one record per curve: ``data_needed`` (the point
    estimate, null when the fitted curve never reaches the goal), ``data_needed_law`` (the
    law's own), ``data_needed_lower`` / ``data_needed_upper`` (the interval; the upper end
    null when unbounded), ``never`` (true only when the goal lies below the lower end of
    the floor ``E``'s interval: then there is no interval either), ``floor_lower`` /
    ``floor_upper`` (``E``'s interval) and ``note`` (a sentence, or null).
    """
    from lensllm.laws.inverse import plan_data

    plan = plan_data(batch, goal, level, n_boot=N_BOOT, calibration=calibration)
    out = []
    for i in range(len(batch)):
        never = bool(plan.never[i])
        out.append({
            "loss_goal": float(goal), "data_needed": _finite(plan.data_needed[i]),
            "data_needed_law": _finite(plan.law_data_needed[i]),
            "data_needed_lower": None if never else _finite(plan.lower[i]),
            "data_needed_upper": None if never else _finite(plan.upper[i]),
            "never": never,
            "floor_lower": float(plan.floor_lower[i]),
            "floor_upper": float(plan.floor_upper[i]),
            "note": plan.note(i, batch.law.name)})
    return out


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
