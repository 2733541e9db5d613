"""The selector contract and the registry that the bench harness iterates over.

A selector receives a :class:`SelectionView` (the only way to see losses, which also records
what was paid for) and returns a :class:`Selection`. Two views implement the contract: the
loss-table view of ``lensllm bench`` (:class:`lensllm.bench.budget.BudgetView`) and the
run-backed view of ``lensllm select`` (:class:`lensllm.pipeline.view.RunView`). Selectors
hold only their configuration; they never see the target column. New strategies plug in
with :func:`register` and need no change to the harness, the pipeline or the report: what
generic code needs to know about a result (ranking direction, interval) is on the
:class:`Selection`, never read from a selector's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np

from lensllm.exceptions import InputError

__all__ = ["Selection", "SelectionView", "BaseSelector", "NotApplicable", "register",
           "REGISTRY", "get_selector"]


class SelectionView(Protocol):
    """What every selector may use; the table view of ``lensllm bench`` and the run-backed
    view of ``lensllm select`` both provide it.

    Attributes:
        dataset: name of the task.
        max_data_num: the largest subset size a selector may pay for.
        target: ``D*``, the size to predict at.
        models, n_params, family: per-candidate metadata ``(C,)``.
        zero_shot: loss without fine-tuning ``(C,)`` (free), or None.
        sizes: the affordable subset sizes, increasing ``(S,)``.
        ntk: NTK spectra per candidate (objects with ``eigenvalues``, ``proj_sq``, ``eta``),
            or None.
    """

    dataset: str
    max_data_num: float
    target: float
    models: tuple[str, ...]
    n_params: np.ndarray
    family: tuple[str, ...]
    zero_shot: np.ndarray | None
    sizes: np.ndarray
    ntk: tuple[object, ...] | None

    @property
    def n_models(self) -> int: ...

    def observe(self, model: int | np.ndarray, size: float | np.ndarray) -> np.ndarray:
        """Pay for (run, or reuse) ``(model, size)`` and return the test losses."""

    def observe_all(self) -> np.ndarray:
        """Pay for every affordable run; losses ``(C, S)``."""

    def cost(self) -> float:
        """Cost of what was paid for."""

    def full_cost(self) -> float:
        """Cost of fine-tuning every candidate on ``D*`` (the cost-fraction denominator)."""


class NotApplicable(Exception):
    """Raised by a selector that cannot run on the data it was given (with the reason)."""


@dataclass(frozen=True, eq=False)
class Selection:
    """The outcome of a selector.

    Attributes:
        score: per-model score used for PearCorr ``(C,)``; lower is better unless
            ``higher_is_better`` (a method scoring ``log(n_params)`` as the published tables
            do, for example).
        selected: index of the chosen model.
        predicted: predicted ``L(D*)`` per model ``(C,)``, when the method predicts it.
        lower, upper: a prediction interval for ``L(D*)`` ``(C,)`` and its level.
        info: method-specific details for people (fitted parameters, points used...);
            no code reads them: what generic code needs is a typed field below.
        curve: ``curve(d)`` gives each model's fitted loss at sizes ``d`` ``(m,)`` as
            ``(C, m)``, for plots; None for methods without a curve.
        transition: per-model size where the pre-power phase ends ``(C,)``, if detected.
        higher_is_better: the ranking direction of ``score``.
        stopped_at: per-model size where a pruning selector stopped paying for runs
            ``(C,)`` (the budget for a model that went all the way); None: every model went
            to the budget.
        skipped_change: for a pruning selector, per model the mean and standard deviation
            of the change in ``log L(D*)`` its prediction would still have made on the
            rungs it skipped ``(C, 2)`` (zeros for a model that reached the budget), by the
            selector's own model of how predictions move; the calibration adds it.
        rung_field: for a pruning selector, per model the mean and variance of the
            predicted ``log L(D*)`` over every model on the rung where it stopped ``(C, 2)``
            (NaN for a model that reached the budget): the field it was judged against,
            which the calibration shrinks a stopped model's prediction towards (a model
            stopped because its early line looked bad is, on average, less bad than that
            line says).
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
    higher_is_better: bool = False
    stopped_at: np.ndarray | None = None
    skipped_change: np.ndarray | None = None
    rung_field: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not np.all(np.isfinite(self.score)):
            raise ValueError("a Selection's scores must be finite (a selector bug)")

    def ranking(self) -> np.ndarray:
        """Candidate indices, best first (by ``score`` in its direction)."""
        order = np.argsort(self.score)
        return order[::-1] if self.higher_is_better else order


class BaseSelector(ABC):
    """A strategy that turns what it observes within a budget into a ranking."""

    #: Registry name (``lensllm bench --methods``).
    name: ClassVar[str]
    #: One line for ``--help`` and reports.
    summary: ClassVar[str]
    #: Constructor options a report asks for by default (``lensllm select`` merges them
    #: under the config's ``[selection] options``): e.g. ``{"interval": "calibrated"}`` for a
    #: selector whose prediction intervals are off by default on benchmarks.
    report_options: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def select(self, view: SelectionView) -> Selection:
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
