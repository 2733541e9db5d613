"""The ``halving`` selector: closed forms on power laws, the cost-weighted promotion rule, the
rung order of the ranking, and equality with AtS where no rung can prune."""

from __future__ import annotations

from math import erf, sqrt

import numpy as np
import pytest

from lensllm.bench import BudgetView, LossTable, load_table
from lensllm.exceptions import InputError
from lensllm.selection import get_selector
from lensllm.selection.halving import leaders, promote, rank_by_rung, rung_scale

SIZES = 200.0 * 2.0 ** np.arange(14)  # 200 ... 1638400, as in the bundled tables
TARGET = float(SIZES[-1])


def power_law_table(slopes, intercepts, n_params) -> LossTable:
    x = np.log(SIZES)
    logs = np.asarray(intercepts)[:, None] + np.asarray(slopes)[:, None] * x[None, :]
    n = logs.shape[0]
    return LossTable(name="synthetic", models=tuple(f"m{i}" for i in range(n)), sizes=SIZES,
                     losses=np.exp(logs), zero_shot=None, n_params=np.asarray(n_params, float),
                     family=("",) * n)


def test_power_laws_exact_prediction_finalists_and_cost():
    """Straight lines: predictions do not move between rungs (sigma 0), so after the first
    pruning rung only the 3 best go on; their L(D*) is exact and the cost is the closed form:
    every candidate pays sizes 400-3200 (3-point lines on rungs 1600 and 3200), the 3 best
    every size from 400 up to the budget (and 200 where AtS on the last rung tests it)."""
    slopes = np.array([-0.05, -0.08, -0.11, -0.06, -0.07, -0.09])
    icpt = np.array([1.5, 1.8, 2.1, 1.4, 1.9, 2.0])
    n_params = np.array([1e8, 2e8, 3e8, 4e8, 5e8, 6e8])
    view = BudgetView(power_law_table(slopes, icpt, n_params), TARGET / 8, TARGET)
    sel = get_selector("halving", keep=3).select(view)
    truth = np.exp(icpt + slopes * np.log(TARGET))
    best3 = np.argsort(truth)[:3]
    assert sorted(sel.info["finalists"]) == sorted(best3.tolist())
    np.testing.assert_allclose(sel.predicted[best3], truth[best3], rtol=1e-9)
    assert sel.selected == int(np.argmin(truth))
    assert list(np.argsort(sel.score)[:3]) == list(best3)
    visible = SIZES[SIZES <= TARGET / 8]
    others = np.setdiff1d(np.arange(6), best3)
    assert (view.paid[others] == (np.arange(visible.size) >= 1)
            & (np.arange(visible.size) <= 4)).all()
    assert view.paid[best3, 1:].all()
    # Size 200 is AtS's own call on each finalist, decided on residuals of exact lines
    # (float noise: the BLAS kernels in use flip it, OPENBLAS_CORETYPE=Haswell for one), so
    # the closed form counts it for whichever finalists paid it, and only for them.
    at_200 = view.paid[best3, 0]
    expected = (n_params[others].sum() * visible[1:5].sum()
                + n_params[best3].sum() * visible[1:].sum()
                + (n_params[best3] * at_200).sum() * visible[0])
    assert view.cost() == pytest.approx(expected, rel=1e-12)
    assert sel.info["runs_paid"] == view.paid.sum(1).tolist()
    assert [sel.stopped_at[m] for m in best3] == [visible[-1]] * 3


@pytest.mark.parametrize("n_models", [5, 12, 30])
def test_default_leaders_are_the_best_tenth(n_models):
    """Straight lines (sigma 0): exactly the protected leaders reach the budget, and they are
    the best ``ceil(C / 10)`` by true L(D*): 1 of 5, 2 of 12, 3 of 30."""
    rng = np.random.default_rng(n_models)
    slopes = rng.uniform(-0.12, -0.04, n_models)
    icpt = rng.uniform(1.3, 2.2, n_models)
    view = BudgetView(power_law_table(slopes, icpt, np.full(n_models, 1e8)), TARGET / 8, TARGET)
    sel = get_selector("halving").select(view)
    n_lead = {5: 1, 12: 2, 30: 3}[n_models]
    assert leaders(n_models) == sel.info["leaders"] == n_lead
    truth = np.exp(icpt + slopes * np.log(TARGET))
    assert sorted(sel.info["finalists"]) == sorted(np.argsort(truth)[:n_lead].tolist())


def _phi(z: float) -> float:
    return 0.5 * (1.0 + erf(z / sqrt(2.0)))


def test_promotion_weighs_cost_against_chance():
    """Two candidates 0.1 behind the third leader, spread 0.1: chance Phi(-0.1 / (sqrt 2 *
    0.1)) = 0.24 each; the bar is 0.2 * cost ** 0.5: 0.063 for the cheap one (promoted), 0.63
    for the expensive one (stopped). The leaders always go on; a stopped one stays stopped."""
    pred = np.array([0.0, 0.1, 0.2, 0.3, 0.3, 0.25])
    active = np.array([True, True, True, True, True, False])
    rel_cost = np.array([1.0, 1.0, 50.0, 0.1, 10.0, 1.0])
    chance = _phi(-0.1 / (sqrt(2.0) * 0.1))
    assert 0.2 * 0.1 ** 0.5 < chance < 0.2 * 10 ** 0.5
    out = promote(pred, active, 0.1, rel_cost, keep=3, min_chance=0.2, cost_power=0.5)
    assert out.tolist() == [True, True, True, True, False, False]
    # With no spread only the leaders (ties included) go on.
    out = promote(pred, active, 0.0, rel_cost, keep=3, min_chance=0.2, cost_power=0.5)
    assert out.tolist() == [True, True, True, False, False, False]


def test_rung_scale_ignores_a_shared_shift():
    """Changes shared by every candidate do not count; the rest is the RMS of what is left."""
    pred = np.array([[1.0, 0.5, 0.2], [2.0, 1.5, 1.3], [3.0, 2.5, np.nan]])
    # Centred changes: rung 1: 0, 0, 0; rung 2 (two candidates, -0.3 and -0.2): -0.05, 0.05.
    assert rung_scale(pred, 0, 2) == pytest.approx(sqrt((2 * 0.05 ** 2) / 5))
    assert np.isnan(rung_scale(pred, 0, 0))


def test_rank_by_rung_puts_later_rungs_first_and_keeps_order_within():
    last = np.array([1.30, 1.10, 1.05, 1.20, 1.00])
    stopped = np.array([9, 9, 7, 7, 5])
    order = np.argsort(rank_by_rung(last, stopped)).tolist()
    assert order == [1, 0, 2, 3, 4]


@pytest.mark.parametrize("name", ["flan", "gigaword"])
def test_is_ats_where_no_rung_can_prune(name):
    """At 1/512 (five sizes: no rung between the first and the last) halving is AtS: same
    predictions, same runs paid."""
    table = load_table(name)
    ours, theirs = (BudgetView(table, TARGET / 512, TARGET) for _ in range(2))
    sel = get_selector("halving").select(ours)
    ref = get_selector("ats").select(theirs)
    np.testing.assert_allclose(sel.predicted, ref.predicted, rtol=1e-12)
    assert (ours.paid == theirs.paid).all()


def test_early_first_rung_prunes_five_sizes_in_closed_form():
    """Five sizes (200-3200 at 1/512): by default no rung can prune (AtS, above); with
    ``early_first_rung`` the first rung is the 3rd size (a line through 200-800), the 4th
    prunes, and on exact lines only the ``keep`` best reach the budget. Every candidate pays
    200-1600; the finalists also 3200."""
    slopes = np.array([-0.05, -0.08, -0.11, -0.06, -0.07, -0.09])
    icpt = np.array([1.5, 1.8, 2.1, 1.4, 1.9, 2.0])
    n_params = np.array([1e8, 2e8, 3e8, 4e8, 5e8, 6e8])
    view = BudgetView(power_law_table(slopes, icpt, n_params), TARGET / 512, TARGET)
    assert view.sizes.tolist() == [200, 400, 800, 1600, 3200]
    sel = get_selector("halving", keep=2, early_first_rung=True).select(view)
    truth = np.exp(icpt + slopes * np.log(TARGET))
    best2 = np.argsort(truth)[:2]
    others = np.setdiff1d(np.arange(6), best2)
    assert sorted(sel.info["finalists"]) == sorted(best2.tolist())
    assert sel.selected == int(np.argmin(truth))
    np.testing.assert_allclose(sel.predicted, truth, rtol=1e-9)  # exact lines on every rung
    assert view.paid[others, :4].all() and not view.paid[others, 4].any()
    assert view.paid[best2].all()
    expected = n_params.sum() * 3000.0 + n_params[best2].sum() * 3200.0
    assert view.cost() == pytest.approx(expected, rel=1e-12)
    assert [sel.stopped_at[m] for m in others] == [1600.0] * 4


@pytest.mark.parametrize("n_sizes, first", [(4, 3), (5, 2), (6, 3), (9, 3)])
def test_first_rung_by_grid_length(n_sizes, first):
    """The early rung only changes the 5-size case; 4 sizes stay AtS, 6+ start at the 4th."""
    assert get_selector("halving", early_first_rung=True).first_rung(n_sizes) == first
    assert get_selector("halving").first_rung(n_sizes) == (n_sizes - 1 if n_sizes < 6 else 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(early_first_rung="yes"), "`early_first_rung`"),
    (dict(k=1), "`k`"), (dict(delta=0.0), "`delta`"), (dict(keep=0), "`keep`"),
    (dict(min_chance=1.5), "`min_chance`"), (dict(cost_power=-1.0), "`cost_power`"),
    (dict(growth=0.0), "`growth`"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        get_selector("halving", **kwargs)


def test_halving_draws_the_line_of_the_rung_behind_each_prediction():
    """Every candidate's curve is its line from the rung where it was predicted: it passes
    through the prediction at D*, and for a candidate stopped early it is the least-squares
    line through that rung's k largest sizes (not a line through later runs)."""
    import numpy as np

    from lensllm.bench import load_table
    from lensllm.bench.budget import BudgetView
    from lensllm.selection import get_selector

    table = load_table("flan")
    target = float(table.sizes[-1])
    view = BudgetView(table, target / 8, target)
    sel = get_selector("halving").select(view)
    assert np.allclose(sel.curve(np.array([target]))[:, 0], sel.predicted, rtol=1e-12)
    stopped = np.asarray(sel.stopped_at)
    early = np.flatnonzero(stopped < view.sizes[-1])
    assert early.size
    m = int(early[0])
    top = int(np.searchsorted(view.sizes, stopped[m]))
    cols = np.arange(top - 2, top + 1)  # k = 3
    x = np.log(view.sizes[cols])
    slope, icpt = np.polyfit(x, np.log(table.losses[m, np.searchsorted(table.sizes,
                                                                          view.sizes[cols])]), 1)
    d = np.array([1e3, 1e5])
    assert np.allclose(np.log(sel.curve(d)[m]), slope * np.log(d) + icpt, rtol=1e-9)


def test_skipped_change_is_the_spread_promotion_assumed():
    """A stopped candidate's skipped change has no shift and the spread halving promoted
    by: sigma (the last rung's) times R ** 0.5 for the R rungs it skipped. With one shared
    curvature, log L = a_m + b_m x + c x^2, every 3-point line moves by the same amount
    between rungs (for three points spaced h around x0 the line predicts at X
    a + b X + c (2 x0 X - x0^2 + 2 h^2 / 3): the change depends on c, not on the
    candidate), so sigma is 0 and so is every spread, though the predictions move."""
    slopes = np.array([-0.05, -0.08, -0.11, -0.06, -0.07, -0.09])
    icpt = np.array([1.5, 1.8, 2.1, 1.4, 1.9, 2.0])
    x = np.log(SIZES)
    logs = icpt[:, None] + slopes[:, None] * x[None, :] + 0.004 * x[None, :] ** 2
    curved = LossTable(name="curved", models=tuple(f"m{i}" for i in range(6)), sizes=SIZES,
                       losses=np.exp(logs), zero_shot=None, n_params=np.full(6, 1e8),
                       family=("",) * 6)
    sel = get_selector("halving", keep=2).select(BudgetView(curved, TARGET / 8, TARGET))
    assert (sel.stopped_at < TARGET / 8).sum() >= 3
    np.testing.assert_allclose(sel.skipped_change, 0.0, atol=1e-9)

    table = load_table("flan")
    view = BudgetView(table, TARGET / 8, TARGET)
    sel = get_selector("halving").select(view)
    rungs_skipped = np.array([np.sum(view.sizes > s) for s in sel.stopped_at])
    sigma = sel.info["sigma_per_rung"][-1]
    assert sigma > 0 and (rungs_skipped > 0).sum() >= 10
    np.testing.assert_array_equal(sel.skipped_change[:, 0], 0.0)
    np.testing.assert_allclose(sel.skipped_change[:, 1], sigma * np.sqrt(rungs_skipped),
                               rtol=1e-12)


def test_rung_field_is_the_mean_and_variance_of_every_prediction_on_the_stopping_rung():
    """A candidate stopped on a rung carries the mean and variance (ddof 1) of the
    predictions of every candidate on that rung: each one's least-squares 3-point line in
    log-log through the rung's three largest sizes, read at D*, computed here afresh."""
    table = load_table("flan")
    view = BudgetView(table, TARGET / 8, TARGET)
    sel = get_selector("halving").select(view)
    stop = np.searchsorted(view.sizes, sel.stopped_at)
    finalists = stop == view.sizes.size - 1
    assert np.isnan(sel.rung_field[finalists]).all()
    assert (~finalists).sum() >= 10
    for rung in np.unique(stop[~finalists]):
        on_rung = np.flatnonzero(stop >= rung)  # every candidate still in at that rung
        cols = np.searchsorted(table.sizes, view.sizes[rung - 2:rung + 1])
        preds = []
        for m in on_rung:
            slope, icpt = np.polyfit(np.log(table.sizes[cols]), np.log(table.losses[m, cols]), 1)
            preds.append(slope * np.log(TARGET) + icpt)
        expect = [np.mean(preds), np.var(preds, ddof=1)]
        np.testing.assert_allclose(sel.rung_field[stop == rung], [expect] * (stop == rung).sum(),
                                   rtol=1e-9)
