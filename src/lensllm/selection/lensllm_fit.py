"""The ``lensllm`` selector: the LensLLM law fitted with each model's NTK spectrum."""

from __future__ import annotations

import numpy as np

from lensllm.laws import LensLaw
from lensllm.selection._base import BaseSelector, NotApplicable, register
from lensllm.selection.fits import fit_selection

__all__ = ["LensLLMFit"]


@register
class LensLLMFit(BaseSelector):
    """LensLLM law ``B / (F(Theta, t) + D**beta) + E`` fitted to the zero-shot loss and every
    affordable point, with ``F`` from each model's NTK spectrum and ``t`` fitted.

    Not applicable to plain loss tables: without NTK features there is no ``F`` and the
    method is reported as such, never approximated.
    """

    name = "lensllm"
    summary = "LensLLM law with NTK features (needs `lensllm ntk` spectra)"

    report_options = {"intervals": True}

    def __init__(self, *, intervals: bool = False, t_bounds: tuple[float, float] = (1.0, 1e6)):
        self.intervals = intervals
        self.t_bounds = t_bounds

    def select(self, view):
        if view.ntk is None:
            raise NotApplicable("no NTK features for these models (plain loss table)")
        losses = view.observe_all()
        sizes = view.sizes
        if view.zero_shot is not None:
            losses = np.column_stack([view.zero_shot, losses])
            sizes = np.concatenate([[0.0], sizes])
        law = LensLaw(fit_t=True, t_bounds=self.t_bounds)
        if sizes.size < law.n_params:
            raise NotApplicable(f"the LensLLM law needs {law.n_params} points, the budget "
                                f"allows {sizes.size}")
        batch = law.fit_many(sizes, losses, names=list(view.models), spectra=list(view.ntk))
        return fit_selection(batch, view.target, intervals=self.intervals,
                             info={"sizes": sizes.tolist()})
