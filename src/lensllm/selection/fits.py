"""Selectors that fit a law to every affordable point and rank by the predicted ``L(D*)``."""

from __future__ import annotations

import numpy as np

from lensllm.laws import PowerLaw, RectifiedLaw
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["VanillaFit", "RectifiedFit", "fit_selection"]

INTERVAL_LEVEL = 0.9


def fit_selection(batch, target: float, *, intervals: bool, info: dict) -> Selection:
    """A :class:`Selection` from a :class:`~lensllm.laws.BatchFit`: rank by ``L(D*)``."""
    predicted = batch.predict([target])[:, 0]
    lower = upper = None
    if intervals:
        lo, hi = batch.interval([target], INTERVAL_LEVEL)
        lower, upper = lo[:, 0], hi[:, 0]
    info = {**info, "params": {k: v.tolist() for k, v in batch.params.items()},
            "rmse": batch.rmse.tolist(), "success": batch.success.tolist()}
    return Selection(score=predicted, selected=int(np.argmin(predicted)), predicted=predicted,
                     lower=lower, upper=upper, level=INTERVAL_LEVEL if intervals else None,
                     info=info, curve=batch.predict, transition=batch.transition)


@register
class VanillaFit(BaseSelector):
    """Power law ``A D**-alpha + E`` fitted to all affordable fine-tuned points."""

    name = "vanilla_fit"
    summary = "power law with a floor fitted to every affordable point"

    report_options = {"intervals": True}

    def __init__(self, *, intervals: bool = False) -> None:
        self.intervals = intervals

    def select(self, view):
        if view.sizes.size < 3:
            raise NotApplicable(f"the power law needs 3 points, the budget allows "
                                f"{view.sizes.size}")
        losses = view.observe_all()
        batch = PowerLaw().fit_many(view.sizes, losses, names=list(view.models))
        return fit_selection(batch, view.target, intervals=self.intervals,
                             info={"sizes": view.sizes.tolist()})


@register
class RectifiedFit(BaseSelector):
    """Rectified law ``B / (D_l + D**beta) + E`` fitted to the zero-shot loss (D = 0) and
    all affordable fine-tuned points (OurFit of Lin et al.)."""

    name = "rectified_fit"
    summary = "rectified law fitted to the zero-shot loss and every affordable point"

    report_options = {"intervals": True}

    def __init__(self, *, intervals: bool = False) -> None:
        self.intervals = intervals

    def select(self, view):
        # Checked before observe_all(): a budget too small must not pay for any run.
        n_points = view.sizes.size + (view.zero_shot is not None)
        if n_points < 4:
            raise NotApplicable(f"the rectified law needs 4 points, the budget allows "
                                f"{n_points}")
        losses = view.observe_all()
        sizes = view.sizes
        if view.zero_shot is not None:
            losses = np.column_stack([view.zero_shot, losses])
            sizes = np.concatenate([[0.0], sizes])
        batch = RectifiedLaw().fit_many(sizes, losses, names=list(view.models))
        return fit_selection(batch, view.target, intervals=self.intervals,
                             info={"sizes": sizes.tolist()})
