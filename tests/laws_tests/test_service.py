"""The one laws service: points with the zero-shot loss, the interval policies, the
predictive samples behind every interval."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.exceptions import InputError
from lensllm.laws import PowerLaw, RectifiedLaw, power_loss, rectified_loss
from lensllm.laws.calibration import calibrated_interval, measure_calibration
from lensllm.laws.service import (
    DEFAULT_INTERVAL,
    calibrate,
    fit_candidate,
    fit_points,
    predict_at,
    predict_band,
    predictive_samples,
    with_zero_shot,
)

SIZES = 200 * 2.0 ** np.arange(10)


def steepening(n, seed):
    """Curves whose log-log slope keeps growing (the law under-predicts their fall)."""
    rng = np.random.default_rng(seed)
    x = np.log(SIZES / SIZES[0])
    b, c = rng.uniform(0.01, 0.04, n), rng.uniform(0.002, 0.006, n)
    clean = np.exp(rng.uniform(0.8, 1.4, n)[:, None] - b[:, None] * x - c[:, None] * x ** 2)
    return clean * np.exp(0.005 * rng.standard_normal(clean.shape))


def test_zero_shot_is_a_point_only_for_laws_defined_at_zero():
    d, y = with_zero_shot(RectifiedLaw(), [100, 200], [[2.0, 1.9], [2.1, 2.0]], [3.0, 3.1])
    assert d.tolist() == [0, 100, 200] and y[:, 0].tolist() == [3.0, 3.1]
    d, y = with_zero_shot(PowerLaw(), [100, 200], [[2.0, 1.9]], [3.0])
    assert d.tolist() == [100, 200] and y.shape == (1, 2)


def test_fit_candidate_gives_the_reason_instead_of_raising():
    batch, why = fit_candidate(RectifiedLaw(), [100, 200], [2.0, 1.9], 3.0)
    assert batch is None and why == "3 points < 4 parameters of the rectified law"
    batch, why = fit_candidate(RectifiedLaw(), SIZES[:5],
                               rectified_loss(SIZES[:5], 40.0, 10.0, 0.5, 1.0), 5.0)
    assert why == "" and batch.params["beta"][0] == pytest.approx(0.5, rel=1e-4)


def test_the_policy_is_checked_and_none_is_the_laws_own_point():
    batch = fit_points(PowerLaw(), SIZES[:6], steepening(12, 1)[:, :6])
    with pytest.raises(InputError, match="`interval`"):
        predict_at(batch, SIZES[-1], interval="raw")
    none = predict_at(batch, SIZES[-1], interval=None)
    np.testing.assert_array_equal(none.predicted, batch.predict([SIZES[-1]])[:, 0])
    assert none.lower is None and none.interval is None
    assert DEFAULT_INTERVAL == "calibrated"


def test_calibrated_falls_back_to_the_bootstrap_and_says_so():
    d = SIZES[:4]
    losses = np.array([power_loss(d, a, 0.4, 1.0) for a in (20.0, 30.0)])
    batch = fit_points(PowerLaw(), d, losses)
    pred = predict_at(batch, 10 * d[-1])
    assert pred.requested == "calibrated" and pred.interval == "bootstrap"
    assert pred.calibration is None and "too few points" in pred.summary()


@pytest.mark.parametrize("calibrated", [False, True])
def test_predictive_samples_are_the_draws_behind_the_interval(calibrated):
    """Quantiles of the samples' logs are the interval, with and without calibration."""
    losses = steepening(20, 3)[:, :7]
    batch = fit_points(PowerLaw(), SIZES[:7], losses)
    target = [SIZES[-1]]
    cal = calibrate(batch, SIZES[-1]) if calibrated else None
    assert (cal is not None) == calibrated
    lo, hi = predict_band(batch, target, cal, 0.9)
    samples = predictive_samples(batch, target, cal)
    assert samples.shape == (20, 200, 1)
    log_s = np.log(samples[..., 0])
    np.testing.assert_allclose(np.exp(np.quantile(log_s, 0.05, axis=1)), lo[:, 0], rtol=1e-12)
    np.testing.assert_allclose(np.exp(np.quantile(log_s, 0.95, axis=1)), hi[:, 0], rtol=1e-12)
    if calibrated:  # the calibration module's own interval, computed its own way
        ref_lo, ref_hi = calibrated_interval(batch, target, measure_calibration(
            batch, np.log(SIZES[-1] / SIZES[6])), 0.9)
        np.testing.assert_allclose(lo, ref_lo, rtol=1e-12)


def test_shared_warp_moves_every_curve_alike():
    losses = steepening(10, 5)[:, :7]
    batch = fit_points(PowerLaw(), SIZES[:7], losses)
    cal = calibrate(batch, SIZES[-1])
    shared = predictive_samples(batch, [SIZES[-1]], cal, noise=False, shared_warp=True)
    # Without noise, replicate r's loss relative to the law's point is set by its refit and
    # its warp: with one warp per replicate, the replicates' ranks agree across curves far
    # more than with independent warps.
    own = predictive_samples(batch, [SIZES[-1]], cal, noise=False)
    rank = lambda s: np.argsort(np.argsort(s[..., 0], axis=1), axis=1)  # noqa: E731
    agree_shared = np.corrcoef(rank(shared))[np.triu_indices(10, 1)].mean()
    agree_own = np.corrcoef(rank(own))[np.triu_indices(10, 1)].mean()
    assert agree_shared > agree_own + 0.2
