"""The verdict's headline: truth first, the pick with its P(best), or no clear winner with
the run that would decide it; and two report texts the issue found wrong."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lensllm.report.rung_plot import CHARS_PER_INCH, runs_title
from lensllm.report.trust_report import backtest_cost_words
from lensllm.report.verdict import headline
from lensllm.selection.next_run import DecisiveRun
from lensllm.selection.predictive import Predictive


def _outcome(reps, selected=0, decisive=None, trust=None, known=True):
    reps = np.asarray(reps, float)
    pred = Predictive(np.median(reps, 1), reps if known else None, 8.0, 8.0,
                      np.ones(len(reps)), 30, "measured" if known else "not calibrated: x")
    view = SimpleNamespace(models=("org/a", "org/b", "org/c"), n_models=3, target=800.0)
    return SimpleNamespace(view=view, selection=SimpleNamespace(selected=selected),
                           predictive=pred, decisive=decisive, trust=trust)


def _reps(gap_b, sd=0.1, n=4000):
    rng = np.random.default_rng(0)
    return [rng.normal(0, sd, n), rng.normal(gap_b, sd, n), rng.normal(5.0, sd, n)]


def test_a_clear_pick_is_named_with_its_p_best():
    words = headline(_outcome(_reps(1.0)))
    assert words.startswith("Pick a (P(best) 1.00)")


def test_no_clear_winner_names_the_contenders_and_the_deciding_run():
    run = DecisiveRun(candidate=1, size=1600.0, cost=2.5e12, gain=0.2)
    words = headline(_outcome(_reps(0.0), selected=1, decisive=run))  # a, b: even odds
    assert words.startswith("No clear winner: b ranks first with P(best) 0.4")
    assert "then a 0.5" in words
    assert "the run that would decide it best per FLOP: b at D=1600 (about 2.5e+12 FLOPs)" \
        in words


def test_an_unknown_distribution_never_commits():
    words = headline(_outcome(_reps(1.0), known=False))
    assert words.startswith("No clear winner: a ranks first") and "not calibrated" in words


def test_the_truth_at_d_star_overrules_the_pick():
    check = SimpleNamespace(known=np.array([True, True, False]),
                            true_loss=np.array([1.2, 1.1, np.nan]))
    trust = SimpleNamespace(at=lambda size: check)
    words = headline(_outcome(_reps(1.0), trust=trust))
    assert words.startswith("Pick b: the store's runs at D* show it is best")
    assert "the selector predicted a" in words


def test_runs_title_fits_the_figure():
    width_in = 8.2
    title = runs_title("adaptive", 12, 3, 0.25, width_in)
    assert all(len(line) <= width_in * CHARS_PER_INCH for line in title.splitlines())
    assert "stopped before the budget" in title.replace("\n", " ")


def test_backtest_cost_words_do_not_claim_the_runs_ran_now():
    words = backtest_cost_words(SimpleNamespace(extra_runs=3, extra_flops=1e9))
    assert "needed 3 smaller run(s)" in words and "already in the store" in words


def test_predictions_from_an_earlier_rung_are_labelled():
    from lensllm.report.select_report import rung_label

    view = SimpleNamespace(sizes=np.array([50.0, 100.0, 200.0, 400.0]))
    assert rung_label(view, {"predicted_from_size": 100.0}) == " (from D<=100)"
    assert rung_label(view, {"predicted_from_size": 400.0}) == ""
    assert rung_label(view, {"predicted_from_size": None}) == ""


def test_the_loss_panels_range_over_the_data_not_a_wild_interval():
    from lensllm.report.select_report import _loss_range

    view = SimpleNamespace(zero_shot=np.array([3.0, 3.2]), target=800.0)
    sel = SimpleNamespace(predicted=np.array([1.0, 1.1]), lower=None, upper=None)
    outcome = SimpleNamespace(view=view, selection=sel, trust=None,
                              observed=[(np.array([50.0]), np.array([2.0])),
                                        (np.array([50.0]), np.array([2.2]))])
    lo, hi = _loss_range(outcome, [0, 1])
    assert (lo, hi) == pytest.approx((1.0 - 0.15 * 2.2, 3.2 + 0.15 * 2.2))  # 1.0-3.2, padded


def test_intervals_widen_the_panels_up_to_a_factor_two():
    from lensllm.report.select_report import _loss_range

    view = SimpleNamespace(zero_shot=None, target=800.0)
    sel = SimpleNamespace(predicted=np.array([1.0]), lower=np.array([0.8]),
                          upper=np.array([30.0]))  # an upper end far off the data
    outcome = SimpleNamespace(view=view, selection=sel, trust=None,
                              observed=[(np.array([50.0]), np.array([2.0]))])
    lo, hi = _loss_range(outcome, [0])
    assert (lo, hi) == pytest.approx((0.8 - 0.15 * 3.2, 4.0 + 0.15 * 3.2))  # 30 cut at 2 x 2
