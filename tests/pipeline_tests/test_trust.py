"""The trust assessment's rules on hand-made selections: ties, coverage, the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.pipeline.trust import Backtest, Trust, TruthCheck, tied_with_leader
from lensllm.selection import Selection


def _sel(pred, lower=None, upper=None, selected=None):
    pred = np.asarray(pred, float)
    return Selection(score=pred, selected=int(np.argmin(pred)) if selected is None else selected,
                     predicted=pred, lower=None if lower is None else np.asarray(lower, float),
                     upper=None if upper is None else np.asarray(upper, float), level=0.9)


def test_tied_means_the_interval_overlaps_the_leaders():
    # leader 0: [1.0, 1.4]; 1 overlaps at its lower end, 2 only touches the upper bound
    # (closed intervals overlap), 3 lies entirely above, 4 entirely below (cannot happen
    # for a leader by point prediction, but overlap is symmetric: not tied).
    sel = _sel([1.2, 1.5, 1.8, 2.0, 0.5], lower=[1.0, 1.3, 1.4, 1.5, 0.4],
               upper=[1.4, 1.7, 2.2, 2.5, 0.9], selected=0)
    np.testing.assert_array_equal(tied_with_leader(sel), [False, True, True, False, False])
    assert tied_with_leader(_sel([1.0, 2.0])) is None


@pytest.mark.parametrize("lower, upper, observed, covered", [
    (1.0, 2.0, 1.5, True), (1.0, 2.0, 2.0, True), (1.0, 2.0, 2.01, False),
    (None, None, 1.5, None)])
def test_backtest_covered(lower, upper, observed, covered):
    b = Backtest(256.0, 1.5, lower, upper, observed)
    assert b.covered is covered
    assert b.error == pytest.approx(np.log(1.5 / observed))


def _trust(sel, backtests, truth=None, target=4096.0):
    checks = [] if truth is None else [TruthCheck(target, np.asarray(truth, float), sel)]
    return Trust(backtests, checks, tied_with_leader(sel), comparable=True)


def test_clear_winner_has_no_reason():
    sel = _sel([1.0, 2.0], lower=[0.9, 1.8], upper=[1.1, 2.2])
    bts = [Backtest(256.0, 1.0, 0.9, 1.1, 1.05), Backtest(256.0, 2.0, 1.9, 2.1, 2.0)]
    trust = _trust(sel, bts, truth=[1.0, 2.1])
    assert trust.coverage() == (2, 2)
    assert trust.uncertain_reasons(["a", "b"], sel.selected, 4096.0) == []


def test_every_reason_is_named():
    sel = _sel([1.0, 1.2, 3.0], lower=[0.8, 1.0, 2.9], upper=[1.3, 1.5, 3.1])
    bts = [Backtest(256.0, 1.0, 0.9, 1.1, 1.5), Backtest(256.0, 1.2, 1.1, 1.3, 1.2),
           Backtest(128.0, note="no smaller paid size")]
    trust = _trust(sel, bts, truth=[1.4, 1.1, 3.0])
    reasons = trust.uncertain_reasons(["a", "b", "c"], sel.selected, 4096.0)
    assert trust.coverage() == (1, 2)
    assert reasons == ["tied with the leader (intervals overlap): b",
                       "back-test interval missed the held-out run of a",
                       "the store's runs at D* show b is better"]


def test_no_interval_and_no_backtest_are_reasons():
    sel = _sel([1.0, 2.0])
    trust = _trust(sel, [Backtest(64.0, note="x"), Backtest(64.0, note="x")])
    assert trust.uncertain_reasons(["a", "b"], 0, 4096.0) == [
        "the method gives no intervals, so ties cannot be ruled out",
        "no back-test was possible"]
