"""The verdict of a ``lensllm select`` outcome: one headline that commits when it should.

- **Truth first.** When the store has runs at ``D*`` for the pick and at least one other
  candidate, and they show another candidate is better, the headline names that one and
  says the selector's pick was beaten.
- **Pick X (P(best) 0.83).** Otherwise the pick is named with its probability of being
  best at ``D*`` (:mod:`lensllm.selection.p_best`, from the calibrated joint distribution of
  :mod:`lensllm.pipeline.predictive`).
- **No clear winner** when that probability is not above
  :data:`lensllm.selection.p_best.CLEAR_WINNER` (0.5: the pick is not more likely best than
  the others together), or when the distribution could not be measured; the headline
  then lists the contenders and names the one run that would decide best per FLOP
  (candidate, size, estimated cost).
"""

from __future__ import annotations

import numpy as np

from lensllm.pipeline.predictive import CLEAR_WINNER
from lensllm.report._plots import short_name as _name

__all__ = ["decisive_record", "headline", "p_best_of"]


def p_best_of(outcome) -> np.ndarray:
    """P(best) per candidate ``(C,)`` (uniform without a predictive distribution)."""
    pred = getattr(outcome, "predictive", None)
    n = outcome.view.n_models
    return np.full(n, 1.0 / n) if pred is None else pred.p_best()


def decisive_record(outcome) -> dict | None:
    """The advised run as JSON: ``model, size, cost_flops, gain`` (None: none advised)."""
    run = getattr(outcome, "decisive", None)
    if run is None:
        return None
    return {"model": outcome.view.models[run.candidate], "size": run.size,
            "cost_flops": run.cost, "expected_p_best_gain": run.gain}


def _truth_beats_pick(outcome) -> str | None:
    """The candidate the store's ``D*`` runs show better than the pick (None: none)."""
    trust, view, sel = outcome.trust, outcome.view, outcome.selection
    check = None if trust is None else trust.at(view.target)
    if check is None or not check.known[sel.selected] or check.known.sum() < 2:
        return None
    best = int(np.nanargmin(check.true_loss))
    return view.models[best] if check.true_loss[best] < check.true_loss[sel.selected] else None


def headline(outcome) -> str:
    """One line: the pick with its P(best), the truth when it overrules, or no winner."""
    view, sel = outcome.view, outcome.selection
    prob = p_best_of(outcome)
    leader = _name(view.models[sel.selected])
    p = float(prob[sel.selected])
    beaten = _truth_beats_pick(outcome)
    if beaten is not None:
        return (f"Pick {_name(beaten)}: the store's runs at D* show it is best "
                f"(the selector predicted {leader}, P(best) {p:.2f})")
    pred = getattr(outcome, "predictive", None)
    if pred is None or not pred.known:
        why = "the method predicts no loss" if pred is None else pred.note
        return f"No clear winner: {leader} ranks first, but the prediction is {why}"
    if p > CLEAR_WINNER:
        return f"Pick {leader} (P(best) {p:.2f})"
    order = [int(i) for i in np.argsort(-prob) if int(i) != sel.selected][:3]
    others = ", ".join(f"{_name(view.models[i])} {prob[i]:.2f}" for i in order)
    text = (f"No clear winner: {leader} ranks first with P(best) {p:.2f} (more than "
            f"{CLEAR_WINNER:g} needed; then {others})")
    rec = decisive_record(outcome)
    if rec is not None:
        text += (f"; the run that would decide it best per FLOP: {_name(rec['model'])} at "
                 f"D={rec['size']:g} (about {rec['cost_flops']:.3g} FLOPs)")
    return text
