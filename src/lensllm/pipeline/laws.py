"""Stage 5 of ``lensllm select``: the laws fitted to each candidate's observed points, for
the report (power, rectified, LensLLM with ``t`` fitted and with ``t`` fixed).

The laws come from :mod:`lensllm.laws` by name (:data:`LAWS`) and are fitted by the one
laws service (:mod:`lensllm.laws.service`), as ``lensllm fit`` fits them; what the report
draws (the phase transition) is asked of the fit
(:attr:`lensllm.laws.BatchFit.transition`), never read from a parameter's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LAW_LABELS", "LAWS", "LawCurves", "fit_laws"]

#: Laws fitted for the report and their labels.
LAW_LABELS = {"power": "power law", "rectified": "rectified law",
              "lens_fit_t": "LensLLM law (t fitted)", "lens_fixed_t": "LensLLM law (t = steps)"}


#: Per report law: the registry name in :data:`lensllm.laws.LAWS`, its settings and the
#: per-candidate inputs it needs besides the points (``spectra``: NTK features; ``t``: the
#: early-stopping step of the largest observed run).
LAWS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "power": ("power", {}, ()),
    "rectified": ("rectified", {}, ()),
    "lens_fit_t": ("lens", {"fit_t": True}, ("spectra",)),
    "lens_fixed_t": ("lens", {"fit_t": False}, ("spectra", "t")),
}


@dataclass
class LawCurves:
    """One law fitted to each candidate's observed points (None where it could not be).

    Attributes:
        name: key of :data:`LAW_LABELS`.
        predicted: ``L(D*)`` per candidate ``(C,)`` (NaN where not fitted).
        curves: per candidate, ``curve(d) -> L(d)`` or None.
        transition: per candidate, the end of the pre-power phase (NaN if none).
        notes: per candidate, why it was not fitted ("" when fitted).
    """

    name: str
    predicted: np.ndarray
    curves: list[Callable[[np.ndarray], np.ndarray] | None]
    transition: np.ndarray
    notes: list[str]


def _curve_of(batch) -> Callable[[np.ndarray], np.ndarray]:
    """``d -> L(d)`` of a one-curve fit."""
    return lambda d: batch.predict(np.asarray(d, float))[0]


def fit_laws(view: Any, observed: list[tuple[np.ndarray, np.ndarray]], *,
             t_fixed: np.ndarray | None = None,
             names: Sequence[str] = tuple(LAW_LABELS)) -> dict[str, LawCurves]:
    """Fit each law to each candidate's observed points (with the zero-shot point at D = 0
    for the laws defined there) and predict ``L(D*)``.

    ``t`` of the fixed-``t`` LensLLM law is, per candidate, the early-stopping step of its
    largest observed run (the step whose weights were kept), unless ``t_fixed`` is given.

    Args:
        view: a view (``n_models``, ``models``, ``zero_shot``, ``ntk``, ``target``, and
            ``steps`` unless ``t_fixed`` is given).
        observed: per candidate, ``(sizes, losses)`` of its observed runs.
        t_fixed: per candidate ``t`` for the fixed-``t`` LensLLM law.
        names: which laws (keys of :data:`LAW_LABELS`).

    Returns:
        ``{law name: LawCurves}``; a law that cannot be fitted to a candidate (too few
        points, no NTK features) has NaN there and the reason in ``notes``.
    """
    n = view.n_models
    out = {}
    for name in names:
        curves = LawCurves(name, np.full(n, np.nan), [None] * n, np.full(n, np.nan), [""] * n)
        for i in range(n):
            _fit_one(curves, i, view, observed[i], t_fixed)
        out[name] = curves
    return out


def _inputs(needs: tuple[str, ...], view: Any, i: int, sizes: np.ndarray,
            t_fixed: np.ndarray | None) -> dict[str, Any] | str:
    """The extra inputs of candidate ``i`` for a law, or the reason they are missing."""
    kwargs: dict[str, Any] = {}
    if "spectra" in needs:
        if view.ntk is None:
            return "no NTK features"
        kwargs["spectra"] = [view.ntk[i]]
    if "t" in needs:
        if t_fixed is not None:
            t = float(t_fixed[i])
        elif len(sizes):
            t = view.steps(i, int(sizes[-1]), "early_stop_step")
        else:
            t = float("nan")
        kwargs["t"] = [t]
    return kwargs


def _fit_one(curves: LawCurves, i: int, view: Any, points: tuple[np.ndarray, np.ndarray],
             t_fixed: np.ndarray | None) -> None:
    """Fit law ``curves.name`` to candidate ``i`` (the laws service,
    :func:`lensllm.laws.service.fit_candidate`); fill its slot (or its note)."""
    from lensllm.laws import get_law
    from lensllm.laws.service import fit_candidate

    registry_name, settings, needs = LAWS[curves.name]
    law = get_law(registry_name, **settings)
    sizes, losses = points
    kwargs = _inputs(needs, view, i, sizes, t_fixed)
    if isinstance(kwargs, str):
        curves.notes[i] = kwargs
        return
    zero = None if view.zero_shot is None else float(view.zero_shot[i])
    batch, why = fit_candidate(law, sizes, losses, zero, name=view.models[i], **kwargs)
    if batch is None:
        curves.notes[i] = why
        return
    curves.predicted[i] = float(batch.predict([view.target])[0, 0])
    curves.curves[i] = _curve_of(batch)
    if batch.transition is not None:
        curves.transition[i] = float(batch.transition[0])
