"""The selector's predictive distribution, calibrated by back-tests at the ratio asked."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.bench import load_table
from lensllm.bench.budget import BudgetView
from lensllm.selection import get_selector
from lensllm.selection.predictive import (
    GROWTH,
    GROWTH_RANGE,
    MAX_POSITIONS,
    POSITION_SPREAD,
    calibrate,
    drift_widening,
    from_errors,
    own_errors,
    shrunk_to_rung,
    small_sample_factor,
)


def _calibrated(table, method, ratio, record=None):
    target = float(table.sizes[-1])
    view = BudgetView(table, target / ratio, target)
    sel = get_selector(method).select(view)

    def make_view(budget, tgt):
        if record is not None:
            record.append((budget, tgt))
        return BudgetView(table, budget, tgt)

    return view, sel, calibrate(sel, view, lambda: get_selector(method), make_view)


def test_identical_errors_at_one_position_give_the_position_spread():
    # one position, errors all 0.1: the bootstrap of their mean is 0.1 exactly, and the
    # shared draw is 0.1 + POSITION_SPREAD * 0.1 * z, widened per candidate (1 and 2)
    center = np.log([1.0, 2.0])
    pred = from_errors(center, [np.full(5, 0.1)], np.array([1.0, 2.0]), ratio_asked=8,
                       ratio_tested=4, n_rep=100_000)
    lo, hi = pred.interval(0.9)
    half = 1.645 * POSITION_SPREAD * 0.1 * np.array([1.0, 2.0])
    shift = 0.1 * np.array([1.0, 2.0])
    assert np.log(lo) == pytest.approx(center - shift - half, rel=0.02, abs=2e-3)
    assert np.log(hi) == pytest.approx(center - shift + half, rel=0.02, abs=2e-3)
    assert np.median(pred.replicates, axis=1) == pytest.approx(center - shift, abs=2e-3)


def test_one_position_adds_the_position_spread_to_the_bootstrap():
    # the shared draws of one position: the bootstrap of the mean of M errors has variance
    # var(e) / M (ddof 0), and the position's change adds (POSITION_SPREAD * |mean|)^2
    from lensllm.selection.predictive import _shared_draws

    e = np.array([0.02, 0.05, 0.08, 0.11])
    draws = _shared_draws([e], 200_000, np.random.default_rng(3))
    expected = np.sqrt(e.var() / e.size + (POSITION_SPREAD * e.mean()) ** 2)
    assert draws.mean() == pytest.approx(e.mean(), abs=1e-3)
    assert draws.std() == pytest.approx(expected, rel=0.02)
    # with two or more positions the between-position spread is measured instead
    two = _shared_draws([e, e + 0.1], 200_000, np.random.default_rng(3))
    assert np.median(two) == pytest.approx(e.mean() + 0.05, abs=2e-3)  # t_1: no mean


def test_many_normal_errors_give_normal_quantiles():
    rng = np.random.default_rng(0)
    sigma = 0.05
    errors = [rng.normal(0, sigma, 3000)]
    pred = from_errors(np.zeros(1), errors, np.ones(1), ratio_asked=8, ratio_tested=8,
                       n_rep=40000)
    lo, hi = pred.interval(0.9)
    # shared part ~ N(0, sigma^2 / M), own part ~ N(0, sigma^2): 1.645 sigma either side
    assert np.log(hi[0]) == pytest.approx(1.645 * sigma, rel=0.05)
    assert np.log(lo[0]) == pytest.approx(-1.645 * sigma, rel=0.05)


def test_small_sample_factor_widens_few_errors_and_tends_to_one():
    assert small_sample_factor(3) > 2.0
    assert small_sample_factor(10_000) == pytest.approx(1.0, abs=0.01)


def test_back_tests_stay_inside_the_budget_at_the_ratio_asked():
    table = load_table("flan")
    record = []
    view, sel, pred = _calibrated(table, "rectified_fit", 8, record)
    d_max = float(view.sizes[-1])
    assert pred.known and pred.ratio_tested == pytest.approx(8.0)
    assert all(t <= d_max and b < t and t / b == pytest.approx(8.0) for b, t in record)
    assert len(record) == MAX_POSITIONS
    assert pred.widening == pytest.approx(np.ones(table.n_models))  # every candidate at D_max
    lo, hi = pred.interval(0.9)
    assert (lo < hi).all() and np.isfinite(hi).all()


def test_a_shorter_back_test_is_widened_to_the_distance_asked():
    # Sizes 8..100 below D*/8 (the zoo tables' grid): adaptive needs 3 sizes, so the
    # back-test reaches 100 from 32 (3.125x), widened to the 8x asked.
    sizes = np.array([8, 16, 32, 64, 100, 200, 400, 800], float)
    curves = np.array([3.0 * sizes ** -a + 0.5 for a in np.linspace(0.2, 0.5, 6)])
    from lensllm.bench.table import LossTable

    table = LossTable(name="synthetic", sizes=sizes, losses=curves,
                      models=tuple(f"m{i}" for i in range(6)), n_params=np.full(6, 1e6),
                      family=tuple("f" for _ in range(6)), zero_shot=None)
    _, _, pred = _calibrated(table, "adaptive", 8)
    assert pred.ratio_tested == pytest.approx(100 / 32)
    expected = (np.log(8) / np.log(100 / 32)) ** GROWTH
    assert pred.widening == pytest.approx(np.full(6, expected))
    assert "widened" in pred.note


def test_drift_widening_draws_its_exponent_uniformly_and_shares_it():
    # g ~ U[lo, hi] and d > 1: the q-quantile of d**g is d**(lo + q (hi - lo)); d = 1 is
    # never widened; every candidate of a replicate has the same g.
    lo, hi = GROWTH_RANGE
    w = drift_widening(np.array([4.0, 2.0, 1.0]), 100_000, seed=3)
    for q in (0.05, 0.5, 0.95):
        assert np.quantile(w[0], q) == pytest.approx(4.0 ** (lo + q * (hi - lo)), rel=0.01)
    assert np.median(w[0]) == pytest.approx(4.0 ** GROWTH, rel=0.01)
    np.testing.assert_allclose(np.log(w[0]) / np.log(4.0), np.log(w[1]) / np.log(2.0))
    assert (w[2] == 1.0).all()


def test_a_drawn_growth_gives_the_quantiles_of_the_exponent():
    # Two positions of identical errors c: no own part and a shared part of exactly c (no
    # spread between positions), so replicate r is center - c * d**g_r and the 90% interval
    # of log L runs from center - c d**(lo + 0.95 (hi - lo)) to center - c d**(lo + 0.05 (hi
    # - lo)).
    lo, hi = GROWTH_RANGE
    c, d = 0.05, 3.0
    pred = from_errors(np.zeros(1), [np.full(6, c)] * 2,
                       drift_widening(np.array([d]), 100_000),
                       ratio_asked=27, ratio_tested=3, n_rep=100_000)
    low, high = pred.interval(0.9)
    assert np.log(low[0]) == pytest.approx(-c * d ** (lo + 0.95 * (hi - lo)), rel=0.01)
    assert np.log(high[0]) == pytest.approx(-c * d ** (lo + 0.05 * (hi - lo)), rel=0.01)
    assert pred.widening[0] == pytest.approx(d ** GROWTH, rel=0.01)  # the median scale


def test_a_widening_of_the_wrong_shape_is_refused():
    from lensllm.exceptions import InputError

    with pytest.raises(InputError, match=r"`widening` must have shape \(2,\) or \(2, 50\)"):
        from_errors(np.zeros(2), [np.zeros(4)], np.ones((2, 49)), ratio_asked=8,
                    ratio_tested=4, n_rep=50)


def test_too_few_sizes_give_unbounded_intervals_and_uniform_p_best():
    sizes = np.array([100, 200, 400, 800], float)
    curves = np.array([3.0 * sizes ** -a + 0.5 for a in (0.2, 0.3, 0.4)])
    from lensllm.bench.table import LossTable

    table = LossTable(name="short", sizes=sizes, losses=curves, models=("a", "b", "c"),
                      n_params=np.full(3, 1e6), family=("f",) * 3, zero_shot=None)
    _, _, pred = _calibrated(table, "adaptive", 2)  # sizes 100..400 affordable
    assert not pred.known and "not calibrated" in pred.note
    lo, hi = pred.interval()
    assert (lo == 0).all() and np.isinf(hi).all()
    assert pred.p_best() == pytest.approx(np.full(3, 1 / 3))


def test_shared_drift_across_positions_gets_a_new_draw_interval():
    # Four positions whose errors are constant within each: the own part is 0, and the
    # shared part is a new draw from N-ish(mean, sd^2 (1 + 1/J)) with t_{J-1} tails.
    from scipy.stats import t as student_t

    means = np.array([0.0, 0.1, 0.2, 0.3])
    errors = [np.full(10, m) for m in means]
    pred = from_errors(np.zeros(1), errors, np.ones(1), ratio_asked=8, ratio_tested=8,
                       n_rep=200_000)
    lo, hi = pred.interval(0.9)
    half = means.std(ddof=1) * np.sqrt(1.25) * student_t.ppf(0.95, 3)
    # log L = center - shared: the interval is -(mean +- half)
    assert -np.log(lo[0]) == pytest.approx(means.mean() + half, rel=0.02)
    assert -np.log(hi[0]) == pytest.approx(means.mean() - half, rel=0.05)


def _synthetic(sizes, exponents, name="synthetic"):
    from lensllm.bench.table import LossTable

    sizes = np.asarray(sizes, float)
    curves = np.array([3.0 * sizes ** -a + 0.5 for a in exponents])
    c = len(exponents)
    return LossTable(name=name, sizes=sizes, losses=curves,
                     models=tuple(f"m{i}" for i in range(c)), n_params=np.full(c, 1e6),
                     family=("f",) * c, zero_shot=None)


def test_halving_on_four_sizes_is_calibrated_by_a_three_size_back_test():
    # 8..64 within D*/8 = 64 of 512 (the GPU benchmark's grid): halving is AtS there, and
    # its back-test refits on 8..32 (3 sizes, AtS's minimum) to predict 64: 2x, widened.
    table = _synthetic([8, 16, 32, 64, 128, 256, 512], np.linspace(0.2, 0.5, 6))
    _, _, pred = _calibrated(table, "halving", 8)
    assert pred.known and pred.ratio_tested == pytest.approx(2.0)
    assert pred.widening == pytest.approx(np.full(6, (np.log(8) / np.log(2)) ** GROWTH))


@pytest.mark.parametrize("keep", [1, 2])
def test_a_few_finalists_do_not_stop_the_back_test(keep):
    # Halving with early_first_rung on five sizes stops all but the `keep` leaders at the
    # 4th size; the back-test starts at that size (paid by every candidate), not at the
    # budget (paid by fewer than the 3 errors a distribution needs), and the candidates
    # stopped early are widened for their reach.
    table = _synthetic([6, 12, 25, 50, 100, 200, 400, 800], np.linspace(0.2, 0.5, 9))
    target = 800.0
    view = BudgetView(table, 100, target)
    make = lambda: get_selector("halving", early_first_rung=True, keep=keep)  # noqa: E731
    sel = make().select(view)
    assert view.paid[:, -1].sum() == keep and view.paid[:, -2].all()
    pred = calibrate(sel, view, make, lambda b, t: BudgetView(table, b, t))
    assert pred.known and pred.ratio_tested == pytest.approx(2.0)  # 50 from 6..25
    reach = np.where(view.paid[:, -1], target / 100, target / 50)
    assert pred.widening == pytest.approx((np.log(reach) / np.log(2.0)) ** GROWTH)


def test_stopped_candidates_carry_their_skipped_change_with_one_shared_draw():
    # FLAN at D*/8: halving stops most of the 30 candidates early. Their replicates are the
    # ones without the skipped change, shifted by its mean plus its sd times one standard
    # normal draw shared by every stopped candidate (they move together, rung by rung).
    import dataclasses

    table = load_table("flan")
    target = float(table.sizes[-1])
    view = BudgetView(table, target / 8, target)
    # without the shrink towards the rung (tested on its own), which narrows the change
    sel = dataclasses.replace(get_selector("halving").select(view), rung_field=None)
    pred = calibrate(sel, view, lambda: get_selector("halving"),
                     lambda b, t: BudgetView(table, b, t))
    bare = calibrate(dataclasses.replace(sel, skipped_change=None), view,
                     lambda: get_selector("halving"),
                     lambda b, t: BudgetView(table, b, t))
    skipped = sel.skipped_change
    moving = np.flatnonzero(skipped[:, 1] > 0)
    assert moving.size >= 10 and (skipped[sel.info["finalists"]] == 0).all()
    # (replicates above a candidate's loss at its largest paid run are capped there: left out)
    largest = view.sizes[[np.flatnonzero(view.paid[m])[-1] for m in range(table.n_models)]]
    ceiling = np.log(view.observe(np.arange(table.n_models), largest))[:, None]
    free = (pred.replicates < ceiling) & (bare.replicates < ceiling)
    diff = pred.replicates - bare.replicates
    z = np.where(free, (diff - skipped[:, :1]) / np.where(skipped[:, 1:] > 0, skipped[:, 1:],
                                                        1.0), np.nan)[moving]
    z0 = np.nanmean(z, axis=0)  # the one draw of each replicate
    assert np.nanmax(np.abs(z - z0[None, :])) < 1e-9
    z0 = z0[np.isfinite(z0)]
    assert z0.size > 3000 and abs(z0.mean()) < 0.1 and abs(z0.std() - 1) < 0.1
    np.testing.assert_array_equal(diff[sel.info["finalists"]][free[sel.info["finalists"]]], 0.0)
    assert "rungs skipped" in pred.note


def test_no_replicate_is_above_the_loss_at_the_largest_paid_run():
    # Curves that rise a little with D (runs that are not data-limited): the back-tests
    # under-predict, and the drift widened from 2x to 16x would put the predictions far
    # above every loss seen. A converged loss does not rise with more data: each
    # candidate's replicates stop at its loss at its largest paid run.
    sizes = np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096], float)
    from lensllm.bench.table import LossTable

    curves = np.array([1.5 * sizes ** a for a in (0.01, 0.02, 0.03, 0.015, 0.025)])
    table = LossTable(name="rising", sizes=sizes, losses=curves,
                      models=tuple(f"m{i}" for i in range(5)), n_params=np.full(5, 1e6),
                      family=("f",) * 5, zero_shot=None)
    view, sel, pred = _calibrated(table, "adaptive", 16)
    assert pred.known
    largest = np.array([view.sizes[np.flatnonzero(view.paid[m])[-1]] for m in range(5)])
    ceiling = np.log([curves[m, np.flatnonzero(sizes == largest[m])[0]] for m in range(5)])
    assert (pred.replicates <= ceiling[:, None]).all()
    assert (pred.replicates == ceiling[:, None]).mean() > 0.5  # the drift pushed them up
    np.testing.assert_allclose(pred.predicted, np.exp(ceiling), rtol=1e-12)
    assert "largest paid run" in pred.note


def test_own_part_and_shared_part_widen_separately():
    # Two positions with means 0.1 and 0.3: the shared part is drawn about the mean of the
    # position means (0.2), the own part from the errors about each position's mean. With
    # the own part's scale at 0 every replicate is a shared draw times the widening; with
    # the shared widening at 0 every replicate is an own error times the scatter widening.
    errors = [np.array([0.0, 0.2]), np.array([0.2, 0.4])]
    center = np.zeros(2)
    shared_only = from_errors(center, errors, np.array([1.0, 2.0]), ratio_asked=8,
                              ratio_tested=4, scatter_widening=np.zeros(2))
    assert np.median(shared_only.replicates[0]) == pytest.approx(-0.2, abs=0.01)
    np.testing.assert_allclose(shared_only.replicates[1], 2 * shared_only.replicates[0])
    own_only = from_errors(center, errors, np.zeros(2), ratio_asked=8, ratio_tested=4,
                           scatter_widening=np.array([1.0, 3.0]))
    f = small_sample_factor(4)
    np.testing.assert_allclose(np.sort(own_errors(errors)), f * np.array([-.1, -.1, .1, .1]))
    assert set(np.round(own_only.replicates[0] / f, 9)) == {-0.1, 0.1}
    assert set(np.round(own_only.replicates[1] / (3 * f), 9)) == {-0.1, 0.1}


def test_shrunk_to_rung_in_closed_form():
    # candidates 0 and 1 stopped on a rung with mean 1.0 and variance 0.04; candidate 2
    # reached the budget (NaN field). tau = 0.1: k = 0.01 / 0.04 = 0.25; tau = 0.3: k = 1.
    center = np.array([1.4, 0.8, 0.5])
    field = np.array([[1.0, 0.04], [1.0, 0.04], [np.nan, np.nan]])
    skipped = np.array([[0.0, 0.2], [0.0, 0.2], [0.0, 0.0]])
    out, sk, n = shrunk_to_rung(center, field, skipped, np.array([0.1, 0.1, 0.1]))
    assert n == 2
    np.testing.assert_allclose(out, [1.0 + 0.75 * 0.4, 1.0 - 0.75 * 0.2, 0.5])
    np.testing.assert_allclose(sk[:, 1], [0.2 * np.sqrt(0.75)] * 2 + [0.0])
    out, sk, _ = shrunk_to_rung(center, field, skipped, np.full(3, 0.3))
    np.testing.assert_allclose(out, [1.0, 1.0, 0.5])  # k capped at 1: the field's mean
    np.testing.assert_allclose(sk[:, 1], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(skipped[:, 1], [0.2, 0.2, 0.0])  # inputs untouched
    same, sk, n = shrunk_to_rung(center, None, skipped, np.full(3, 0.1))
    assert n == 0 and sk is skipped
    np.testing.assert_array_equal(same, center)


def test_shrinking_stopped_candidates_lowers_their_error():
    # Truths spread with sd 0.2; early predictions = truth + noise of sd 0.15; the worst
    # half by prediction is stopped. Their predictions overstate their loss (selection on
    # the noise); the empirical-Bayes shrink towards the field removes most of that bias
    # and lowers their RMSE, over many seeded draws.
    rng = np.random.default_rng(0)
    tau, raw, shrunk = 0.15, [], []
    for _ in range(400):
        truth = rng.normal(0, 0.2, 20)
        early = truth + rng.normal(0, tau, 20)
        stop = early > np.median(early)
        field = np.where(stop[:, None], [early.mean(), early.var(ddof=1)], np.nan)
        out, _, _ = shrunk_to_rung(early, field, None, np.full(20, tau))
        raw.append(early[stop] - truth[stop])
        shrunk.append(out[stop] - truth[stop])
    raw, shrunk = np.concatenate(raw), np.concatenate(shrunk)
    assert raw.mean() > 0.05  # the stopped overstate
    assert abs(shrunk.mean()) < raw.mean() / 3
    assert np.sqrt((shrunk ** 2).mean()) < 0.85 * np.sqrt((raw ** 2).mean())
