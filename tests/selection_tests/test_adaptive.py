"""The ``adaptive`` selector: exactness on power laws, the drift against its closed form,
pruning and cost against accept-then-stop."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.bench import BudgetView, LossTable
from lensllm.exceptions import InputError
from lensllm.selection import get_selector
from lensllm.selection.adaptive import pooled_drift

SIZES = 200.0 * 2.0 ** np.arange(14)  # 200 ... 1638400, as in the bundled tables
TARGET = float(SIZES[-1])


def table(log_losses: np.ndarray, n_params=None) -> LossTable:
    n = log_losses.shape[0]
    return LossTable(name="synthetic", models=tuple(f"m{i}" for i in range(n)), sizes=SIZES,
                     losses=np.exp(log_losses), zero_shot=None,
                     n_params=np.full(n, 1e8) if n_params is None else np.asarray(n_params),
                     family=("",) * n)


def power_laws(slopes, intercepts) -> np.ndarray:
    x = np.log(SIZES)
    return np.asarray(intercepts)[:, None] + np.asarray(slopes)[:, None] * x[None, :]


def test_exact_on_pure_power_laws():
    """Straight lines in log-log: L(D*) is predicted exactly, no drift, zero-width interval."""
    slopes = np.array([-0.05, -0.08, -0.11, -0.06])
    icpt = np.array([1.5, 1.8, 2.1, 1.4])
    t = table(power_laws(slopes, icpt))
    view = BudgetView(t, TARGET / 64, TARGET)
    sel = get_selector("adaptive").select(view)
    truth = np.exp(icpt + slopes * np.log(TARGET))  # closed form
    np.testing.assert_allclose(sel.predicted, truth, rtol=1e-9)
    assert sel.selected == int(np.argmin(truth))
    assert sel.info["drift_per_log_d"] == 0.0
    np.testing.assert_allclose(sel.lower, sel.upper, rtol=1e-9)


def quadratic_drift(q: float, d: float, k: int, n_points: int) -> float:
    """Closed-form drift of ``k = 3``-point lines through ``y = -q x**2`` on a grid of step ``d``.

    The least-squares line through three equally spaced points of a parabola has the slope
    of the chord and passes through the mean point; at a distance ``h`` beyond the window's
    last point its error is ``q ((h + d)**2 - 2 d**2 / 3)``. The drift is the slope through
    the origin over the windows ending ``h = d, 2d, ...`` below the largest point.
    """
    assert k == 3
    h = d * np.arange(1, n_points - k + 1)
    err = q * ((h + d) ** 2 - 2 * d * d / 3)
    return float((h * err).sum() / (h * h).sum())


def test_pooled_drift_matches_its_closed_form():
    x = np.log(SIZES[:9])
    q = 0.004
    y = 1.2 - 0.03 * x - q * (x - x[0]) ** 2
    ys = np.vstack([y, y + 0.1, y - 0.2])  # identical shapes: no spread, no shrinkage
    c, m = pooled_drift(x, ys, 3)
    assert m == 3
    assert c == pytest.approx(quadratic_drift(q, np.log(2.0), 3, x.size), rel=1e-9)


def test_pooled_drift_ignores_flattening_and_noise():
    x = np.log(SIZES[:9])
    flat = 1.2 - 0.03 * x + 0.004 * (x - x[0]) ** 2  # convex: lines over-predict gains
    assert pooled_drift(x, np.vstack([flat, flat + 0.1]), 3) == (0.0, 2)
    rng = np.random.default_rng(0)
    noise = 1.0 - 0.05 * x + 0.01 * rng.standard_normal((30, x.size))
    c, _ = pooled_drift(x, noise, 3)
    assert c < 0.002  # no curvature in the data: shrunk to (nearly) nothing
    single = np.full((2, x.size), np.nan)
    single[0] = flat
    assert pooled_drift(x, single, 3) == (0.0, 1)  # one candidate cannot be pooled


def test_drift_brings_steepening_curves_closer():
    """Curves with a common steepening: the corrected prediction beats the bare line."""
    rng = np.random.default_rng(3)
    x = np.log(SIZES)
    c = 8
    q = rng.uniform(0.002, 0.004, c)
    y = (rng.uniform(1.0, 1.5, c)[:, None] - 0.02 * x[None, :]
         - q[:, None] * (x[None, :] - x[0]) ** 2)
    t = table(y)
    with_drift = get_selector("adaptive").select(BudgetView(t, TARGET / 16, TARGET))
    without = get_selector("adaptive", drift=False).select(BudgetView(t, TARGET / 16, TARGET))
    err = lambda p: np.sqrt(np.mean((np.log(p) - y[:, -1]) ** 2))
    assert with_drift.info["drift_per_log_d"] > 0
    assert err(with_drift.predicted) < 0.5 * err(without.predicted)
    assert with_drift.selected == without.selected  # a common shift: same ranking


def test_pruned_candidate_pays_only_its_first_runs():
    slopes = np.array([-0.05, -0.05, -0.05])
    icpt = np.array([1.0, 1.02, 3.0])  # the last one is hopeless
    y = power_laws(slopes, icpt) + 1e-3 * np.random.default_rng(1).standard_normal((3, 14))
    view = BudgetView(table(y), TARGET / 8, TARGET)
    sel = get_selector("adaptive").select(view)
    assert sel.info["pruned"] == [False, False, True]
    paid = view.paid
    assert paid[2].sum() == 3 and paid[2, -3:].all()  # the 3 largest affordable sizes
    assert paid[0].sum() > 3


def test_cost_never_above_ats():
    rng = np.random.default_rng(5)
    x = np.log(SIZES)
    y = (rng.uniform(0.5, 1.5, 12)[:, None] - rng.uniform(0.02, 0.1, 12)[:, None] * x
         + 0.01 * rng.standard_normal((12, 14)))
    t = table(y, n_params=rng.uniform(1e8, 3e9, 12))
    for ratio in (8, 64, 512):
        v_ad, v_ats = BudgetView(t, TARGET / ratio, TARGET), BudgetView(t, TARGET / ratio, TARGET)
        get_selector("adaptive").select(v_ad)
        get_selector("ats").select(v_ats)
        assert v_ad.cost() <= v_ats.cost()


@pytest.mark.parametrize("kwargs, word", [({"k": 2}, "k"), ({"delta": 0}, "delta"),
                                          ({"growth": -1}, "growth"), ({"level": 1.0}, "level")])
def test_bad_hyperparameters_name_the_option(kwargs, word):
    with pytest.raises(InputError, match=word):
        get_selector("adaptive", **kwargs)
