"""The metric functions against independent formulas (scipy, hand computation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from lensllm.bench import coverage, log_rmse, pearson_corr, rel_acc


def test_pearson_corr_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.normal(size=30), rng.normal(size=30)
        assert pearson_corr(a, b) == pytest.approx(pearsonr(a, b)[0], abs=1e-12)
    assert pearson_corr([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson_corr([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)


def test_pearson_corr_of_a_constant_is_undefined():
    assert pearson_corr([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_rel_acc_by_hand():
    truth = np.array([2.0, 1.0, 3.0, 1.5])
    assert rel_acc(1, truth) == 1.0  # the best
    assert rel_acc(2, truth) == 0.0  # the worst
    assert rel_acc(3, truth) == pytest.approx((3.0 - 1.5) / (3.0 - 1.0))
    assert rel_acc(0, np.ones(3)) == 1.0


def test_log_rmse_and_coverage_by_hand():
    assert log_rmse([np.e, 1.0], [1.0, 1.0]) == pytest.approx(np.sqrt(0.5))
    assert coverage([0, 0, 2], [1, 1, 3], [0.5, 1.5, 2.0]) == pytest.approx(2 / 3)
