"""Metrics of a truth check, computed by hand on a small example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensllm.pipeline.trust import TruthCheck
from lensllm.report.trust_report import check_metrics
from lensllm.selection import Selection


def test_metrics_over_the_candidates_with_a_true_loss():
    pred = np.array([1.0, 2.0, 1.5, 9.0])
    sel = Selection(score=pred, selected=0, predicted=pred, lower=pred - 0.2,
                    upper=pred + 0.2, level=0.9)
    truth = np.array([1.1, 1.9, 1.0, np.nan])  # the last candidate has no run at D*
    m = check_metrics(TruthCheck(4096.0, truth, sel))
    assert m["n_models"] == 3
    # RelAcc of the pick (index 0): (worst - picked) / (worst - best) = (1.9-1.1)/(1.9-1.0)
    assert m["relacc"] == pytest.approx(0.8 / 0.9)
    p, y = pred[:3], truth[:3]
    r = ((p - p.mean()) * (y - y.mean())).sum() / math.sqrt(
        ((p - p.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum())
    assert m["pearcorr"] == pytest.approx(r)
    assert m["log_rmse"] == pytest.approx(math.sqrt(np.mean(np.log(p / y) ** 2)))
    # intervals +-0.2: 1.1 in [0.8, 1.2], 1.9 in [1.8, 2.2], 1.0 not in [1.3, 1.7]
    assert m["coverage"] == pytest.approx(2 / 3)


def test_no_metrics_with_fewer_than_two_truths_and_no_relacc_for_an_unchecked_pick():
    pred = np.array([1.0, 2.0, 3.0])
    sel = Selection(score=pred, selected=0, predicted=pred)
    assert check_metrics(TruthCheck(64.0, np.array([np.nan, 2.0, np.nan]), sel)) is None
    m = check_metrics(TruthCheck(64.0, np.array([np.nan, 2.0, 3.5]), sel))
    assert m["relacc"] is None and m["pearcorr"] == pytest.approx(1.0)
    assert m["coverage"] is None


def test_the_check_at_d_star_says_how_many_intervals_a_calibrated_distribution_expects():
    # replicates with nothing shared: the count among the 3 with a truth is Binomial(3,
    # 0.9), so every interval holds in 0.9^3 = 0.729 of the outcomes and the central 90%
    # of the count is 2-3 (P(X <= 1) = 0.028, P(X <= 2) = 0.271)
    from types import SimpleNamespace

    from lensllm.report.trust_report import metric_words
    from lensllm.selection.expected_coverage import expected_coverage

    pred = np.array([1.0, 2.0, 1.5, 9.0])
    sel = Selection(score=pred, selected=0, predicted=pred, lower=pred - 0.2,
                    upper=pred + 0.2, level=0.9)
    truth = np.array([1.1, 1.9, 1.0, np.nan])
    reps = np.log(pred)[:, None] + 0.1 * np.random.default_rng(0).standard_normal((4, 40_000))
    expected = expected_coverage(SimpleNamespace(replicates=reps), among=np.isfinite(truth))
    m = check_metrics(TruthCheck(4096.0, truth, sel, expected=expected))
    exp = m["coverage_expected"]
    assert (m["covered"], exp["n"], exp["low"], exp["high"]) == (2, 3, 2, 3)
    assert exp["all_held"] == pytest.approx(0.729, abs=0.01)
    words = metric_words(m)
    assert ("2 of 3 intervals held the truth, a calibrated distribution expects 2-3 of 3 "
            f"(90% of outcomes; all 3 in {100 * exp['all_held']:.0f}%)") in words
    assert "NOT as expected" not in words
    # one interval holding is outside the range, and said so
    m["covered"] = 1
    assert metric_words(m).endswith(": NOT as expected")
    # without the distribution (a refit at another size) nothing is expected
    assert check_metrics(TruthCheck(4096.0, truth, sel))["coverage_expected"] is None
