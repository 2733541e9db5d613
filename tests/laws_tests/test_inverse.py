"""The inverse of every law: data needed for a loss goal, "never" below the floor, intervals.

Expected sizes come from the closed forms written out here from the generating parameters,
or from bisection on the formulas, never from a previous run of the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.exceptions import InputError
from lensllm.laws import LensLaw, PowerLaw, RectifiedLaw, lens_loss, power_loss, rectified_loss
from lensllm.laws.inverse import bisect_basis, data_needed_at, plan_data, quantile_with_infinities
from test_law_fits import SPECTRUM, f_closed_form

D = np.array([0, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400.0])


def noisy(loss, sigma, seed):
    return loss * np.exp(sigma * np.random.default_rng(seed).standard_normal(np.shape(loss)))


# --- closed forms ------------------------------------------------------------------------------


def test_power_law_inverse_is_the_closed_form():
    a, alpha, e = 30.0, 0.5, 1.0
    batch = PowerLaw().fit_many(D[1:], power_loss(D[1:], a, alpha, e)[None, :])
    for goal in (3.0, 1.5, 1.1, 1.01):
        expected = (a / (goal - e)) ** (1 / alpha)
        assert plan_data(batch, goal).data_needed[0] == pytest.approx(expected, rel=1e-5)


def test_rectified_law_inverse_is_the_closed_form_and_zero_above_zero_shot():
    b, d_l, beta, e = 40.0, 10.0, 0.5, 1.0
    batch = RectifiedLaw().fit_many(D, rectified_loss(D, b, d_l, beta, e)[None, :])
    for goal in (3.0, 1.5, 1.1):
        expected = (b / (goal - e) - d_l) ** (1 / beta)
        assert plan_data(batch, goal).data_needed[0] == pytest.approx(expected, rel=1e-5)
    zero_shot = b / d_l + e
    assert plan_data(batch, zero_shot * 1.01).data_needed[0] == 0.0
    assert plan_data(batch, zero_shot * 0.99).data_needed[0] > 0.0


@pytest.mark.parametrize("fit_t", [False, True])
def test_lens_law_inverse_is_the_closed_form_given_f(fit_t):
    b, beta, e, t = 30.0, 0.45, 0.9, 500.0
    f = f_closed_form(SPECTRUM, t)
    loss = lens_loss(D, b, f, beta, e)
    law = LensLaw(fit_t=fit_t)
    extra = {} if fit_t else {"t": [t]}
    batch = law.fit_many(D, loss[None, :], spectra=[SPECTRUM], **extra)
    f_fit = batch.params["F"][0]
    for goal in (2.0, 1.2):
        # Given the fitted F (with fit_t, F comes from the fitted t), the closed form.
        p = {k: v[0] for k, v in batch.params.items()}
        expected = (p["B"] / (goal - p["E"]) - f_fit) ** (1 / p["beta"])
        assert plan_data(batch, goal).data_needed[0] == pytest.approx(expected, rel=1e-9)
        # and that the fit found the generating curve, so the answer is the true one.
        true = (b / (goal - e) - f) ** (1 / beta)
        assert plan_data(batch, goal).data_needed[0] == pytest.approx(true, rel=1e-3)


@pytest.mark.parametrize("law, theta", [
    (PowerLaw(), np.array([[0.3], [1.2], [0.05]])),
    (RectifiedLaw(), np.array([[0.4, np.log(5.0)], [1.1, np.log(200.0)], [0.05, -2.0]])),
])
def test_closed_form_basis_inverse_matches_bisection(law, theta):
    rng = np.random.default_rng(0)
    d_true = np.exp(rng.uniform(np.log(10), np.log(1e7), theta.shape[0]))
    x = law.basis(d_true[:, None], theta, {})[:, 0]
    closed = law.basis_inverse(x, theta, {})
    numeric = bisect_basis(law, x, theta, {})
    np.testing.assert_allclose(closed, d_true, rtol=1e-8)
    np.testing.assert_allclose(numeric, d_true, rtol=1e-8)


def test_predicting_at_the_data_needed_gives_the_goal_back():
    rng = np.random.default_rng(3)
    params = [(40.0, 10.0, 0.5, 1.0), (60.0, 30.0, 0.4, 1.2), (25.0, 3.0, 0.35, 0.8)]
    loss = np.array([noisy(rectified_loss(D, *p), 0.01, i) for i, p in enumerate(params)])
    batch = RectifiedLaw().fit_many(D, loss)
    goal = rng.uniform(1.5, 2.0, 3)
    need = plan_data(batch, goal).data_needed
    pred = np.diag(batch.predict(need))
    np.testing.assert_allclose(pred, goal, rtol=1e-9)


# --- never ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("law_cls, d", [(PowerLaw, D[1:]), (RectifiedLaw, D)])
def test_no_point_estimate_exactly_when_goal_is_at_or_below_the_floor(law_cls, d):
    loss = noisy(rectified_loss(d, 40.0, 10.0, 0.5, 1.0), 0.01, 7)
    batch = law_cls().fit_many(d, loss[None, :])
    e = batch.params["E"][0]
    assert e > 0
    for goal, reached in ((e * 0.9, False), (e, False), (np.nextafter(e, 10.0), True),
                          (e * 1.05, True)):
        plan = plan_data(batch, goal)
        assert bool(plan.reached[0]) is reached, goal
        if not reached:
            note = plan.note(0, batch.law.name)
            assert f"E = {e:.4g}" in note
            assert f"[{plan.floor_lower[0]:.4g}, {plan.floor_upper[0]:.4g}]" in note
            assert plan.floor_lower[0] <= e <= plan.floor_upper[0]


@pytest.mark.parametrize("law_cls, d", [(PowerLaw, D[1:]), (RectifiedLaw, D)])
def test_never_only_below_the_floor_interval(law_cls, d):
    """A goal inside E's interval but below E has no point estimate and an interval with an
    unbounded upper end; below the whole
    interval the answer is "never"."""
    loss = noisy(rectified_loss(d, 40.0, 10.0, 0.5, 1.0), 0.01, 7)
    batch = law_cls().fit_many(d, loss[None, :])
    e = batch.params["E"][0]
    probe = plan_data(batch, e)
    lo_e = probe.floor_lower[0]
    assert lo_e < e
    inside = plan_data(batch, 0.5 * (lo_e + e))
    assert not inside.reached[0] and not inside.never[0]
    assert np.isfinite(inside.lower[0]) and np.isinf(inside.upper[0])
    assert inside.note(0, batch.law.name).startswith("no point estimate")
    below = plan_data(batch, 0.9 * lo_e)
    assert below.never[0] and below.note(0, batch.law.name).startswith("never")


def test_data_needed_at_is_inf_below_every_floor():
    law = RectifiedLaw()
    phi = np.array([[0.5, np.log(10.0), np.log(40.0), 1.0]] * 3)
    out = data_needed_at(law, phi, {}, np.array([0.5, 1.0, 1.5]))
    assert np.isinf(out[0]) and np.isinf(out[1]) and np.isfinite(out[2])


# --- the interval is the loss interval read sideways -------------------------------------------


@pytest.mark.parametrize("law_cls, d", [(PowerLaw, D[1:]), (RectifiedLaw, D)])
def test_data_interval_maps_through_the_law_to_the_loss_interval(law_cls, d):
    params = [(40.0, 10.0, 0.5, 1.0), (60.0, 30.0, 0.4, 1.2), (25.0, 3.0, 0.35, 0.8)]
    loss = np.array([noisy(rectified_loss(d, *p), 0.02, 10 + i) for i, p in enumerate(params)])
    batch = law_cls().fit_many(d, loss)
    goal = batch.predict([4 * d[-1]])[:, 0]  # a goal beyond the data, as in planning
    plan = plan_data(batch, goal, 0.9)
    assert np.all(plan.lower > 0)
    assert np.all(plan.lower <= plan.data_needed) and np.all(plan.data_needed <= plan.upper)
    rows = np.arange(len(goal))
    lo_at_lower, _ = batch.interval(plan.lower, 0.9)
    # The optimistic end of the loss band reaches the goal at the lower data size, the
    # pessimistic end at the upper one (quantile interpolation differs by well under 1%).
    np.testing.assert_allclose(lo_at_lower[rows, rows], goal, rtol=5e-3)
    finite = np.isfinite(plan.upper)
    assert finite.sum() >= 2
    _, hi_at_upper = batch.interval(np.where(finite, plan.upper, 1.0), 0.9)
    np.testing.assert_allclose(hi_at_upper[rows, rows][finite], goal[finite], rtol=5e-3)
    # An unbounded upper end: the pessimistic band never comes down to the goal.
    _, hi_far = batch.interval([1e15], 0.9)
    assert np.all(hi_far[~finite, 0] > goal[~finite])


def test_lower_goal_needs_more_data():
    loss = noisy(rectified_loss(D, 40.0, 10.0, 0.5, 1.0), 0.01, 1)
    batch = RectifiedLaw().fit_many(D, loss[None, :])
    goals = np.linspace(1.6, 1.25, 6)
    plans = [plan_data(batch, g) for g in goals]
    for key in ("data_needed", "lower", "upper"):
        values = [getattr(p, key)[0] for p in plans]
        assert np.all(np.diff(values) > 0), key


def test_too_few_points_give_an_open_interval_and_say_so():
    d = D[:4]
    batch = RectifiedLaw().fit_many(d, rectified_loss(d, 40.0, 10.0, 0.5, 1.0)[None, :])
    plan = plan_data(batch, 2.0)
    assert plan.lower[0] == 0.0 and np.isinf(plan.upper[0])
    assert plan.note(0, "rectified").startswith("no interval")


@pytest.mark.parametrize("goal", [0.0, -1.0, np.nan, np.inf])
def test_bad_goal_is_refused(goal):
    batch = PowerLaw().fit_many(D[1:], power_loss(D[1:], 30.0, 0.5, 1.0)[None, :])
    with pytest.raises(InputError, match="loss goal must be finite and > 0"):
        plan_data(batch, goal)


# --- quantiles with infinities -----------------------------------------------------------------


def test_quantile_with_infinities_matches_numpy_on_finite_values():
    v = np.random.default_rng(0).standard_normal((4, 37))
    for q in (0.05, 0.5, 0.95, 0.0, 1.0):
        np.testing.assert_allclose(quantile_with_infinities(v, q, axis=1),
                                   np.quantile(v, q, axis=1))


def test_quantile_with_infinities_takes_the_infinite_limit():
    v = np.array([1.0, 2.0, 3.0, np.inf, np.inf])
    assert quantile_with_infinities(v, 0.5) == 3.0  # position 2, exactly an order statistic
    assert np.isinf(quantile_with_infinities(v, 0.6))  # between 3 and inf
    assert np.isinf(quantile_with_infinities(v, 0.95))  # between inf and inf (numpy: nan)
    w = np.array([-np.inf, -np.inf, 1.0, 2.0])
    assert quantile_with_infinities(w, 0.1) == -np.inf
    assert quantile_with_infinities(w, 0.5) == -np.inf  # between -inf and 1
