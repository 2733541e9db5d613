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
5. **Rank** by the predicted ``L(D*)`` of the final lines; report the calibrated intervals.

Hyperparameters (``k``, ``delta``, ``growth``, ``level``) were chosen by leave-one-table-out
on the two bundled tables (``docs/adaptive.md``).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from lensllm.exceptions import InputError
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["Adaptive"]


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
    """Budgeted selection: largest runs first, pooled self-calibration, pruning, AtS.

    Args:
        k: runs per candidate before any decision (the ``k`` largest affordable sizes).
        delta: AtS acceptance threshold, in residual standard deviations.
        growth: exponent of the interval's growth with extrapolation distance.
        level: coverage of the reported intervals.
        prune: drop candidates whose interval cannot reach the leader's.
    """

    name = "adaptive"
    summary = "largest runs first, self-calibrated intervals, pruning, AtS for contenders"

    def __init__(self, *, k: int = 3, delta: float = 5.0, growth: float = 1.5,
                 level: float = 0.9, prune: bool = True) -> None:
        if k < 3:
            raise InputError(f"`k` must be >= 3 (the back-test line needs 2 points), got {k}")
        if not delta > 0:
            raise InputError(f"`delta` must be > 0, got {delta}")
        if not growth > 0:
            raise InputError(f"`growth` must be > 0, got {growth}")
        if not 0 < level < 1:
            raise InputError(f"`level` must be in (0, 1), got {level}")
        self.k, self.delta, self.growth, self.level, self.prune = k, delta, growth, level, prune

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
        predicted = np.exp(pred)
        lower, upper = np.exp(pred - half), np.exp(pred + half)

        def curve(d: np.ndarray) -> np.ndarray:
            return np.exp(a[:, None] * np.log(np.asarray(d, float))[None, :] + b[:, None])

        return Selection(
            score=predicted, selected=int(np.argmin(predicted)), predicted=predicted,
            lower=lower, upper=upper, level=self.level, curve=curve,
            info={"pruned": (~active).tolist(), "points_used": used.sum(1).tolist(),
                  "sigma_backtest": sigma_bt, "interval_log_halfwidth": float(half)})
