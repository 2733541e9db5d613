"""Calibrated extrapolation: how wrong a fitted law is beyond its data, measured on the curves.

The bootstrap of :mod:`lensllm.laws` measures the noise of a fit (about 1% in log loss on
the bundled tables), not the error of the law itself: real fine-tuning curves bend beyond
the data in ways no law fitted to the data can see (FLAN's curves keep steepening up to
``D*``). This module measures that error *inside* the data, by back-testing each curve
against its own largest points, and carries it to the real extrapolation.

**Model: a warp of the size axis.** Beyond the largest fitted size ``D_max`` the true curve
is the fitted one read at a warped size,

    ``L_true(D) = L_fit(D_max * (D / D_max) ** (1 + kappa))`` for ``D > D_max``.

``kappa > 0``: the curve falls faster than the law says (a loss is reached with less data);
``kappa < 0``: slower; ``-1``: it stops falling; ``+inf``: it drops at once to the law's
floor ``E``. In ``log D`` the error of the data needed for any loss is proportional to the
distance extrapolated (``log D_true - log D_max = (log D_fit - log D_max) / (1 + kappa)``),
so one ``kappa`` describes every distance: the model has no growth constant.

**Measured (back-test).** For each curve and ``k = 1, 2, ...`` (while ``k`` points can be
dropped leaving at least one more point than the law has parameters), drop the ``k``
largest points, refit, and ask the refitted law for the data needed to reach the loss
measured at the largest point ``D_J``; with ``D_e`` the largest point kept,
``kappa = log(D_need / D_e) / log(D_J / D_e) - 1`` (``+inf`` when the refitted floor is
above that loss, clipped at ``-1``). The values of all curves and all ``k`` are pooled: no
constant is tuned to a table, the distribution is the table's own.

**Used.** Each bootstrap replicate ``r`` of a fit (:meth:`lensllm.laws.BatchFit.replicates`)
gets a ``kappa_r`` drawn from the pooled back-tests, so replicate ``r`` is the curve
``L_r(w_r(D)) * exp(n_r)`` with ``w_r`` the warp above. Every such curve still falls with
``D``, so the data interval (:func:`lensllm.laws.inverse.plan_data` with ``calibration=``)
is still the loss interval (:func:`calibrated_interval`) read sideways. Point estimates
use the median ``kappa``. Sizes are numbers of examples.

Example:
    >>> import numpy as np
    >>> from lensllm.laws import PowerLaw, power_loss
    >>> d = np.geomspace(100, 102400, 11)
    >>> curves = np.array([power_loss(d, a, 0.4, 1.0) for a in (20.0, 30.0, 40.0)])
    >>> cal = measure_calibration(PowerLaw().fit_many(d, curves))
    >>> cal.kappa.size, round(abs(cal.median), 6)  # exact power laws: no warp
    (21, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lensllm.exceptions import InputError
from lensllm.laws import _engine
from lensllm.laws._inversion import data_needed_at, quantile_with_infinities

__all__ = ["Calibration", "measure_calibration", "backtest_warps", "max_sizes", "warp_sizes",
           "unwarp_sizes", "replicate_warps", "calibrated_predict", "calibrated_interval",
           "calibrated_curve_replicates", "MAX_BACKTEST_CURVES", "MIN_BACKTESTS",
           "shortfall_words"]

#: Fewer pooled back-tests than this and no calibration is made (a 90% interval needs a
#: tail of the distribution to read; with 10 values its ends are the extreme values).
MIN_BACKTESTS = 10
#: The most curves of one fit that are back-tested. The warp is pooled over curves, so a
#: thousand curves (thousands of back-tests) measure it as well as ten thousand; on larger
#: tables this many curves, evenly spaced in table order, are back-tested (the summary
#: names how many), which keeps `fit` on a 10,000-model table within its time goal.
MAX_BACKTEST_CURVES = 1024


@dataclass(frozen=True)
class Calibration:
    """Pooled back-test warps of some curves (see the module docstring).

    Attributes:
        kappa: one warp per back-test ``(n,)``, in ``[-1, inf]``.
        distance: the extrapolation of each back-test, ``log(D_J / D_e)`` ``(n,)``.
        n_curves: curves that gave at least one back-test.
    """

    kappa: np.ndarray
    distance: np.ndarray
    n_curves: int

    @property
    def median(self) -> float:
        """The median warp (the one point estimates use)."""
        return float(quantile_with_infinities(self.kappa, 0.5))

    def summary(self, level: float = 0.9) -> str:
        """One sentence: how many back-tests, the median warp and its central range."""
        a = (1 - level) / 2
        lo, hi = (quantile_with_infinities(self.kappa, q) for q in (a, 1 - a))
        return (f"extrapolation warp kappa measured by {self.kappa.size} back-tests of "
                f"{self.n_curves} curves inside their data: median {self.median:+.3g}, "
                f"{100 * level:.0f}% range [{lo:+.3g}, {hi:+.3g}]")


def max_sizes(batch) -> np.ndarray:
    """The largest fitted size of each curve of a :class:`BatchFit` ``(C,)``."""
    dd = np.broadcast_to(batch.d, batch.loss.shape)
    return np.where(batch.mask, dd, -np.inf).max(axis=1)


def warp_sizes(d: np.ndarray, d_max: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """``w(D)``: ``D`` up to ``d_max``, ``d_max * (D / d_max) ** (1 + kappa)`` beyond.

    Broadcasts its arguments; ``kappa = inf`` sends every size beyond ``d_max`` to ``inf``
    (the law's floor), ``kappa = -1`` to ``d_max`` (a curve that stops falling).
    """
    d, d_max, kappa = np.broadcast_arrays(*(np.asarray(a, float) for a in (d, d_max, kappa)))
    beyond = d > d_max
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        w = d_max * (d / d_max) ** (1 + kappa)
    w = np.where(np.isposinf(kappa), np.inf, w)
    return np.where(beyond, w, d)


def unwarp_sizes(need: np.ndarray, d_max: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """The inverse of :func:`warp_sizes`: the true size whose warp is ``need``.

    ``need`` beyond ``d_max`` becomes ``d_max * (need / d_max) ** (1 / (1 + kappa))``:
    ``d_max`` when ``kappa = inf``, ``inf`` when ``kappa = -1``; an infinite ``need`` (the
    goal is below the floor) stays infinite.
    """
    need, d_max, kappa = np.broadcast_arrays(*(np.asarray(a, float) for a in (need, d_max,
                                                                                kappa)))
    beyond = need > d_max
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        d = d_max * (need / d_max) ** (1 / (1 + kappa))
    d = np.where(np.isposinf(kappa), d_max, d)
    d = np.where(kappa <= -1, np.inf, d)
    return np.where(beyond, np.where(np.isinf(need), np.inf, d), need)


def backtest_warps(batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every back-test of a :class:`BatchFit`'s curves: ``(kappa, distance, curve index)``.

    One vectorised refit per ``k`` (the ``k`` largest points of every curve dropped), over
    at most :data:`MAX_BACKTEST_CURVES` curves (evenly spaced in table order).
    """
    law, mask = batch.law, batch.mask
    dd = np.broadcast_to(batch.d, mask.shape)
    counts = mask.sum(axis=1)
    tested = np.ones(mask.shape[0], bool)
    if mask.shape[0] > MAX_BACKTEST_CURVES:  # the others are not back-tested
        tested[:] = False
        tested[np.linspace(0, mask.shape[0] - 1, MAX_BACKTEST_CURVES).round().astype(int)] = True
    order = np.argsort(~mask, axis=1, kind="stable")  # observed columns first, by size
    rank = np.cumsum(mask, axis=1)
    rows = np.arange(mask.shape[0])
    last = order[rows, counts - 1]
    out_k, out_h, out_c = [], [], []
    for k in range(1, int(counts.max()) - law.n_params):
        ok = tested & (counts - k >= law.n_params + 1)
        if not ok.any():
            break
        keep = (mask & (rank <= (counts - k)[:, None]))[ok]
        aux = {key: np.asarray(v)[ok] for key, v in batch.aux.items()}
        d = batch.d if np.ndim(batch.d) == 1 else batch.d[ok]
        raw = _engine.fit_curves(law, d, batch.loss[ok], keep, aux, n_starts=law.n_starts,
                                 max_iter=law.max_iter)
        good = np.isfinite(raw.phi).all(axis=1) & np.isfinite(raw.sse)
        idx = rows[ok]
        d_end = dd[idx, order[idx, counts[idx] - 1 - k]]
        d_top = dd[idx, last[idx]]
        need = data_needed_at(law, raw.phi, aux, batch.loss[idx, last[idx]])
        h = np.log(d_top / d_end)
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.maximum(np.log(need / d_end) / h - 1.0, -1.0)
        out_k.append(kappa[good])
        out_h.append(h[good])
        out_c.append(idx[good])
    if not out_k:
        return np.zeros(0), np.zeros(0), np.zeros(0, int)
    return np.concatenate(out_k), np.concatenate(out_h), np.concatenate(out_c)


def measure_calibration(batches, max_distance: float = np.inf) -> Calibration | None:
    """Pool the back-tests of one or several :class:`BatchFit` (for example all candidates).

    ``max_distance`` (``log D``): the extrapolation the question asks for (``log(D* /
    D_max)``); back-tests that extrapolate further are left out (their fits have fewer
    points than the question's and answer a harder question), unless that leaves fewer
    than :data:`MIN_BACKTESTS`. Returns None when fewer than :data:`MIN_BACKTESTS`
    back-tests are possible at all: the caller keeps the bootstrap and says so.
    """
    if not isinstance(batches, Sequence):
        batches = [batches]
    parts = [backtest_warps(b) for b in batches]
    kappa = np.concatenate([p[0] for p in parts])
    if kappa.size < MIN_BACKTESTS:
        return None
    near = [p[1] <= max_distance * (1 + 1e-9) for p in parts]
    if sum(int(n.sum()) for n in near) >= MIN_BACKTESTS:
        parts = [tuple(a[n] for a in p) for p, n in zip(parts, near)]
    n_curves = sum(np.unique(p[2]).size for p in parts)
    return Calibration(kappa=np.concatenate([p[0] for p in parts]),
                       distance=np.concatenate([p[1] for p in parts]), n_curves=int(n_curves))


def shortfall_words(n_points, n_params: int, law_name: str) -> str:
    """Why :func:`measure_calibration` gave None, with the minimum it needs.

    A curve of ``n`` points gives ``n - n_params - 1`` back-tests (a refit keeps at least
    one point more than the law has parameters); :data:`MIN_BACKTESTS` are needed in all.

    Args:
        n_points: points per curve (the zero-shot point included where the law uses it).
        n_params: the law's parameters.
        law_name: for the sentence.
    """
    n_points = [int(n) for n in n_points]
    possible = sum(max(0, n - n_params - 1) for n in n_points)
    return (f"none: the {law_name} law's back-tests need at least {n_params + 2} points per "
            f"candidate (zero-shot included) and {MIN_BACKTESTS} back-tests in all; "
            f"{len(n_points)} candidate(s) with {', '.join(map(str, sorted(set(n_points))))} "
            f"points give {possible}; intervals are the bootstrap alone (the fit's noise)")


def replicate_warps(calibration: Calibration, n_curves: int, n_rep: int,
                    seed: int) -> np.ndarray:
    """The warp of each bootstrap replicate ``(C, R)``, drawn from the pooled back-tests.

    Seeded so that the loss interval and the data interval use the same draws.
    """
    rng = np.random.default_rng(seed + 2)
    return calibration.kappa[rng.integers(calibration.kappa.size, size=(n_curves, n_rep))]


def calibrated_predict(batch, d: np.ndarray, calibration: Calibration) -> np.ndarray:
    """``L(d)`` per curve ``(C, m)`` with the median warp beyond each curve's ``D_max``."""
    d = batch._check_d(d)
    w = warp_sizes(d[None, :], max_sizes(batch)[:, None], calibration.median)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _engine.model_values(batch.law, w, batch.raw.phi, batch.aux)


def calibrated_interval(batch, d: np.ndarray, calibration: Calibration, level: float = 0.9,
                        *, n_boot: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Prediction interval of a new loss measurement at ``d``, with the warp's error.

    Like :meth:`lensllm.laws.BatchFit.interval` (same replicates, same noise), each
    replicate read at its warped sizes. Returns ``(lower, upper)``, each ``(C, m)``.
    """
    if not 0 < level < 1:
        raise InputError(f"`level` must be in (0, 1), got {level}")
    d = batch._check_d(d)
    phi_star, noise = batch.replicates(n_boot=n_boot, seed=seed)
    n_curves, n_rep, p = phi_star.shape
    kappa = replicate_warps(calibration, n_curves, n_rep, seed)
    w = warp_sizes(d[None, None, :], max_sizes(batch)[:, None, None], kappa[..., None])
    aux_r = _engine._repeat_aux(batch.aux, n_rep)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        pred = _engine.model_values(batch.law, w.reshape(n_curves * n_rep, -1),
                                    phi_star.reshape(-1, p), aux_r)
    log_pred = np.log(np.maximum(pred, 1e-300)).reshape(n_curves, n_rep, -1) + noise[..., None]
    alpha = (1 - level) / 2
    lo = np.exp(np.quantile(log_pred, alpha, axis=1))
    hi = np.exp(np.quantile(log_pred, 1 - alpha, axis=1))
    no_info = batch.mask.sum(axis=1) <= p
    lo[no_info], hi[no_info] = 0.0, np.inf
    return lo, hi


def calibrated_curve_replicates(batch, sizes: np.ndarray, calibration: Calibration, *,
                                n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """Bootstrap replicate curves ``(C, R, m)`` without noise, each read at a warped size.

    Replicate ``r`` of every curve gets the *same* warp (one draw per replicate, shared):
    the drift of a table moves all its curves alike, so the order of two curves, and where
    it changes, is not blurred by independent warps (used for crossings).
    """
    phi_star, _ = batch.replicates(n_boot=n_boot, seed=seed)
    n_curves, n_rep, p = phi_star.shape
    kappa = replicate_warps(calibration, 1, n_rep, seed)[0]
    w = warp_sizes(np.asarray(sizes, float)[None, None, :], max_sizes(batch)[:, None, None],
                   kappa[None, :, None])
    aux_r = _engine._repeat_aux(batch.aux, n_rep)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        values = _engine.model_values(batch.law, w.reshape(n_curves * n_rep, -1),
                                      phi_star.reshape(-1, p), aux_r)
    return values.reshape(n_curves, n_rep, -1)
