"""The run that would decide the best candidate per FLOP."""

from __future__ import annotations

import numpy as np

from lensllm.selection.next_run import decisive_run
from lensllm.selection.predictive import Predictive


def _pred(reps):
    reps = np.asarray(reps, float)
    return Predictive(np.median(reps, axis=1), reps, 8.0, 8.0, np.ones(reps.shape[0]), 10,
                      "test")


def test_the_uncertain_contender_is_the_one_to_run():
    rng = np.random.default_rng(0)
    a = np.full(2000, 1.0)  # known exactly: running it again decides nothing
    b = 1.0 + rng.normal(0, 0.2, 2000)  # straddles a
    c = 3.0 + rng.normal(0, 0.01, 2000)  # never best
    run = decisive_run(_pred([a, b, c]), np.array([100.0, 100.0, 100.0]), 800.0,
                       [200.0, 400.0], lambda i, s: s)
    assert run is not None and run.candidate == 1
    assert run.gain > 0 and run.cost == run.size


def test_cost_decides_between_equal_gains():
    rng = np.random.default_rng(1)
    a = 1.0 + rng.normal(0, 0.2, 2000)
    b = 1.0 + rng.normal(0, 0.2, 2000)
    price = {0: 1.0, 1: 100.0}  # b's runs cost 100 times as much
    run = decisive_run(_pred([a, b]), np.array([100.0, 100.0]), 800.0, [200.0, 400.0],
                       lambda i, s: price[i] * s)
    assert run.candidate == 0


def test_unknown_distribution_or_no_price_gives_nothing():
    pred = Predictive(np.zeros(2), None, 8.0, None, np.ones(2), 0, "unknown")
    assert decisive_run(pred, np.array([1.0, 1.0]), 8.0, [2.0], lambda i, s: s) is None
    rng = np.random.default_rng(2)
    reps = [rng.normal(0, 1, 100), rng.normal(0, 1, 100)]
    assert decisive_run(_pred(reps), np.array([1.0, 1.0]), 8.0, [2.0],
                        lambda i, s: None) is None
