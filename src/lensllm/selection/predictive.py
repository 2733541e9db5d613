"""The selector's predictive distribution of ``L(D*)``, calibrated at the distance asked.

A selector gives a point prediction per candidate (and sometimes an interval that measures
the noise of its fit, not the error of extrapolating). How wrong such a prediction is
depends on how far it reaches: the ratio ``D*/D_max`` between the size asked for and the
largest affordable run. This module measures that error for the selector at hand, at (as
nearly as the points allow) the same ratio, and turns it into one joint distribution that
the ranking, P(best), the intervals, the data plan and the curves all read.

**Back-test at the ratio asked.** With ``D_max`` the largest affordable size and ``r = D* /
D_max``, the selector, unchanged, is run on a view whose budget is ``D_max / r'`` and whose
target is ``D_max``, with ``r'`` the largest ratio ``<= r`` that the affordable sizes allow
and at which the selector still runs (the sizes are tried from the smallest up). Then, at
the same ``r'``, the next smaller sizes are predicted the same way (up to
:data:`MAX_POSITIONS` positions): how much the errors shared by all candidates move from
one position to the next is what a single back-test cannot show. (A size paid for by fewer
than :data:`MIN_ERRORS` candidates, a pruning selector's finalists, is passed over: the
first position is the largest size that many reached.) At each position every
candidate the selection itself paid for at the predicted size gives one error ``e_m =
log(predicted_m / observed_m)``. When ``r' < r`` the errors are widened to the distance
asked, ``d = log r / log r'``: their shared part (below) by ``d ** g`` (a curvature every
line misses grows faster than the distance), with the exponent ``g`` drawn per replicate
from :data:`GROWTH_RANGE` (a short back-test cannot tell how fast; the median is
:data:`GROWTH`), and each candidate's own part by
``d ** SCATTER_GROWTH`` (the error of a straight line's slope grows linearly with it); a
candidate whose own largest paid run is below ``D_max`` (stopped early) is widened the same
way for its longer reach.

**Joint replicates.** The errors split into a part shared by all candidates (the mean of a
position: a drift of every curve, which moves no candidate relative to another) and a part
of each (the error minus its position's mean). Replicate ``r`` of candidate ``i`` is

    ``log L_i^(r) = log predicted_i - s_i * (c^(r) + t * d_i^(r))``

with ``c^(r)`` the shared part: with two or more positions a new draw around their mean
errors (its movement between positions and its uncertainty), with one the bootstrap of its
mean plus a change of :data:`POSITION_SPREAD` times it (what the other positions of the
published tables' back-tests showed), ``d_i^(r)`` drawn
from the centred errors of every position independently per candidate, ``s_i`` the
widening above and ``t`` the small-sample factor ``t_{M-1}(0.95) / z(0.95) * sqrt((M + 1)
/ (M - 1))`` for ``M`` errors (a quantile read from a handful of errors is too narrow; the
factor tends to 1 as ``M`` grows). A pruning selector's stopped candidates also carry the
change it expected on the rungs they skipped (:attr:`Selection.skipped_change`).

**The point prediction** :func:`calibrate` returns is the median of the replicates: the
selector's prediction corrected by the drift the back-tests measured (on the zoo's real runs
this took the log-RMSE of ``L(D*)`` from 0.17-0.20 to 0.04-0.09; ``docs/select.md``). The
interval is read from the same replicates.

**Too few runs.** With fewer than :data:`MIN_ERRORS` errors (or no back-test the selector
can run) the distribution is unknown: intervals are ``[0, inf)`` and P(best) is uniform,
and :attr:`Predictive.note` says why. Never narrow, never silently.

Torch-free; sizes are numbers of examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from lensllm.exceptions import InputError, LensLLMError
from lensllm.selection._base import NotApplicable, Selection
from lensllm.selection.p_best import p_best

__all__ = ["GROWTH", "GROWTH_RANGE", "MAX_POSITIONS", "MIN_ERRORS", "N_REPLICATES",
           "POSITION_SPREAD", "Predictive", "SCATTER_GROWTH", "backtest_errors", "calibrate",
           "drift_widening", "from_errors", "largest_paid", "own_errors", "reach_fraction",
           "recentered", "shrunk_to_rung", "small_sample_factor", "unknown"]

#: Exponent of the widening of the shared drift from the distance back-tested to the
#: distance asked (a curvature the lines miss: its error grows faster than the distance).
GROWTH = 1.5
#: The range the growth exponent of the shared drift is drawn from, uniformly, per replicate
#: (its median is :data:`GROWTH`). How fast a line's drift grows with the distance is not
#: something a back-test at a shorter distance can measure; from 2x-4x to the longest reach
#: of the bundled tables it grew with exponents of about 1.1 (Gigaword), 1.55 and 1.8 (the
#: zoo's docstrings and comments) and 2.2 (FLAN). A fixed 1.5 gave intervals too narrow
#: where the curves bend more than that (coverage 0.36 on the zoo's first table, whose
#: step-limited curves bend; 0.55 with the range; docs/select.md).
GROWTH_RANGE = (1.0, 2.0)
#: Exponent of the widening of each candidate's own error (the scatter about the shared
#: drift): a slope's error grows in proportion to the log-distance. Measured on the bundled
#: tables (the spread across candidates of a 3-point line's error, 2x to 1024x ahead):
#: exponents 1.2 (FLAN), 0.9 (Gigaword), 1.0 and 1.2 (the zoo's docstrings and comments).
SCATTER_GROWTH = 1.0
#: With one back-test position, the shared drift at ``D*`` differs from the one measured by
#: a normal change of this share of it (its standard deviation). One position is what real
#: runs give (every zoo table and a new user's task at D*/4 to D*/16: the grids are short),
#: and a bootstrap of its mean treated the drift at ``D*`` as known. Measured on the
#: published tables, where the halving back-tests reach 2-4 positions (D*/4 to D*/32): the
#: mean error of each further position differs from the first's by a median of 0.46 of the
#: first (20 changes; heavy-tailed, RMS 1.2), a robust standard deviation of 0.46 / 0.674 =
#: 0.68. (At D*/8 the default selector's coverage stays 0.89 on the zoo's comments and 1.00
#: on docstrings, widths 1.27 -> 1.41 and 1.42 -> 1.78; held out, the step-limited zoo
#: table goes from 0.55 to 1.00 at D*/8 and the word lists from 0.33 to 0.44 at D*/4;
#: docs/select.md.)
POSITION_SPREAD = 0.68
#: Fewer back-test errors than this and the predictive distribution is unknown.
MIN_ERRORS = 3
#: Back-test positions at most (``D_max``, then the next smaller paid sizes).
MAX_POSITIONS = 4
#: Replicates of the joint distribution.
N_REPLICATES = 4000


@dataclass(frozen=True, eq=False)
class Predictive:
    """A joint predictive distribution of ``log L(D*)`` over the candidates.

    Attributes:
        center: the point prediction ``log L(D*)`` ``(C,)`` (NaN: none): the selector's
            (:func:`from_errors`), or the replicates' median (:func:`calibrate`).
        replicates: joint replicates of ``log L(D*)`` ``(C, R)``; None when unknown.
        ratio_asked: ``D* / D_max``.
        ratio_tested: the ratio of the back-test (None: no back-test).
        widening: per candidate, the factor the shared error was scaled by ``(C,)`` (its
            median over the replicates when the growth exponent is drawn).
        n_errors: back-test errors behind the distribution.
        note: one sentence saying how the distribution was made (or why it is unknown).
    """

    center: np.ndarray
    replicates: np.ndarray | None
    ratio_asked: float
    ratio_tested: float | None
    widening: np.ndarray
    n_errors: int
    note: str

    @property
    def known(self) -> bool:
        """Whether the distribution was measured (False: intervals are ``[0, inf)``)."""
        return self.replicates is not None

    @property
    def predicted(self) -> np.ndarray:
        """The point prediction ``L(D*)`` ``(C,)``."""
        return np.exp(self.center)

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` interval of ``L(D*)`` per candidate: ``(lower, upper)``."""
        if not 0 < level < 1:
            raise InputError(f"`level` must be in (0, 1), got {level}")
        n = self.center.size
        if self.replicates is None:
            return np.zeros(n), np.full(n, np.inf)
        a = (1 - level) / 2
        lo, hi = np.quantile(self.replicates, [a, 1 - a], axis=1)
        return np.exp(lo), np.exp(hi)

    def p_best(self) -> np.ndarray:
        """Each candidate's probability of the lowest ``L(D*)`` ``(C,)``, summing to 1."""
        if self.replicates is None:
            return np.full(self.center.size, 1.0 / self.center.size)
        return p_best(self.replicates)

    def log_errors(self, d: np.ndarray, d_max: np.ndarray, target: float) -> np.ndarray:
        """Replicate errors of ``log L`` at sizes ``d`` ``(C, R, m)`` (0 up to each ``d_max``).

        The error at ``D*`` is that of :attr:`replicates`; at another size beyond a
        candidate's largest paid run ``d_max`` it scales with the distance reached,
        ``(log(d / d_max) / log(D* / d_max)) ** GROWTH``, so curves and their bands pass
        through the distribution at ``D*`` (the data plan reads them).
        """
        if self.replicates is None:
            raise InputError("the predictive distribution is unknown (no back-test)")
        frac = reach_fraction(d, d_max, target)
        dev = self.replicates - self.center[:, None]
        return dev[:, :, None] * frac[:, None, :]

    def subset(self, idx) -> Predictive:
        """The distribution of some candidates (rows ``idx``), jointly."""
        idx = np.asarray(idx, int)
        reps = None if self.replicates is None else self.replicates[idx]
        return replace(self, center=self.center[idx], replicates=reps,
                       widening=self.widening[idx])

    def to_dict(self, level: float = 0.9) -> dict[str, Any]:
        """JSON-ready summary (without the replicates)."""
        return {"known": self.known, "ratio_asked": self.ratio_asked,
                "ratio_tested": self.ratio_tested, "n_errors": self.n_errors,
                "level": level, "note": self.note}


def reach_fraction(d: np.ndarray, d_max: np.ndarray, target: float) -> np.ndarray:
    """How much of the error at ``D*`` a curve carries at sizes ``d`` ``(C, m)``:
    ``(log(d / d_max) / log(D* / d_max)) ** GROWTH`` beyond each candidate's largest paid
    run ``d_max`` ``(C,)``, 0 up to it, 1 at ``D*``."""
    d = np.asarray(d, float)[None, :]
    d_max = np.asarray(d_max, float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.log(np.maximum(d, d_max) / d_max) / np.log(target / d_max)
    return np.nan_to_num(np.maximum(frac, 0.0)) ** GROWTH


def unknown(center: np.ndarray, ratio: float, why: str) -> Predictive:
    """A distribution that is not known (intervals ``[0, inf)``, uniform P(best))."""
    center = np.asarray(center, float)
    return Predictive(center, None, ratio, None, np.full(center.size, np.nan), 0,
                      f"not calibrated: {why}; intervals are unbounded and P(best) is "
                      f"uniform")


def small_sample_factor(m: int) -> float:
    """``t_{M-1}(0.95) / z(0.95) * sqrt((M + 1) / (M - 1))``: widens quantiles of few errors."""
    z = NormalDist().inv_cdf(0.95)
    return float(student_t.ppf(0.95, m - 1) / z * np.sqrt((m + 1) / (m - 1)))


def _shared_draws(errors: list[np.ndarray], n_rep: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Draws of the error shared by all candidates ``(n_rep,)``.

    With ``J >= 2`` positions, their means are a sample of the shared drift at different
    places of the curves: a new place (``D*``) gets the prediction interval of a new draw,
    ``mean + sd * sqrt(1 + 1/J) * T_{J-1}``. With one position, the bootstrap of its mean,
    plus a normal change of :data:`POSITION_SPREAD` times that mean: where the curves are
    at ``D*`` is not where the one back-test measured them.
    """
    means = np.array([e.mean() for e in errors])
    if means.size >= 2:
        scale = means.std(ddof=1) * np.sqrt(1 + 1 / means.size)
        return means.mean() + scale * rng.standard_t(means.size - 1, size=n_rep)
    e = errors[0]
    boot = e[rng.integers(e.size, size=(n_rep, e.size))].mean(axis=1)
    return boot + POSITION_SPREAD * abs(e.mean()) * rng.standard_normal(n_rep)


def _usable(errors: list[np.ndarray]) -> list[np.ndarray]:
    """The positions' finite errors, positions with at least two kept."""
    errors = [e[np.isfinite(e)] for e in (np.asarray(x, float) for x in errors)]
    return [e for e in errors if e.size >= 2]


def own_errors(errors: list[np.ndarray]) -> np.ndarray:
    """Each candidate's own part of the back-test errors: centred per position and widened
    by :func:`small_sample_factor` ``(M,)`` (empty with fewer than two errors)."""
    errors = _usable(errors)
    m = sum(e.size for e in errors)
    if m < 2:
        return np.zeros(0)
    return np.concatenate([e - e.mean() for e in errors]) * small_sample_factor(m)


def from_errors(center: np.ndarray, errors: list[np.ndarray], widening: np.ndarray, *,
                ratio_asked: float, ratio_tested: float,
                scatter_widening: np.ndarray | None = None, scatter_label: str | None = None,
                growth_label: str | None = None, n_rep: int = N_REPLICATES,
                seed: int = 0) -> Predictive:
    """The joint replicates of the module docstring from back-test errors.

    Args:
        center: point predictions ``log L(D*)`` ``(C,)``.
        errors: per back-test position, the errors ``log(predicted / observed)`` of its
            candidates ``(M_j,)``.
        widening: per-candidate scale ``s_i`` of the shared part ``(C,)``, or one per
            candidate and replicate ``(C, n_rep)`` (:func:`drift_widening`).
        ratio_asked, ratio_tested: for the record.
        scatter_widening: per-candidate scale of the own part ``(C,)`` (default:
            ``widening``).
        scatter_label: the exponent of that scale for the note (the calibration's
            ``"^1"``); None: "the scale given".
        growth_label: the exponent of ``widening`` for the note (default ``"^1.5"``).
        n_rep: replicates.
        seed: of the draws.
    """
    center = np.asarray(center, float)
    errors = _usable(errors)
    m = sum(e.size for e in errors)
    if m < MIN_ERRORS:
        return unknown(center, ratio_asked, f"{m} back-test error(s), fewer than the "
                                            f"{MIN_ERRORS} needed")
    widening = np.asarray(widening, float)
    if widening.shape not in ((center.size,), (center.size, n_rep)):
        raise InputError(f"`widening` must have shape ({center.size},) or ({center.size}, "
                         f"{n_rep}) (candidates, replicates), got {widening.shape}")
    per_rep = widening if widening.ndim == 2 else widening[:, None]
    widening = np.median(per_rep, axis=1)
    scatter = widening if scatter_widening is None else np.asarray(scatter_widening, float)
    rng = np.random.default_rng(seed)
    shared = _shared_draws(errors, n_rep, rng)
    own = own_errors(errors)
    draws = own[rng.integers(own.size, size=(center.size, n_rep))]
    reps = center[:, None] - per_rep * shared[None, :] - scatter[:, None] * draws
    how = (f"measured by back-testing the selector at {ratio_tested:.3g}x "
           f"({m} errors at {len(errors)} position(s))")
    if ratio_tested < ratio_asked * (1 - 1e-9):
        d = f"(log {ratio_asked:.3g} / log {ratio_tested:.3g})"
        how += (f", widened to the {ratio_asked:.3g}x asked by {d}"
                f"{growth_label or f'^{GROWTH:g}'} (the shared drift)")
        if scatter_widening is not None:
            how += (f", each candidate's own error by {d}{scatter_label}" if scatter_label
                    else ", each candidate's own error by the scale given")
    else:
        how += f", the {ratio_asked:.3g}x asked"
    return Predictive(center, reps, ratio_asked, ratio_tested, widening,
                      m, how)


def drift_widening(distance: np.ndarray, n_rep: int, *, seed: int = 0) -> np.ndarray:
    """Per candidate and replicate, the widening of the shared drift ``d ** g`` ``(C,
    n_rep)``: ``d`` the candidate's distance ``log(reach) / log r'`` ``(C,)``, the exponent
    ``g`` drawn uniformly from :data:`GROWTH_RANGE` per replicate (one draw shared by every
    candidate: a curvature steeper than assumed is steeper for all). 1 where ``d == 1``.
    The exponents come from a stream of their own (``seed + 7``), so the other draws of a
    calibration do not move with them."""
    g = np.random.default_rng(seed + 7).uniform(*GROWTH_RANGE, n_rep)
    return np.asarray(distance, float)[:, None] ** g[None, :]


def largest_paid(view: Any) -> np.ndarray:
    """Each candidate's largest paid size ``(C,)`` (NaN: none)."""
    paid = np.asarray(view.paid, bool)
    sizes = np.where(paid, np.asarray(view.sizes, float)[None, :], -np.inf).max(axis=1)
    return np.where(np.isfinite(sizes), sizes, np.nan)


def _one_backtest(make_selector, make_view, budgets, target: float, ratio: float,
                  notes: list[str]):
    """The selector refitted on the smallest of ``budgets`` whose ratio ``target / budget``
    is at most ``ratio`` and where it runs: ``(selection, ratio)`` or ``(None, None)``."""
    for budget in budgets:
        r_test = target / budget
        if r_test > ratio * (1 + 1e-9) or budget >= target:
            continue
        try:
            return make_selector().select(make_view(float(budget), target)), r_test
        except (NotApplicable, LensLLMError) as exc:
            notes.append(f"at {r_test:.3g}x: {str(exc).splitlines()[0]}")
    return None, None


def backtest_errors(make_selector: Callable[[], Any], view: Any,
                    make_view: Callable[[float, float], Any]
                    ) -> tuple[list[np.ndarray], float | None, str]:
    """The selector's back-test errors at the ratio asked (module docstring).

    The first position predicts ``D_max`` from the smallest budget ``D_max / r'`` (``r' <=
    D* / D_max``) where the selector runs; when fewer than :data:`MIN_ERRORS` candidates
    were paid for at ``D_max`` (a pruning selector's finalists), the largest size paid for
    by that many takes its place. The next positions (up to
    :data:`MAX_POSITIONS`) predict the next smaller paid sizes from budgets at the same
    ``r'``, while those are affordable sizes. At each position only the candidates the
    selection itself paid for at that size give an error (no run is bought for the truth).

    Args:
        make_selector: a fresh selector configured as the one being calibrated.
        view: the selection's view (``sizes``, ``target``, ``paid``, ``observe``).
        make_view: ``(budget, target) -> view`` of the same candidates.

    Returns:
        ``(errors per position, r' or None, note)``.
    """
    sizes = np.asarray(view.sizes, float)
    paid = np.asarray(view.paid, bool)
    ratio = float(view.target) / float(sizes[-1])
    notes: list[str] = []
    out: list[np.ndarray] = []
    r_first = None
    for col in range(sizes.size - 1, 0, -1):
        known = np.flatnonzero(paid[:, col])
        if len(out) >= MAX_POSITIONS:
            break
        if known.size < (2 if out else MIN_ERRORS):  # sizes a pruning selector paid for
            continue                                   # too few candidates to start on
        target = float(sizes[col])
        budgets = sizes[:col] if r_first is None else sizes[:col][
            np.isclose(target / sizes[:col], r_first)]
        sel, r_test = _one_backtest(make_selector, make_view, budgets, target,
                                    ratio if r_first is None else r_first, notes)
        if sel is None:
            break
        if sel.predicted is None:
            return [], None, "the method predicts no loss"
        r_first = r_first or r_test
        observed = np.asarray(view.observe(known, target), float)
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.log(np.asarray(sel.predicted, float)[known] / observed)
        out.append(err[np.isfinite(err)])
    if r_first is None:
        return [], None, ("no back-test possible within the budget" +
                          (f" ({notes[-1]})" if notes else ""))
    return out, r_first, ""


def calibrate(selection: Selection, view: Any, make_selector: Callable[[], Any],
              make_view: Callable[[float, float], Any], *, n_rep: int = N_REPLICATES,
              seed: int = 0) -> Predictive:
    """The predictive distribution of ``selection`` made on ``view`` (module docstring).

    Args:
        selection: the selector's result on ``view``.
        view: its view (``sizes``, ``target``, ``paid``, ``observe``).
        make_selector: a fresh selector configured as the one that made ``selection``.
        make_view: ``(budget, target) -> view`` of the same candidates (the back-test pays
            through it: a table view, or a run view restricted to smaller sizes).
        n_rep, seed: replicates and their seed.
    """
    n = view.n_models
    sizes = np.asarray(view.sizes, float)
    ratio = float(view.target) / float(sizes[-1])
    if selection.predicted is None:
        return unknown(np.full(n, np.nan), ratio, "the method predicts no loss")
    center = np.log(np.asarray(selection.predicted, float))
    if not ratio > 1:
        return unknown(center, ratio, "D* is not beyond the largest affordable size")
    errors, r_test, why = backtest_errors(make_selector, view, make_view)
    if r_test is None:
        return unknown(center, ratio, why)
    largest = largest_paid(view)
    reach = float(view.target) / np.nan_to_num(largest, nan=sizes[-1])
    distance = np.log(np.maximum(reach, ratio)) / np.log(r_test)
    scatter = distance ** SCATTER_GROWTH
    own = own_errors(errors)
    center, skipped, shrunk = shrunk_to_rung(
        center, selection.rung_field, selection.skipped_change,
        scatter * (own.std() if own.size else 0.0))
    lo, hi = GROWTH_RANGE
    pred = from_errors(center, errors, drift_widening(distance, n_rep, seed=seed),
                       ratio_asked=ratio, ratio_tested=r_test, scatter_widening=scatter,
                       scatter_label=f"^{SCATTER_GROWTH:g}",
                       growth_label=f"^g, g uniform on [{lo:g}, {hi:g}]", n_rep=n_rep,
                       seed=seed)
    pred = replace(pred, widening=distance ** GROWTH)
    if shrunk and pred.known:
        pred = replace(pred, note=pred.note + f"; {shrunk} candidate(s) stopped early shrunk "
                                              "towards the field of their last rung")
    pred = _add_skipped_change(pred, skipped, seed=seed)
    return recentered(_capped_by_observed(pred, view, largest))


def shrunk_to_rung(center: np.ndarray, field: np.ndarray | None,
                   skipped: np.ndarray | None, scatter_sd: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Stopped candidates' predictions pulled towards the field of their last rung.

    A pruning selector stops the candidates whose early predictions look worst, and an
    early prediction is the truth plus an error of spread ``tau`` (the candidate's own
    error at its reach, ``scatter_sd``): the worst-looking are, on average, those whose
    errors were largest, so their predictions overstate their loss (and the finalists'
    understate theirs; the back-tests measure those). With the field's predictions on that
    rung having mean ``mu`` and variance ``v``, the empirical-Bayes estimate is ``mu + (1 -
    k) (center - mu)``, ``k = min(1, tau^2 / v)``, and the change the prediction would
    still have made on the rungs skipped narrows by ``sqrt(1 - k)``. (On the bundled tables
    at D*/8 this took the log-RMSE of the calibrated ``L(D*)`` from 0.175 to 0.155 on FLAN,
    0.139 to 0.126 on Gigaword; docs/select.md.)

    Returns:
        ``(center, skipped, number of candidates shrunk)``.
    """
    center = np.asarray(center, float).copy()
    if field is None:
        return center, skipped, 0
    field = np.asarray(field, float)
    stopped = np.flatnonzero(np.isfinite(field).all(axis=1) & (field[:, 1] > 0))
    if stopped.size == 0:
        return center, skipped, 0
    mu, var = field[stopped, 0], field[stopped, 1]
    k = np.minimum(1.0, np.asarray(scatter_sd, float)[stopped] ** 2 / var)
    center[stopped] = mu + (1 - k) * (center[stopped] - mu)
    if skipped is not None:
        skipped = np.asarray(skipped, float).copy()
        skipped[stopped, 1] *= np.sqrt(1 - k)
    return center, skipped, int(stopped.size)


def _capped_by_observed(pred: Predictive, view: Any, largest: np.ndarray) -> Predictive:
    """Replicates no higher than each candidate's loss at its largest paid run: a converged
    loss does not rise with more data of the same task under the same recipe (on the
    published and zoo tables no true ``L(D*)`` is above it), while a drift measured over a
    short back-test and widened to a long reach can put much of a distribution there."""
    if not pred.known:
        return pred
    have = np.flatnonzero(np.isfinite(largest))
    if have.size == 0:
        return pred
    with np.errstate(divide="ignore"):
        ceiling = np.log(np.asarray(view.observe(have, largest[have]), float))
    reps = pred.replicates.copy()
    reps[have] = np.minimum(reps[have], ceiling[:, None])
    return replace(pred, replicates=reps,
                   note=pred.note + "; no candidate above its loss at its largest paid run")

def recentered(pred: Predictive) -> Predictive:
    """The distribution with its point prediction moved to the median of its replicates:
    the selector's prediction corrected by the drift the back-tests measured (the
    selector's own prediction is kept by :func:`lensllm.pipeline.predictive`)."""
    if not pred.known:
        return pred
    return replace(pred, center=np.median(pred.replicates, axis=1),
                   note=pred.note + "; the point prediction is the median of the replicates")


def _add_skipped_change(pred: Predictive, skipped: np.ndarray | None, *,
                        seed: int) -> Predictive:
    """A pruning selector's stopped candidates also carry the change their prediction would
    still have made on the rungs they skipped (:attr:`Selection.skipped_change`): the back-
    tests measure the error of a prediction made at the budget, and a candidate stopped
    early was chosen for stopping by a prediction that had not finished moving."""
    if not pred.known or skipped is None:
        return pred
    skipped = np.asarray(skipped, float)
    moving = (skipped != 0).any(axis=1)
    if not moving.any():
        return pred
    # one draw per replicate shared by every stopped candidate: the rungs' change moves
    # their predictions together (independent draws would let the lowest of many stopped
    # candidates undercut the finalists by chance alone)
    z = np.random.default_rng(seed + 1).standard_normal(pred.replicates.shape[1])
    extra = skipped[:, :1] + skipped[:, 1:] * z[None, :]
    note = (pred.note + f"; {int(moving.sum())} candidate(s) stopped below the budget also "
            "carry the change their prediction would still have made on the rungs skipped")
    return replace(pred, replicates=pred.replicates + extra, note=note)
