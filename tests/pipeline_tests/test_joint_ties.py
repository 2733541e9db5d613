"""Ties with the leader read from the joint distribution (a shared drift ties nobody)."""

from __future__ import annotations

import numpy as np

from lensllm.pipeline.predictive import joint_ties
from lensllm.selection.predictive import Predictive


def _pred(reps):
    reps = np.asarray(reps, float)
    return Predictive(np.median(reps, 1), reps, 8.0, 8.0, np.ones(len(reps)), 10, "test")


def test_a_shared_drift_ties_nobody_even_with_overlapping_intervals():
    drift = np.random.default_rng(0).normal(0, 1.0, 4000)  # wide marginal intervals
    pred = _pred([drift, drift + 0.1, drift + 0.2])
    lo, hi = pred.interval(0.9)
    assert lo[1] < hi[0]  # the marginal intervals overlap ...
    assert joint_ties(pred, 0).tolist() == [False, False, False]  # ... yet b never wins


def test_a_candidate_ahead_in_enough_replicates_is_tied():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.1, 4000)
    b = rng.normal(0.1, 0.1, 4000)  # ahead of a in about 24% of replicates
    c = rng.normal(1.0, 0.1, 4000)  # never
    assert joint_ties(_pred([a, b, c]), 0).tolist() == [False, True, False]


def test_unknown_distribution_gives_none():
    pred = Predictive(np.zeros(2), None, 8.0, None, np.ones(2), 0, "unknown")
    assert joint_ties(pred, 0) is None
