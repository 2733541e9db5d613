"""The ``lensllm`` selector: the LensLLM law fitted with each model's NTK spectrum."""

from __future__ import annotations

from lensllm.laws import LensLaw
from lensllm.laws.service import DEFAULT_INTERVAL, check_interval, fit_points
from lensllm.selection._base import BaseSelector, NotApplicable, register
from lensllm.selection.fits import fit_selection

__all__ = ["LensLLMFit"]


@register
class LensLLMFit(BaseSelector):
    """LensLLM law ``B / (F(Theta, t) + D**beta) + E`` fitted to the zero-shot loss and every
    affordable point, with ``F`` from each model's NTK spectrum and ``t`` fitted.

    Not applicable to plain loss tables: without NTK features there is no ``F`` and the
    method is reported as such, never approximated.

    Args:
        interval: the interval policy of :mod:`lensllm.laws.service` (None: no interval).
        t_bounds: the range of the fitted ``t`` (steps).
    """

    name = "lensllm"
    summary = "LensLLM law with NTK features (needs `lensllm ntk` spectra)"

    report_options = {"interval": DEFAULT_INTERVAL}

    def __init__(self, *, interval: str | None = None,
                 t_bounds: tuple[float, float] = (1.0, 1e6)):
        self.interval = check_interval(interval)
        self.t_bounds = t_bounds

    def select(self, view):
        if view.ntk is None:
            raise NotApplicable("no NTK features for these models (plain loss table)")
        law = LensLaw(fit_t=True, t_bounds=self.t_bounds)
        n_points = view.sizes.size + (view.zero_shot is not None)
        if n_points < law.n_params:
            raise NotApplicable(f"the LensLLM law needs {law.n_params} points, the budget "
                                f"allows {n_points}")
        losses = view.observe_all()
        batch = fit_points(law, view.sizes, losses, view.zero_shot, names=view.models,
                           spectra=list(view.ntk))
        return fit_selection(batch, view.target, interval=self.interval,
                             info={"sizes": batch.d.tolist()})
