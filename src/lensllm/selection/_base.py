"""The selector contract and the registry that the bench harness iterates over.

A selector receives a :class:`~lensllm.bench.budget.BudgetView` (the only way to see losses,
which also records what was paid for) and returns a :class:`Selection`. Selectors hold only
their configuration; they never see the target column. New strategies plug in with
:func:`register` and need no change to the harness.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lensllm.exceptions import InputError

if TYPE_CHECKING:
    from lensllm.bench.budget import BudgetView

__all__ = ["Selection", "BaseSelector", "NotApplicable", "register", "REGISTRY",
           "get_selector"]


class NotApplicable(Exception):
    """Raised by a selector that cannot run on the data it was given (with the reason)."""


@dataclass(frozen=True, eq=False)
class Selection:
    """The outcome of a selector.

    Attributes:
        score: per-model score used for PearCorr ``(C,)``. For every method except
            ``model_size`` lower is better; ``model_size`` scores ``log(n_params)`` as the
            published tables do.
        selected: index of the chosen model.
        predicted: predicted ``L(D*)`` per model ``(C,)``, when the method predicts it.
        lower, upper: a prediction interval for ``L(D*)`` ``(C,)`` and its level.
        info: method-specific details (fitted parameters, points used...).
        curve: ``curve(d)`` gives each model's fitted loss at sizes ``d`` ``(m,)`` as
            ``(C, m)``, for plots; None for methods without a curve.
        transition: per-model size where the pre-power phase ends ``(C,)``, if detected.
    """

    score: np.ndarray
    selected: int
    predicted: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    level: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    curve: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    transition: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not np.all(np.isfinite(self.score)):
            raise ValueError("a Selection's scores must be finite (a selector bug)")


class BaseSelector(ABC):
    """A strategy that turns what it observes within a budget into a ranking."""

    #: Registry name (``lensllm bench --methods``).
    name: ClassVar[str]
    #: One line for ``--help`` and reports.
    summary: ClassVar[str]

    @abstractmethod
    def select(self, view: BudgetView) -> Selection:
        """Rank the models of ``view``; raise :class:`NotApplicable` if it cannot."""


REGISTRY: dict[str, type[BaseSelector]] = {}


def register(cls: type[BaseSelector]) -> type[BaseSelector]:
    """Class decorator adding a selector to :data:`REGISTRY` under ``cls.name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"selector {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get_selector(name: str, **kwargs: Any) -> BaseSelector:
    """A registered selector by name."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)}") from None
    return cls(**kwargs)
