"""Selectors that fit a law to every affordable point and rank by the predicted ``L(D*)``.

The fit, the prediction and the interval come from the one laws service
(:mod:`lensllm.laws.service`), so a selector's numbers are those of ``lensllm fit`` on the
same points. ``interval`` is the service's policy: None (the constructors' default, what
``lensllm bench`` measures: the law's own ``L(D*)``, no interval) or ``"calibrated"`` /
``"bootstrap"`` (``lensllm select`` asks for :data:`~lensllm.laws.service.DEFAULT_INTERVAL`
through ``report_options``). The ranking is by the policy's point estimate.
"""

from __future__ import annotations

import numpy as np

from lensllm.laws import PowerLaw, RectifiedLaw
from lensllm.laws.service import DEFAULT_INTERVAL, check_interval, fit_points, predict_at
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["VanillaFit", "RectifiedFit", "fit_selection"]


def fit_selection(batch, target: float, *, interval: str | None, info: dict) -> Selection:
    """A :class:`Selection` from a :class:`~lensllm.laws.BatchFit`: rank by ``L(D*)`` as
    the service predicts it under the ``interval`` policy."""
    pred = predict_at(batch, target, interval=interval)
    info = {**info, "params": {k: v.tolist() for k, v in batch.params.items()},
            "rmse": batch.rmse.tolist(), "success": batch.success.tolist(),
            "interval": pred.interval}
    return Selection(score=pred.predicted, selected=int(np.argmin(pred.predicted)),
                     predicted=pred.predicted, lower=pred.lower, upper=pred.upper,
                     level=pred.level, info=info, curve=batch.predict,
                     transition=batch.transition)


class _LawFitSelector(BaseSelector):
    """Shared constructor of the law-fit selectors (the interval policy)."""

    report_options = {"interval": DEFAULT_INTERVAL}

    def __init__(self, *, interval: str | None = None) -> None:
        self.interval = check_interval(interval)


@register
class VanillaFit(_LawFitSelector):
    """Power law ``A D**-alpha + E`` fitted to all affordable fine-tuned points.

    Args:
        interval: the interval policy of :mod:`lensllm.laws.service` (None: no interval).
    """

    name = "vanilla_fit"
    summary = "power law with a floor fitted to every affordable point"

    def select(self, view):
        if view.sizes.size < 3:
            raise NotApplicable(f"the power law needs 3 points, the budget allows "
                                f"{view.sizes.size}")
        losses = view.observe_all()
        batch = fit_points(PowerLaw(), view.sizes, losses, names=view.models)
        return fit_selection(batch, view.target, interval=self.interval,
                             info={"sizes": view.sizes.tolist()})


@register
class RectifiedFit(_LawFitSelector):
    """Rectified law ``B / (D_l + D**beta) + E`` fitted to the zero-shot loss (D = 0) and
    all affordable fine-tuned points (OurFit of Lin et al.).

    Args:
        interval: the interval policy of :mod:`lensllm.laws.service` (None: no interval).
    """

    name = "rectified_fit"
    summary = "rectified law fitted to the zero-shot loss and every affordable point"

    def select(self, view):
        # Checked before observe_all(): a budget too small must not pay for any run.
        n_points = view.sizes.size + (view.zero_shot is not None)
        if n_points < 4:
            raise NotApplicable(f"the rectified law needs 4 points, the budget allows "
                                f"{n_points}")
        losses = view.observe_all()
        batch = fit_points(RectifiedLaw(), view.sizes, losses, view.zero_shot,
                           names=view.models)
        return fit_selection(batch, view.target, interval=self.interval,
                             info={"sizes": batch.d.tolist()})
