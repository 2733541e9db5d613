"""Stage 6 of ``lensllm select``: how far the ranking can be trusted (docs/design.md, section 5,
"every report checks itself").

- **Back-test per candidate**: the selector, unchanged, is run again on a view where the
  candidate's largest paid size is no longer affordable and is the size to predict at; its
  prediction of that held-out run is set against the observed loss, and the prediction
  interval either covered it or not. Candidates whose largest paid size is the same share
  one refit. A refit reads the runs already in the store; a run it asks for that is not
  there yet (a smaller size the first selection never needed) is paid for like any other
  run, and its FLOPs are reported apart (``extra_flops``).
- **Truth**: for every training size above the budget that has runs in the store (``D*``
  and any validation size), the true losses next to the predictions: at ``D*`` the
  selection's own predictions, elsewhere the selector refitted to predict at that size.
- **Ties**: candidates whose interval overlaps the leader's.
- **Validation** (:func:`validate_runs`, ``lensllm validate``): pays for real runs at a
  larger size for the top candidates, which the truth check then reads.

Metrics over the truth (RelAcc, PearCorr, log-RMSE) are computed by the report
(:mod:`lensllm.report.trust_report`) with the bench's metric functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lensllm.exceptions import InputError, LensLLMError
from lensllm.pipeline.convergence import runs_converged
from lensllm.pipeline.view import CandidateFailed, RunView
from lensllm.selection import NotApplicable, Selection
from lensllm.selection.expected_coverage import ExpectedCoverage, expected_coverage

__all__ = ["Backtest", "TruthCheck", "Trust", "assess_trust", "validate_runs"]


@dataclass(frozen=True)
class Backtest:
    """One candidate's back-test: its largest paid run predicted without it.

    Attributes:
        size: the held-out size (NaN when there is none).
        predicted: the refitted selector's prediction there (None when not possible).
        lower, upper: its interval (None when the selector gives none).
        observed: the held-out run's loss (mean over seeds).
        note: why there is no back-test ("" when there is one).
    """

    size: float
    predicted: float | None = None
    lower: float | None = None
    upper: float | None = None
    observed: float | None = None
    note: str = ""

    @property
    def covered(self) -> bool | None:
        """Whether the interval contained the observed loss (None: no interval)."""
        if self.lower is None or self.upper is None or self.observed is None:
            return None
        return bool(self.lower <= self.observed <= self.upper)

    @property
    def error(self) -> float | None:
        """``log(predicted / observed)``: the back-test error in log space."""
        if self.predicted is None or self.observed is None:
            return None
        return float(np.log(self.predicted / self.observed))


@dataclass(frozen=True)
class TruthCheck:
    """Predictions at a size above the budget against the store's runs there.

    Attributes:
        size: ``D*`` or a validation size.
        true_loss: the observed loss per candidate ``(C,)`` (NaN: no run at ``size``).
        selection: the predictions at ``size`` (the selection itself at ``D*``, else the
            selector refitted to predict at ``size``); None when the refit failed.
        note: why there is no prediction ("" when there is one).
        unconverged: the candidates whose run at ``size`` did not converge (it ended at
            its horizon still improving): their true loss is an upper bound, and metrics
            against it say so.
        expected: at ``D*``, how many of the intervals of the candidates with a true loss
            the joint distribution they were read from expects to hold it
            (:func:`lensllm.selection.expected_coverage.expected_coverage`); None at other
            sizes (refits) or without a measured distribution.
    """

    size: float
    true_loss: np.ndarray
    selection: Selection | None
    note: str = ""
    unconverged: tuple[str, ...] = ()
    expected: ExpectedCoverage | None = None

    @property
    def known(self) -> np.ndarray:
        """Which candidates have a true loss ``(C,)``."""
        return np.isfinite(self.true_loss)


@dataclass
class Trust:
    """Everything the report says about how far to trust a selection.

    Attributes:
        backtests: one per candidate.
        checks: truth checks, ``D*`` first, then other sizes above the budget.
        tied: per candidate, whether its interval overlaps the leader's (the leader
            itself: False); None when the selection gives no intervals.
        comparable: whether the candidates' losses are in one comparable unit (per byte,
            or per token with identical tokenizations of the test text).
        extra_flops: FLOPs of the runs the back-tests and refits paid for that the
            selection itself had not.
        extra_runs: how many such ``(model, size)`` runs.
        extra_paid: those runs, ``(model id, size)``.
        notes: other findings (a validation run that failed...).
    """

    backtests: list[Backtest]
    checks: list[TruthCheck]
    tied: np.ndarray | None
    comparable: bool
    extra_flops: float = 0.0
    extra_runs: int = 0
    extra_paid: frozenset[tuple[str, int]] = frozenset()
    notes: list[str] = field(default_factory=list)

    def at(self, size: float) -> TruthCheck | None:
        """The truth check at ``size`` (None when the store has no run there)."""
        return next((c for c in self.checks if c.size == size), None)

    def coverage(self) -> tuple[int, int]:
        """``(covered, back-tests with an interval)``."""
        flags = [b.covered for b in self.backtests if b.covered is not None]
        return sum(flags), len(flags)

    def uncertain_reasons(self, models: Sequence[str], selected: int,
                          target: float) -> list[str]:
        """Why the selection should not be read as one clear winner (empty: no reason)."""
        reasons = []
        if self.tied is None:
            reasons.append("the method gives no intervals, so ties cannot be ruled out")
        elif self.tied.any():
            reasons.append("tied with the leader (intervals overlap): " +
                           ", ".join(m for m, t in zip(models, self.tied) if t))
        missed = [m for m, b in zip(models, self.backtests) if b.covered is False]
        if missed:
            reasons.append("back-test interval missed the held-out run of " + ", ".join(missed))
        if not any(b.predicted is not None for b in self.backtests):
            reasons.append("no back-test was possible")
        check = self.at(target)
        if check is not None and check.known[selected] and check.known.sum() >= 2:
            best = int(np.nanargmin(check.true_loss))
            if check.true_loss[selected] > check.true_loss[best]:
                reasons.append(f"the store's runs at D* show {models[best]} is better")
        return reasons


def tied_with_leader(selection: Selection) -> np.ndarray | None:
    """Per candidate, whether its interval overlaps the selected candidate's ``(C,)``."""
    lo, hi = selection.lower, selection.upper
    if lo is None or hi is None:
        return None
    lead = selection.selected
    tied = (lo <= hi[lead]) & (lo[lead] <= hi)
    tied[lead] = False
    return np.asarray(tied, bool)


def _comparable(view: RunView) -> bool:
    """Losses per byte are comparable; per token only when every candidate cut the test text
    into the same number of tokens (read from the zero-shot runs)."""
    if view.loss_unit == "nats_per_byte":
        return True
    counts = {getattr(r.result, "test_scored_tokens", None)
              for i in range(view.n_models) for r in view.records(i, 0)}
    return len(counts) <= 1


def _refit(view: RunView, sizes: Sequence[int], target: float,
           selector: Any, spent: set) -> tuple[Selection | None, str]:
    """The selector on ``view`` restricted to ``sizes``, predicting at ``target``; the
    ``(model, size)`` runs it read are added to ``spent``. ``(None, reason)`` on failure."""
    if not sizes:
        return None, "no smaller paid size"
    sub = view.restricted(sizes, target)
    try:
        sel = selector.select(sub)
    except (NotApplicable, LensLLMError) as exc:
        return None, f"the selector could not refit: {str(exc).splitlines()[0]}"
    finally:
        spent |= sub.paid_runs
    if sel.predicted is None:
        return None, "the method predicts no loss"
    return sel, ""


def _backtests(view: RunView, selection: Selection, selector: Any,
               spent: set) -> list[Backtest]:
    """One back-test per candidate, one refit per distinct held-out size."""
    paid = view.paid
    largest = [float(view.sizes[p].max()) if p.any() else float("nan") for p in paid]
    if selection.predicted is None:
        return [Backtest(s, note="the method predicts no loss") for s in largest]
    out: list[Backtest | None] = [None] * view.n_models
    for s in sorted({s for s in largest if np.isfinite(s)}):
        below = [int(x) for x in view.sizes if x < s]
        sel, note = _refit(view, below, s, selector, spent)
        for i in (i for i in range(view.n_models) if largest[i] == s):
            observed = view.mean_loss(i, int(s))
            if sel is None:
                out[i] = Backtest(s, observed=observed, note=note)
                continue
            lo = None if sel.lower is None else float(sel.lower[i])
            hi = None if sel.upper is None else float(sel.upper[i])
            out[i] = Backtest(s, float(sel.predicted[i]), lo, hi, observed)
    return [b or Backtest(float("nan"), note="no paid run") for b in out]


def _true_loss(view: RunView, i: int, size: int) -> float:
    """Candidate ``i``'s mean loss at ``size`` over its finished runs (NaN: none)."""
    if not any(r.status == "finished" for r in view.records(i, size)):
        return float("nan")
    try:
        return view.mean_loss(i, size)
    except CandidateFailed:  # a run without a byte count, in a per-byte ranking
        return float("nan")


def _truth_checks(view: RunView, selection: Selection, selector: Any, spent: set,
                  predictive: Any = None) -> list[TruthCheck]:
    """A truth check at every size above the budget with runs in the store, ``D*`` first
    (with the coverage ``predictive``, the selection's joint distribution, expects)."""
    above = [s for s in view.stored_sizes() if s > view.max_data_num]
    above.sort(key=lambda s: (s != view.target, s))
    checks = []
    for size in above:
        truth = np.array([_true_loss(view, i, size) for i in range(view.n_models)])
        points = runs_converged(view, [(m, int(size)) for m in view.models])
        bad = tuple(dict.fromkeys(p.model for p in points if not p.converged))
        if size == view.target:
            known = np.isfinite(truth)
            expected = (None if predictive is None or not known.any() else
                        expected_coverage(predictive, among=known,
                                          level=selection.level or 0.9))
            checks.append(TruthCheck(float(size), truth, selection, unconverged=bad,
                                     expected=expected))
            continue
        affordable = [int(x) for x in view.sizes]
        sel, note = _refit(view, affordable, size, selector, spent)
        checks.append(TruthCheck(float(size), truth, sel, note, unconverged=bad))
    return checks


def assess_trust(view: RunView, selection: Selection, selector: Any,
                 log: Callable[[str], None] = lambda s: None, *,
                 predictive: Any = None) -> Trust:
    """Back-tests, truth checks and ties of a selection (see the module docstring).

    Args:
        view: the selection's view (store open).
        selection: the selector's result on it.
        selector: the selector that made ``selection`` (selectors hold only their
            configuration, so one instance refits any view).
        log: receives progress lines.
        predictive: the joint distribution ``selection``'s intervals were read from
            (:mod:`lensllm.selection.predictive`); the check at ``D*`` then says how many
            of them it expects to hold the truth.

    Returns:
        The assessment; refits that paid for runs are priced in ``extra_flops``.
    """
    log("back-test: each candidate's largest paid run predicted by the selector "
        "refitted without it")
    spent: set[tuple[str, int]] = set()
    backtests = _backtests(view, selection, selector, spent)
    checks = _truth_checks(view, selection, selector, spent, predictive)
    extra = spent - view.paid_runs
    flops = float(sum(view.flops(m, s) for m, s in extra))
    return Trust(backtests, checks, tied_with_leader(selection), _comparable(view),
                 extra_flops=flops, extra_runs=len(extra), extra_paid=frozenset(extra))


def validate_runs(view: RunView, selection: Selection, size: int, top: int,
                  pool: int) -> list[str]:
    """Pay for real runs at ``size`` for the ``top`` best-ranked candidates (every seed);
    runs already in the store are reused.

    Args:
        view: the selection's view (store open).
        selection: its result.
        size: the validation size, above the budget.
        top: how many candidates, best first.
        pool: training examples available (the largest possible size).

    Returns:
        Notes on runs that failed (the others are in the store).

    Raises:
        InputError: ``size`` not above the budget or above ``pool``; ``top`` < 1.
    """
    if size <= view.max_data_num:
        raise InputError(f"validation size {size} must be above the budget "
                         f"(selection.max_data = {view.max_data_num:g})")
    if size > pool:
        raise InputError(f"validation size {size} is more than the {pool} training examples "
                         "of the task")
    if top < 1:
        raise InputError(f"--top must be >= 1, got {top}")
    sub = view.restricted([size], float(size))
    notes = []
    for i in selection.ranking()[:top]:
        try:
            sub.observe(int(i), size)
        except CandidateFailed as exc:
            notes.append(f"validation run of {exc.model} at {size} failed: {exc.reason}")
    return notes
