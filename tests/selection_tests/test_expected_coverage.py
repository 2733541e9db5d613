"""How many of its own intervals a calibrated distribution expects to hold the truth."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import binom

from lensllm.exceptions import InputError
from lensllm.selection.expected_coverage import coverage_counts, expected_coverage


def _independent(n_models: int, n_rep: int = 40_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.log(np.arange(1, n_models + 1))[:, None] + 0.1 * rng.standard_normal(
        (n_models, n_rep))


def test_independent_errors_give_binomial_counts():
    # no shared part: each interval holds a replicate with probability 0.9, independently,
    # so the count among 9 is Binomial(9, 0.9)
    counts = coverage_counts(_independent(9))
    freq = np.bincount(counts, minlength=10) / counts.size
    assert freq == pytest.approx(binom.pmf(np.arange(10), 9, 0.9), abs=0.01)


def test_the_range_is_the_binomial_quantiles_when_nothing_is_shared():
    # Binomial(9, 0.9): P(X <= 6) = 0.053, P(X <= 7) = 0.225, P(X <= 8) = 0.613, so the
    # central 80% is 7-9; every interval holds in 0.9^9 = 0.387 of the outcomes
    exp = expected_coverage(SimpleNamespace(replicates=_independent(9)), mass=0.8)
    assert (exp.n, exp.low, exp.high) == (9, 7, 9)
    assert exp.all_held == pytest.approx(0.9 ** 9, abs=0.01)
    assert exp.mean == pytest.approx(8.1, abs=0.02)
    assert exp.holds(7) and exp.holds(9) and not exp.holds(6)


def test_a_fully_shared_error_moves_every_interval_together():
    # one draw shared by every candidate: all intervals hold it (90%) or none does (10%)
    z = np.random.default_rng(1).standard_normal(40_000)
    reps = np.log([1.0, 2.0, 3.0, 4.0])[:, None] + 0.2 * z[None, :]
    counts = coverage_counts(reps)
    assert np.isin(counts, [0, 4]).mean() > 0.999  # (a boundary replicate may round)
    exp = expected_coverage(SimpleNamespace(replicates=reps))
    assert (exp.low, exp.high) == (0, 4)
    assert exp.all_held == pytest.approx(0.9, abs=0.005)


def test_only_the_candidates_asked_for_are_counted():
    reps = _independent(6)
    mask = np.array([True, False, True, False, False, True])
    exp = expected_coverage(SimpleNamespace(replicates=reps), among=mask)
    assert exp.n == 3
    assert coverage_counts(reps, np.flatnonzero(mask)).max() == 3
    assert exp.all_held == pytest.approx(0.9 ** 3, abs=0.01)


def test_an_unknown_distribution_expects_nothing():
    assert expected_coverage(SimpleNamespace(replicates=None)) is None
    reps = _independent(3, n_rep=100)
    assert expected_coverage(SimpleNamespace(replicates=reps),
                             among=np.zeros(3, bool)) is None


def test_the_record_has_the_range_and_the_all_held_share():
    exp = expected_coverage(SimpleNamespace(replicates=_independent(9)), mass=0.8)
    rec = exp.to_dict()
    assert (rec["n"], rec["low"], rec["high"], rec["mass"]) == (9, 7, 9, 0.8)
    assert rec["all_held"] == exp.all_held and rec["mean"] == exp.mean


@pytest.mark.parametrize("kwargs, key", [({"level": 1.0}, "level"), ({"mass": 0.0}, "mass")])
def test_bad_levels_are_refused(kwargs, key):
    with pytest.raises(InputError, match=key):
        expected_coverage(SimpleNamespace(replicates=_independent(3, n_rep=100)), **kwargs)


def test_replicates_of_the_wrong_shape_are_refused():
    with pytest.raises(InputError, match="replicates"):
        coverage_counts(np.zeros(5))
