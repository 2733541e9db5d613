"""Selectors that read losses directly: zero-shot, model size, sub-tuning."""

from __future__ import annotations

import numpy as np

from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["ZeroShot", "ModelSize", "SubTuning"]


@register
class ZeroShot(BaseSelector):
    """Rank by the loss before fine-tuning (free: no run is paid for)."""

    name = "zero_shot"
    summary = "loss without fine-tuning (column 0); costs nothing"

    def select(self, view):
        if view.zero_shot is None:
            raise NotApplicable("the table has no zero-shot column '0'")
        score = view.zero_shot.copy()
        return Selection(score=score, selected=int(np.argmin(score)))


@register
class ModelSize(BaseSelector):
    """Pick the largest model; its score is ``log(n_params)`` (as in the published tables)."""

    name = "model_size"
    summary = "largest model wins; score log(parameters); costs nothing"

    def select(self, view):
        score = np.log(view.n_params)
        return Selection(score=score, selected=int(np.argmax(view.n_params)),
                         higher_is_better=True)


@register
class SubTuning(BaseSelector):
    """Rank by the loss after fine-tuning on the budget's largest subset."""

    name = "subtuning"
    summary = "loss after fine-tuning on the largest affordable subset"

    def select(self, view):
        size = view.sizes[-1]
        score = view.observe(np.arange(view.n_models), size)
        # The loss at the budget is a score, not a prediction of L(D*): no `predicted`.
        return Selection(score=score.copy(), selected=int(np.argmin(score)),
                         info={"size": float(size)})
