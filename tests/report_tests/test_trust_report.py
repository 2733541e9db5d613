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
