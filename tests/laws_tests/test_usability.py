"""Fits marked not usable with the reason: increasing curves, residuals far above the
noise, parameters at their bounds; intervals explained when there is nothing to resample."""

from __future__ import annotations

import numpy as np

from lensllm.laws import get_law, power_loss
from lensllm.laws.usability import assess_fits, interval_note

D = np.array([200.0, 400, 800, 1600, 3200, 6400])


def test_flags_follow_the_data():
    good = power_loss(D, a=20.0, alpha=0.5, e=1.5)
    rising = np.linspace(2.0, 5.0, D.size)  # loss grows with D: slope of log L > 0
    rng = np.random.default_rng(0)
    noisy = good * np.exp(rng.normal(0, 1.0, D.size))  # noise ~ e^1: log RMSE far above 0.1
    batch = get_law("power").fit_many(D, np.vstack([good, rising, noisy]))
    u = assess_fits(batch)
    assert u.usable.tolist() == [True, False, False]
    assert u.reasons[0] == ""
    assert "increases with D" in u.reasons[1]
    # independent check of the slope quoted in the reason
    slope = np.polyfit(np.log(D), np.log(rising), 1)[0]
    assert f"{slope:+.3g}" in u.reasons[1]
    assert "residuals far above the noise" in u.reasons[2]
    assert float(u.reasons[2].split("log RMSE ")[1].split(" ")[0]) > 0.1


def test_parameter_at_its_bound_is_named():
    rising = np.linspace(2.0, 5.0, D.size)  # the best decreasing power law has alpha -> 1e-4
    batch = get_law("power").fit_many(D, rising[None, :])
    assert batch.params["alpha"][0] < 1e-3
    u = assess_fits(batch)
    assert not u.usable[0] and "alpha at the bound" in u.reasons[0]


def test_interval_note_when_points_equal_parameters():
    batch = get_law("power").fit_many(D[:3], power_loss(D[:3], a=20.0, alpha=0.5, e=1.5)[None])
    lo, hi = batch.interval([6400.0])
    assert (lo[0, 0], hi[0, 0]) == (0.0, np.inf)
    assert "3 points for 3 parameters" in interval_note(batch)[0]
    full = get_law("power").fit_many(D, power_loss(D, a=20.0, alpha=0.5, e=1.5)[None])
    assert interval_note(full) == [""]


def test_blocked_fits_equal_one_block(monkeypatch):
    from lensllm.laws import _engine

    rng = np.random.default_rng(1)
    curves = power_loss(D, a=20.0, alpha=0.5, e=1.5) * np.exp(rng.normal(0, 0.01, (7, D.size)))
    whole = get_law("power").fit_many(D, curves)
    monkeypatch.setattr(_engine, "FIT_BLOCK", 3)
    blocked = get_law("power").fit_many(D, curves)
    # equal up to the stopping tolerance (a block stops when all its curves have converged)
    np.testing.assert_allclose(whole.raw.phi, blocked.raw.phi, rtol=1e-8, atol=1e-8)
