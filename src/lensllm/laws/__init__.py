"""Fine-tuning scaling laws: formulas, vectorised log-space fits, prediction intervals.

Imports without torch. See :mod:`lensllm.laws._engine` for the fitting algorithm.

Example:
    >>> import numpy as np
    >>> from lensllm.laws import RectifiedLaw, rectified_loss
    >>> d = np.array([0, 200, 400, 800, 1600, 3200, 6400.])
    >>> loss = rectified_loss(d, b=40.0, d_l=10.0, beta=0.5, e=1.0)
    >>> law = RectifiedLaw().fit(d, loss)
    >>> round(law.fit_.params["beta"], 3)
    0.5
"""

from __future__ import annotations

from lensllm.laws._base import LOSS_RANGE, BaseLaw, BatchFit, LawFit, Param
from lensllm.laws._formulas import lens_loss, power_loss, rectified_loss, transition_size
from lensllm.laws.lens import LensLaw
from lensllm.laws.power import PowerLaw
from lensllm.laws.rectified import RectifiedLaw

__all__ = [
    "LOSS_RANGE",
    "BaseLaw", "BatchFit", "LawFit", "Param",
    "PowerLaw", "RectifiedLaw", "LensLaw",
    "power_loss", "rectified_loss", "lens_loss", "transition_size",
    "LAWS", "get_law",
]

LAWS = {"power": PowerLaw, "rectified": RectifiedLaw, "lens": LensLaw}


def get_law(name: str, **kwargs) -> BaseLaw:
    """A law by name (``power``, ``rectified``, ``lens``)."""
    from lensllm.exceptions import InputError

    try:
        return LAWS[name](**kwargs)
    except KeyError:
        raise InputError(f"unknown law {name!r}; choose one of {', '.join(LAWS)}") from None
