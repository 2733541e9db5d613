"""``halving``: successive halving over subset sizes, with AtS's line as the yardstick.

Every affordable size from the ``(k + 1)``-th up is a rung. On each rung below the budget,
every candidate still in the race predicts ``L(D*)`` with AtS's first line: least squares in
``(log D, log L)`` through the rung's ``k`` largest sizes (the subsets are nested, so a rung
adds one run per candidate: its new largest size). On the last rung the finalists get AtS
itself (:func:`~lensllm.selection.ats.ats_curve`), so they are ranked as AtS ranks them.
Between rungs only the promising go on (design note and measurements: ``docs/halving.md``):

1. **How far can a prediction still move?** Each candidate's prediction changes from one
   rung to the next. Centred by the median change of the rung (a shift shared by every
   candidate does not change the ranking), the changes of all candidates on all rungs so
   far give one scale ``sigma`` per rung. The change left until the last rung, ``R`` rungs
   away, is taken as a random walk: ``sigma * R ** growth`` (``growth = 0.5``).
2. **Chance of finishing among the leaders.** With ``L_keep`` the ``keep``-th best
   prediction on the rung, a candidate's chance of ending ahead of it is
   ``Phi((L_keep - L_m) / (sqrt(2) * sigma * R ** growth))`` (both predictions still move).
3. **Promotion.** The ``keep`` leaders always go on: by default the best tenth of the field,
   ``ceil(C / 10)`` of ``C`` candidates (3 of the tables' 30, 1 of up to 10 candidates, so a
   small real ``select`` can prune; a fixed 3 protected 3 of 5). Any other candidate goes on
   when its chance is at least ``min_chance * c_m ** cost_power``, where ``c_m`` is its parameter
   count over the median candidate's (a run of model ``m`` on ``D`` examples costs
   ``n_params[m] * D``, so ``c_m`` is what its next runs cost relative to a typical
   candidate's). The shipped ``cost_power = 0`` does not weigh cost: measured, weighing it
   (0.5) stops Gigaword's switch-base-32 at 1/32, AtS's pick, for a cost saving that the
   targets did not need (``docs/halving.md``).
4. **Rank** the finalists (those that reached the budget) by AtS's prediction at the budget,
   then the candidates stopped on the last rung but one by their prediction there, and so
   on: the ranking of the finalists is what the method stands behind.

The first rung is only paid for when a pruning rung follows it; otherwise (two rungs in
all) the method is AtS, unless ``early_first_rung`` (``lensllm select``) moves the first
rung of a 5-size grid to the 3rd size. No constant is tied to a table: ``sigma`` is
measured on the table at hand; ``min_chance = 0.3``, ``cost_power = 0`` and ``growth =
0.5`` were chosen once, by leave-one-table-out on the two bundled tables, and the leaders'
tenth on those tables and their size-constrained subsets (15-30 candidates;
``docs/halving.md``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from lensllm.exceptions import InputError
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register
from lensllm.selection.ats import ats_curve

__all__ = ["Halving", "LEADER_SHARE", "leaders", "promote", "rank_by_rung", "rung_scale"]

#: Share of the field protected as leaders on every rung (at least one candidate).
LEADER_SHARE = 0.1


def leaders(n_models: int) -> int:
    """How many leaders always go on among ``n_models`` candidates: ``ceil(C / 10)``.

    One rule for every table: the tables' 30 candidates keep 3 (the top 3 the method stands
    behind), a field of up to 10 keeps its single leader, so a few candidates can be pruned.
    """
    return max(1, math.ceil(LEADER_SHARE * n_models - 1e-9))


def promote(pred: np.ndarray, active: np.ndarray, spread: float, rel_cost: np.ndarray, *,
            keep: int, min_chance: float, cost_power: float) -> np.ndarray:
    """Which candidates go on to the next rung.

    Args:
        pred: this rung's predicted ``log L(D*)`` ``(C,)`` (NaN for stopped candidates).
        active: candidates on this rung ``(C,)``.
        spread: standard deviation of the change a prediction may still undergo (log L).
        rel_cost: each candidate's run cost over the median candidate's ``(C,)``.
        keep: the leaders that always go on.
        min_chance: chance of ending ahead of the ``keep``-th leader that a candidate of
            median cost needs.
        cost_power: how strongly that bar rises with cost.

    Returns:
        The candidates promoted ``(C,)`` (a subset of ``active``).
    """
    on = pred[active]
    bar = np.sort(on)[min(keep, on.size) - 1]
    gap = bar - np.where(active, pred, np.inf)
    if spread > 0:
        chance = ndtr(gap / (np.sqrt(2.0) * spread))
    else:  # predictions that do not move: only the leaders can finish ahead
        chance = (gap >= 0).astype(float)
    return active & ((gap >= 0) | (chance >= min_chance * rel_cost ** cost_power))


def rung_scale(pred: np.ndarray, first: int, last: int) -> float:
    """RMS change of predictions between consecutive rungs, centred per rung.

    Args:
        pred: predicted ``log L(D*)`` per candidate and rung ``(C, S)``; NaN where absent.
        first, last: the rung indices seen so far (inclusive).

    Returns:
        ``sigma`` (log L per rung), or NaN when no candidate has two rungs yet.
    """
    inc = pred[:, first + 1:last + 1] - pred[:, first:last]
    if not np.isfinite(inc).any():
        return float("nan")
    inc = inc - np.nanmedian(inc, axis=0, keepdims=True)
    return float(np.sqrt(np.nanmean(inc ** 2)))


def rank_by_rung(last_pred: np.ndarray, stopped: np.ndarray) -> np.ndarray:
    """Scores that put candidates stopped on a later rung ahead of those stopped earlier.

    Within a rung the order (and spacing) of ``last_pred`` is kept; each earlier rung's group
    is lifted just above the group after it, so ``argsort(score)`` lists the finalists first.
    """
    score = last_pred.copy()
    floor = -np.inf
    for rung in np.unique(stopped)[::-1]:
        grp = stopped == rung
        score[grp] += max(0.0, floor - score[grp].min() + 1e-9)
        floor = score[grp].max()
    return score


def _line_curve(lines: np.ndarray):
    """``d -> L(d)`` ``(C, m)``: each candidate's line in log-log from the rung where its
    prediction was made (for plots and the data plan; ``L(D*)`` is the prediction)."""
    slope, icpt = lines[:, 0:1].copy(), lines[:, 1:2].copy()

    def curve(d: np.ndarray) -> np.ndarray:
        return np.exp(slope * np.log(np.asarray(d, float))[None, :] + icpt)

    return curve


@register
class Halving(BaseSelector):
    """Successive halving over subset sizes, AtS predictions on every rung.

    Args:
        k, delta: AtS's settings on every rung (points in the line, rejection threshold).
        keep: leaders that always go on to the next rung; None (default): the best tenth
            of the candidates, :func:`leaders`.
        min_chance: chance of finishing ahead of the ``keep``-th leader that a candidate of
            median cost needs to go on.
        cost_power: the bar scales with (relative cost) ** ``cost_power``.
        growth: the spread of the remaining change grows as (rungs left) ** ``growth``.
        early_first_rung: with exactly ``k + 2`` sizes within the budget (too few for a first
            rung at the ``(k + 1)``-th size and a pruning rung after it), put the first rung
            at the ``k``-th size, so that the next one can prune; otherwise the method is AtS.
            Off by default (the published-table scorecard, where at 1/512 it keeps RelAcc at
            0.6x the cost); on in ``lensllm select`` (:attr:`report_options`), where real
            grids are short and a run's cost is mostly its last rung (docs/halving.md).
    """

    name = "halving"
    summary = ("successive halving: 3-point lines on each rung, AtS on the last; only "
               "candidates that can still finish among the leaders go on")
    report_options = {"early_first_rung": True}

    def __init__(self, *, k: int = 3, delta: float = 5.0, keep: int | None = None,
                 min_chance: float = 0.3, cost_power: float = 0.0,
                 growth: float = 0.5, early_first_rung: bool = False) -> None:
        if k < 2:
            raise InputError(f"`k` must be >= 2, got {k}")
        if not delta > 0:
            raise InputError(f"`delta` must be > 0, got {delta}")
        if keep is not None and keep < 1:
            raise InputError(f"`keep` must be >= 1, got {keep}")
        if not 0 <= min_chance <= 1:
            raise InputError(f"`min_chance` must be in [0, 1], got {min_chance}")
        if not cost_power >= 0:
            raise InputError(f"`cost_power` must be >= 0, got {cost_power}")
        if not growth > 0:
            raise InputError(f"`growth` must be > 0, got {growth}")
        if not isinstance(early_first_rung, bool):
            raise InputError(f"`early_first_rung` must be true or false, got {early_first_rung!r}")
        self.k, self.delta, self.keep = k, delta, keep
        self.min_chance, self.cost_power, self.growth = min_chance, cost_power, growth
        self.early_first_rung = early_first_rung

    def first_rung(self, n: int) -> int:
        """Index of the first rung among ``n`` sizes within the budget (``n - 1``: AtS).

        A first rung is only paid for when a pruning rung follows it (the spread of the
        changes needs two rungs): at the ``(k + 1)``-th size when ``n >= k + 3``; with
        ``early_first_rung`` at the ``k``-th size when ``n == k + 2``.
        """
        if n - 2 >= self.k + 1:
            return self.k
        if self.early_first_rung and n - 2 >= self.k:
            return self.k - 1
        return n - 1

    def _predict(self, view, models: np.ndarray, top: int, paid: np.ndarray,
                 lines: np.ndarray) -> np.ndarray:
        """Predicted ``log L(D*)`` of ``models`` from their runs up to ``sizes[top]``; their
        lines ``(slope, intercept)`` in log-log go to ``lines[models]`` ``(C, 2)``.

        Below the budget: the least-squares line in log-log through the ``k`` largest sizes of
        the rung (AtS's first line), read in one batch (real runs go in parallel). On the
        last rung: AtS itself, so the finalists are ranked exactly as AtS ranks them. Marks
        the runs read in ``paid`` ``(C, S)``.
        """
        sizes = view.sizes[:top + 1]
        if top < view.sizes.size - 1:
            cols = np.arange(top - self.k + 1, top + 1)
            y = np.log(view.observe(models[:, None], sizes[None, cols]))
            paid[np.ix_(models, cols)] = True
            slope, icpt = np.polyfit(np.log(sizes[cols]), y.T, 1)
            lines[models] = np.column_stack([slope, icpt])
            return slope * np.log(view.target) + icpt
        out = np.empty(models.size)

        def fetch(m: int, i: int) -> float:
            paid[m, i] = True
            return float(view.observe(m, sizes[i]))

        for j, m in enumerate(models):
            _, slope, icpt = ats_curve(sizes, lambda i, m=m: fetch(m, i),
                                       k=self.k, delta=self.delta)
            lines[m] = slope, icpt
            out[j] = slope * np.log(view.target) + icpt
        return out

    def _skipped_change(self, stopped: np.ndarray, n: int, sigmas: list[float]) -> np.ndarray:
        """Per candidate ``(mean, sd)`` of the change its prediction would still have made
        from the rung where it stopped to the last ``(C, 2)``: no shift, and the spread
        promotion assumed, ``sigma * R ** growth`` for ``R`` rungs skipped. (The shared drift
        of the candidates that went on is not added: they went on because their early lines
        erred least, so their drift misstates the others'; docs/select.md.)"""
        sigma = sigmas[-1] if sigmas else 0.0
        out = np.zeros((stopped.size, 2))
        out[:, 1] = sigma * np.maximum(n - 1 - stopped, 0) ** self.growth
        return out

    @staticmethod
    def _rung_field(pred: np.ndarray, stopped: np.ndarray, n: int) -> np.ndarray:
        """Per candidate stopped below the budget, the mean and variance of the predictions
        of every candidate on its last rung ``(C, 2)``; NaN for the finalists."""
        out = np.full((stopped.size, 2), np.nan)
        for rung in np.unique(stopped[stopped < n - 1]):
            field = pred[np.isfinite(pred[:, rung]), rung]
            if field.size >= 2:
                out[stopped == rung] = field.mean(), field.var(ddof=1)
        return out

    def select(self, view):
        n, n_models, k = view.sizes.size, view.n_models, self.k
        if n < k:  # with no pruning rung (n < k + 3) halving is AtS, which needs k sizes
            raise NotApplicable(f"needs {k} sizes within the budget, got {n}")
        pred = np.full((n_models, n), np.nan)
        active = np.ones(n_models, bool)
        stopped = np.full(n_models, n - 1)
        rel_cost = view.n_params / np.median(view.n_params)
        keep = self.keep if self.keep is not None else leaders(n_models)
        first = self.first_rung(n)
        sigmas = []
        paid = np.zeros((n_models, n), bool)
        lines = np.full((n_models, 2), np.nan)
        for i in range(first, n):
            pred[active, i] = self._predict(view, np.flatnonzero(active), i, paid, lines)
            sigma = rung_scale(pred, first, i)
            if i == n - 1 or not np.isfinite(sigma):
                continue
            sigmas.append(sigma)
            nxt = promote(pred[:, i], active, sigma * (n - 1 - i) ** self.growth, rel_cost,
                          keep=keep, min_chance=self.min_chance,
                          cost_power=self.cost_power)
            stopped[active & ~nxt] = i
            active = nxt
        last = pred[np.arange(n_models), stopped]
        score = np.exp(rank_by_rung(last, stopped))
        skipped = self._skipped_change(stopped, n, sigmas)
        return Selection(
            score=score, selected=int(np.argmin(score)), predicted=np.exp(last),
            stopped_at=view.sizes[stopped].astype(float), curve=_line_curve(lines),
            skipped_change=skipped, rung_field=self._rung_field(pred, stopped, n),
            info={"runs_paid": paid.sum(1).tolist(),
                  "finalists": np.flatnonzero(stopped == n - 1).tolist(),
                  "sigma_per_rung": sigmas, "leaders": keep,
                  "note": "the ranking of the finalists is what halving stands behind; "
                          "candidates stopped earlier are ranked after them, by rung"})
