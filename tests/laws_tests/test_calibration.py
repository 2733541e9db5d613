"""The calibrated extrapolation interval: warps, back-tests, coverage, the sideways reading.

Expected values come from closed forms, from single-curve refits inverted by bisection on
the fitted curve (not the vectorised back-test), or from the generating curves.
"""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.laws import PowerLaw, RectifiedLaw, power_loss, rectified_loss
from lensllm.laws.calibration import (
    MIN_BACKTESTS,
    backtest_warps,
    calibrated_interval,
    calibrated_predict,
    measure_calibration,
    unwarp_sizes,
    warp_sizes,
)
from lensllm.laws.inverse import plan_data

SIZES = 200 * 2.0 ** np.arange(14)  # the bundled tables' columns, 200 to 1,638,400


def steepening_curves(n, seed, noise=0.005):
    """Quadratic in log-log: the local slope keeps growing, as on FLAN; ``(noisy, clean)``."""
    rng = np.random.default_rng(seed)
    x = np.log(SIZES / SIZES[0])
    b, c = rng.uniform(0.01, 0.04, n), rng.uniform(0.002, 0.006, n)
    clean = np.exp(rng.uniform(0.8, 1.4, n)[:, None] - b[:, None] * x - c[:, None] * x ** 2)
    return clean * np.exp(noise * rng.standard_normal(clean.shape)), clean


# --- the warp ----------------------------------------------------------------------------------


def test_warp_closed_form_and_edges():
    d_max = 1000.0
    assert warp_sizes(4000.0, d_max, 0.5) == pytest.approx(1000.0 * 4 ** 1.5)
    assert warp_sizes(500.0, d_max, 0.5) == 500.0  # inside the data: no warp
    assert np.isinf(warp_sizes(4000.0, d_max, np.inf))
    assert warp_sizes(4000.0, d_max, -1.0) == d_max
    assert unwarp_sizes(8000.0, d_max, 0.5) == pytest.approx(4000.0)
    assert unwarp_sizes(8000.0, d_max, np.inf) == d_max
    assert np.isinf(unwarp_sizes(8000.0, d_max, -1.0))
    assert np.isinf(unwarp_sizes(np.inf, d_max, np.inf))
    assert unwarp_sizes(0.0, d_max, 0.3) == 0.0


def test_unwarp_inverts_warp():
    rng = np.random.default_rng(0)
    d = np.exp(rng.uniform(np.log(10), np.log(1e7), 200))
    d_max = np.exp(rng.uniform(np.log(100), np.log(1e5), 200))
    kappa = rng.uniform(-0.9, 3.0, 200)
    np.testing.assert_allclose(unwarp_sizes(warp_sizes(d, d_max, kappa), d_max, kappa), d,
                               rtol=1e-9)


# --- the back-tests ----------------------------------------------------------------------------


def _bisect_need(law_fit, goal, lo=1e-3, hi=1e15):
    """The size where a single fitted curve reaches ``goal``, by bisection on predict."""
    if law_fit.predict([hi])[0] > goal:
        return np.inf
    a, b = np.log(lo), np.log(hi)
    for _ in range(200):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if law_fit.predict([np.exp(mid)])[0] > goal else (a, mid)
    return np.exp(0.5 * (a + b))


def test_backtest_warps_match_single_curve_refits():
    d = np.concatenate([[0.0], SIZES[:9]])
    noisy = np.array([rectified_loss(d, *p) for p in
                      [(40.0, 10.0, 0.5, 1.0), (60.0, 30.0, 0.4, 1.2), (25.0, 3.0, 0.35, 0.8)]])
    noisy *= np.exp(0.01 * np.random.default_rng(5).standard_normal(noisy.shape))
    batch = RectifiedLaw().fit_many(d, noisy)
    kappa, dist, curve = backtest_warps(batch)
    # 10 points, 4 parameters: k = 1..5 leave at least 5 points; 3 curves.
    assert kappa.size == 15
    for kap, h, c in zip(kappa, dist, curve):
        k = int(round(h / np.log(2)))
        keep = d.size - k
        law = RectifiedLaw().fit(d[:keep], noisy[c, :keep])
        need = _bisect_need(law.fit_, noisy[c, -1])
        expected = max(np.log(need / d[keep - 1]) / np.log(d[-1] / d[keep - 1]) - 1, -1.0)
        assert kap == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_exact_laws_give_no_warp_and_the_bootstrap_back():
    d = SIZES[:11]
    curves = np.array([power_loss(d, a, 0.4, 1.0) for a in (20.0, 30.0, 40.0)])
    batch = PowerLaw().fit_many(d, curves)
    cal = measure_calibration(batch)
    np.testing.assert_allclose(cal.kappa, 0.0, atol=1e-6)
    far = [SIZES[-1]]
    np.testing.assert_allclose(calibrated_predict(batch, far, cal), batch.predict(far),
                               rtol=1e-6)


def test_question_distance_keeps_the_nearer_back_tests():
    noisy, _ = steepening_curves(12, 1)
    batch = PowerLaw().fit_many(SIZES[:11], noisy[:, :11])
    every = measure_calibration(batch)
    near = measure_calibration(batch, np.log(8))
    assert every.kappa.size == 12 * 7  # 11 points, 3 parameters: k = 1..7
    assert near.kappa.size == 12 * 3 and np.all(near.distance <= np.log(8) + 1e-9)


def test_too_few_back_tests_give_no_calibration():
    d = SIZES[:6]
    batch = PowerLaw().fit_many(d, power_loss(d, 30.0, 0.4, 1.0)[None, :])
    assert 6 - 3 - 1 < MIN_BACKTESTS
    assert measure_calibration(batch) is None


# --- coverage where the bootstrap fails --------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_calibrated_interval_covers_steepening_curves(seed):
    noisy, clean = steepening_curves(30, seed)
    batch = PowerLaw().fit_many(SIZES[:11], noisy[:, :11])
    goal, target = clean[:, -1], SIZES[-1]
    cal = measure_calibration(batch, np.log(SIZES[-1] / SIZES[10]))
    boot = plan_data(batch, goal)
    calib = plan_data(batch, goal, calibration=cal)

    def cover(p):
        return np.mean((p.lower <= target) & (target <= p.upper))
    assert cover(boot) < 0.2  # the fit's noise says nothing of the steepening
    assert cover(calib) >= 0.8
    lo, hi = calibrated_interval(batch, [target], cal)
    assert np.mean((lo[:, 0] <= goal) & (goal <= hi[:, 0])) >= 0.8


# --- the data interval is the calibrated loss interval read sideways ---------------------------


def test_calibrated_data_interval_maps_to_the_calibrated_loss_interval():
    noisy, clean = steepening_curves(20, 3, noise=0.01)
    batch = PowerLaw().fit_many(SIZES[:11], noisy[:, :11])
    cal = measure_calibration(batch)
    goal = clean[:, -2]
    plan = plan_data(batch, goal, 0.9, calibration=cal)
    np.testing.assert_array_equal(plan.law_data_needed, plan_data(batch, goal).data_needed)
    assert np.all(plan.lower <= plan.data_needed) and np.all(plan.data_needed <= plan.upper)
    rows = np.arange(len(goal))
    lo, _ = calibrated_interval(batch, plan.lower, cal, 0.9)
    # Replicates warped by kappa = inf drop to their floor just beyond D_max: where the lower
    # end sits on that jump, the band steps across the goal there; elsewhere it meets it.
    at_jump = np.isclose(plan.lower, SIZES[10], rtol=1e-9)
    assert 0 < at_jump.sum() < len(goal)
    np.testing.assert_allclose(lo[rows, rows][~at_jump], goal[~at_jump], rtol=5e-3)
    lo_after, _ = calibrated_interval(batch, plan.lower * (1 + 1e-9), cal, 0.9)
    assert np.all(lo[rows, rows][at_jump] >= goal[at_jump])
    assert np.all(lo_after[rows, rows][at_jump] <= goal[at_jump])
    finite = np.isfinite(plan.upper)
    assert finite.sum() >= 10
    _, hi = calibrated_interval(batch, np.where(finite, plan.upper, 1.0), cal, 0.9)
    np.testing.assert_allclose(hi[rows, rows][finite], goal[finite], rtol=5e-3)
    # The point estimate is the law read at the median warp.
    np.testing.assert_allclose(np.diag(calibrated_predict(batch, plan.data_needed, cal)), goal,
                               rtol=1e-6)


def test_large_fits_back_test_an_even_subset_of_curves(monkeypatch):
    """Above MAX_BACKTEST_CURVES curves, exactly that many (evenly spaced) are back-tested,
    each giving the warps it gives when back-tested with all curves."""
    from lensllm.laws import calibration

    d = np.geomspace(100, 102400, 9)
    rng = np.random.default_rng(3)
    curves = np.array([power_loss(d, a, 0.4, 1.0) for a in rng.uniform(10, 40, 9)])
    curves *= np.exp(rng.normal(0, 0.01, curves.shape))
    batch = PowerLaw().fit_many(d, curves)
    k_all, h_all, c_all = calibration.backtest_warps(batch)
    monkeypatch.setattr(calibration, "MAX_BACKTEST_CURVES", 3)
    k_sub, h_sub, c_sub = calibration.backtest_warps(batch)
    assert set(c_sub.tolist()) == {0, 4, 8}
    keep = np.isin(c_all, [0, 4, 8])
    np.testing.assert_allclose(k_sub, k_all[keep], rtol=1e-6)
    assert calibration.measure_calibration(batch).n_curves == 3
