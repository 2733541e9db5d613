"""P(best) from joint replicates, and the Brier score."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from lensllm.exceptions import InputError
from lensllm.selection.p_best import PSEUDO_COUNT, brier_score, p_best


def test_identical_candidates_are_equally_likely():
    reps = np.tile(np.random.default_rng(0).normal(size=500), (4, 1))
    assert p_best(reps) == pytest.approx(np.full(4, 0.25))


def test_two_normals_match_the_closed_form():
    # A ~ N(0, 1), B ~ N(d, 1) independent: P(A < B) = Phi(d / sqrt(2)).
    rng = np.random.default_rng(1)
    d = 0.7
    reps = np.vstack([rng.normal(0, 1, 200_000), rng.normal(d, 1, 200_000)])
    p = p_best(reps)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(norm.cdf(d / np.sqrt(2)), abs=0.005)


def test_shared_errors_do_not_blur_the_order():
    # A shared shift (same column for every candidate) moves no candidate past another.
    shift = np.random.default_rng(2).normal(0, 5, 1000)
    reps = np.vstack([1.0 + shift, 1.1 + shift, 1.2 + shift])
    p = p_best(reps)
    assert p[0] == pytest.approx((1000 + PSEUDO_COUNT) / (1000 + 3 * PSEUDO_COUNT))


def test_nan_is_never_best_and_no_probability_is_zero():
    reps = np.array([[np.nan] * 10, np.arange(10.0), np.arange(10.0) + 1])
    p = p_best(reps)
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert p[0] == pytest.approx(PSEUDO_COUNT / (10 + 3 * PSEUDO_COUNT))


def test_bad_shape_is_refused():
    with pytest.raises(InputError, match="shape"):
        p_best(np.zeros(3))


def test_brier_scores_of_the_references():
    c = 5
    assert brier_score(np.full(c, 1 / c), 2) == pytest.approx(1 - 1 / c)
    assert brier_score(np.eye(c)[2], 2) == 0.0
    assert brier_score(np.eye(c)[1], 2) == pytest.approx(2.0)
