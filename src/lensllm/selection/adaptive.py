"""``adaptive``: a budgeted selector that decides which runs to pay for and calibrates itself.

The algorithm (design note and measurements: ``docs/adaptive.md``):

1. **Largest sizes first.** Every candidate is fine-tuned on the ``k`` largest affordable
   subsets (``D_max``, ``D_max/2``, ...); a straight line in ``(log D, log L)`` through them
   is its power-phase estimate.
2. **Self-calibrated intervals (pooled across candidates).** How wrong is a line that
   extrapolates? Each candidate's line is refitted without its largest point and asked to
   predict it (a back-test). The back-test errors of all candidates give one error scale
   per doubling of extrapolation, which is grown to the real extrapolation ``D*/D_max`` by
   ``(u / u_backtest) ** growth``. No constant is tied to a table: the scale is measured on
   the table at hand, inside its budget.
3. **Successive halving.** Candidates whose interval for ``L(D*)`` cannot reach the leader's
   (lower bound above the leader's upper bound) stop: they are not fine-tuned further.
4. **Accept-then-stop for contenders.** The remaining candidates are extended towards smaller
   sizes while each new point lies within ``delta`` standard deviations of their line
   (AtS, Lin et al. 2024), which both lengthens the line and detects the pre-power phase.
5. **Pooled drift.** Lines through a curve that still steepens (fine-tuning curves leaving
   the pre-power phase) under-predict later gains, and more so the further they reach.
   Every line the paid runs allow (``k`` consecutive points ending below the largest size)
   is asked to predict the largest size; the error grows with the distance ``h`` (in
   ``log D``). Per candidate, a line through the origin ``error = c_m h``; their mean,
   shrunk by its standard error and kept only if positive, is the table's drift ``c`` per
   unit of ``log D``; each prediction at ``D*`` is lowered by ``c u``. It shifts every
   candidate alike, so the ranking is that of step 4; only the predicted values and the
   intervals move. ``c`` is measured on the table at hand (0 on straight power laws).
6. **Rank** by the predicted ``L(D*)``; report the calibrated intervals.

Hyperparameters (``k``, ``delta``, ``growth``, ``level``) were chosen by leave-one-table-out
on the two bundled tables (``docs/adaptive.md``).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from lensllm.exceptions import InputError
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["Adaptive"]


def pooled_drift(x: np.ndarray, y: np.ndarray, k: int) -> tuple[float, int]:
    """Steepening of extrapolated lines per unit of ``log D``, pooled over candidates.

    Back-tests: for every candidate and every window of ``k`` consecutive observed sizes
    ending at index ``i`` below the largest index ``j``, the least-squares line through the
    window predicts ``y[:, j]``; ``h = x[j] - x[i]`` and ``e = line(x[j]) - y[:, j]``. Each
    candidate's drift is the least-squares slope through the origin ``c_m = sum(h e) /
    sum(h**2)``. Pooled: ``c = mean(c_m)`` with standard error ``s = sd(c_m) / sqrt(M)``,
    shrunk by its own noise, ``c (1 - s**2 / c**2)``, and kept only when positive (a curve
    that steepens; flattening towards the irreducible loss is not extrapolated).

    Args:
        x: ``log D`` of the sizes ``(S,)``.
        y: ``log L`` per candidate ``(C, S)``; NaN where not observed.
        k: points per line.

    Returns:
        ``(c, M)``: the drift (0 when fewer than two candidates have a back-test) and the
        number of candidates behind it.
    """
    j = x.size - 1
    num = np.zeros(y.shape[0])
    den = np.zeros(y.shape[0])
    for i in range(k - 1, j):
        window = slice(i - k + 1, i + 1)
        ok = np.isfinite(y[:, window]).all(1) & np.isfinite(y[:, j])
        if not ok.any():
            continue
        ys = y[ok][:, window]
        slope, icpt = _fit_lines(np.broadcast_to(x[window], ys.shape), ys, np.ones_like(ys))
        err = slope * x[j] + icpt - y[ok, j]
        h = x[j] - x[i]
        num[ok] += h * err
        den[ok] += h * h
    per_model = num[den > 0] / den[den > 0]
    m = per_model.size
    if m < 2:
        return 0.0, m
    c = float(per_model.mean())
    se2 = float(per_model.var(ddof=1)) / m
    if c <= 0 or se2 >= c * c:
        return 0.0, m
    return c * (1.0 - se2 / (c * c)), m


def _fit_lines(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares lines ``y = a x + b`` per row; ``w`` is 0/1 ``(C, S)``."""
    sw = w.sum(1)
    mx = (w * x).sum(1) / sw
    my = (w * y).sum(1) / sw
    sxx = (w * (x - mx[:, None]) ** 2).sum(1)
    sxy = (w * (x - mx[:, None]) * (y - my[:, None])).sum(1)
    a = sxy / sxx
    return a, my - a * mx


@register
class Adaptive(BaseSelector):
    """Budgeted selection: largest runs first, pruning, AtS, pooled drift and calibration.

    Args:
        k: runs per candidate before any decision (the ``k`` largest affordable sizes).
        delta: AtS acceptance threshold, in residual standard deviations.
        growth: exponent of the interval's growth with extrapolation distance.
        level: coverage of the reported intervals.
        prune: drop candidates whose interval cannot reach the leader's.
        drift: correct the predictions by the pooled drift of extrapolated lines (step 5).
    """

    name = "adaptive"
    summary = "largest runs first, pruning, AtS lines bent by a pooled drift, calibrated intervals"

    def __init__(self, *, k: int = 3, delta: float = 5.0, growth: float = 1.5,
                 level: float = 0.9, prune: bool = True, drift: bool = True) -> None:
        if k < 3:
            raise InputError(f"`k` must be >= 3 (the back-test line needs 2 points), got {k}")
        if not delta > 0:
            raise InputError(f"`delta` must be > 0, got {delta}")
        if not growth > 0:
            raise InputError(f"`growth` must be > 0, got {growth}")
        if not 0 < level < 1:
            raise InputError(f"`level` must be in (0, 1), got {level}")
        self.k, self.delta, self.growth, self.level, self.prune = k, delta, growth, level, prune
        self.drift = drift

    def select(self, view):
        n_sizes, n_models = view.sizes.size, view.n_models
        k = self.k
        if n_sizes < k:
            raise NotApplicable(f"needs {k} sizes within the budget, got {n_sizes}")
        x = np.log(view.sizes)
        y = np.full((n_models, n_sizes), np.nan)
        used = np.zeros((n_models, n_sizes), bool)
        models = np.arange(n_models)
        for j in range(n_sizes - k, n_sizes):
            y[:, j] = np.log(view.observe(models, view.sizes[j]))
            used[:, j] = True
        x_target = np.log(view.target)
        z = NormalDist().inv_cdf(0.5 + self.level / 2)

        def predict(weights):
            xx = np.broadcast_to(x, y.shape)
            a, b = _fit_lines(xx, np.nan_to_num(y), weights.astype(float))
            return a * x_target + b, a, b

        # Back-test: the line without the largest point predicts the largest point.
        bt_w = used.copy()
        bt_w[:, -1] = False
        _, a_bt, b_bt = predict(bt_w)
        err = y[:, -1] - (a_bt * x[-1] + b_bt)
        sigma_bt = float(np.sqrt(np.mean(err ** 2)))
        u_bt = x[-1] - x[n_sizes - 2]  # one step of extrapolation beyond the last used point
        u = x_target - x[-1]

        def sigma(u_now: float) -> float:
            return sigma_bt * max(u_now / u_bt, 1.0) ** self.growth

        pred, a, b = predict(used)
        half = z * sigma(u)
        active = np.ones(n_models, bool)
        if self.prune:
            leader_upper = np.min(pred + half)
            active = pred - half <= leader_upper
        # AtS extension for contenders.
        for m in np.flatnonzero(active):
            p = k
            while p < n_sizes - 1:
                w = used[m]
                xs, ys = x[w], y[m, w]
                slope, icpt = np.polyfit(xs, ys, 1)
                resid_sd = float(np.std(ys - (slope * xs + icpt)))
                nxt = n_sizes - p - 1
                y[m, nxt] = np.log(float(view.observe(m, view.sizes[nxt])))
                if abs(y[m, nxt] - (slope * x[nxt] + icpt)) > self.delta * resid_sd:
                    break
                used[m, nxt] = True
                p += 1
        pred, a, b = predict(used)
        drift, n_drift_candidates = pooled_drift(x, y, k) if self.drift else (0.0, 0)
        # Beyond D_max the lines steepen by the drift: a broken line in log-log.
        pred = pred - drift * u
        predicted = np.exp(pred)
        lower, upper = np.exp(pred - half), np.exp(pred + half)
        x_max = x[-1]

        def curve(d: np.ndarray) -> np.ndarray:
            log_d = np.log(np.asarray(d, float))[None, :]
            beyond = np.maximum(log_d - x_max, 0.0)
            return np.exp(a[:, None] * log_d + b[:, None] - drift * beyond)

        return Selection(
            score=predicted, selected=int(np.argmin(predicted)), predicted=predicted,
            lower=lower, upper=upper, level=self.level, curve=curve,
            info={"pruned": (~active).tolist(), "points_used": used.sum(1).tolist(),
                  "sigma_backtest": sigma_bt, "interval_log_halfwidth": float(half),
                  "drift_per_log_d": float(drift), "drift_candidates": n_drift_candidates})
