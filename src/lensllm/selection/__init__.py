"""Selection strategies on loss curves, in a registry the bench harness iterates over.

Imports without torch. ``REGISTRY`` maps names (``zero_shot``, ``model_size``,
``subtuning``, ``vanilla_fit``, ``rectified_fit``, ``ats``, ``lensllm``, ...) to classes.
"""

from __future__ import annotations

from lensllm.selection import (  # noqa: F401 - registration
    adaptive,
    ats,
    baselines,
    fits,
    halving,
    lensllm_fit,
    nlp_metrics,
)
from lensllm.selection._base import (
    REGISTRY,
    BaseSelector,
    NotApplicable,
    Selection,
    SelectionView,
    get_selector,
    register,
)

__all__ = ["REGISTRY", "BaseSelector", "NotApplicable", "Selection", "SelectionView",
           "get_selector", "register"]
