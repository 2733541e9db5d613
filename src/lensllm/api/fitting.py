""":func:`fit`: a scaling law per model of a table, ``L(D*)`` with an interval, parameters
with standard errors, usability; the library call behind ``lensllm fit``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.api._results import Result
from lensllm.api._tables import as_table
from lensllm.bench import LossTable
from lensllm.exceptions import FitError, InputError
from lensllm.laws import BatchFit, get_law
from lensllm.laws.service import (
    DEFAULT_INTERVAL,
    Prediction,
    check_interval,
    data_needed,
    fit_points,
    parameter_errors,
    predict_at,
)
from lensllm.laws.usability import Usability, assess_fits, interval_note

__all__ = ["FIT_LAWS", "FitResult", "fit"]

#: The laws of :func:`fit` by user-facing name, with the registry name of each.
FIT_LAWS = {"power": "power", "rectified": "rectified", "lensllm": "lens"}


@dataclass(frozen=True, eq=False)
class FitResult(Result):
    """What :func:`fit` found, one record per model.

    Attributes:
        law: ``power``, ``rectified`` or ``lensllm``.
        table: the table fitted (all its columns; the fit used those up to ``max_data``).
        max_data: the largest size used.
        target: ``D*``.
        prediction: ``L(D*)`` per model with the interval (:class:`Prediction`).
        params, stderr: fitted parameters and their bootstrap standard errors, by name,
            each ``(C,)`` (NaN where a model has no more points than parameters).
        usability: whether each fit is usable, with the reasons.
        batch: the fits (:class:`lensllm.laws.BatchFit`).
        records: one JSON-ready record per model, exactly those of ``lensllm fit --json``.
    """

    law: str
    table: LossTable
    max_data: float
    target: float
    prediction: Prediction
    params: dict[str, np.ndarray]
    stderr: dict[str, np.ndarray]
    usability: Usability
    batch: BatchFit = field(repr=False)
    records: list[dict[str, Any]] = field(repr=False)

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON value of ``lensllm fit --json``: a list of records, one per model."""
        return [dict(r) for r in self.records]

    def frame_records(self) -> tuple[list[dict[str, Any]], str | None]:
        """The records with each standard error as a column ``<name>_stderr``."""
        rows = []
        for rec in self.to_dict():
            errors = rec.pop("stderr")
            rows.append({**rec, **{f"{k}_stderr": v for k, v in errors.items()}})
        return rows, "model"

    def fit_report(self) -> str:
        """A text report in the manner of lmfit: per model, every parameter with its
        standard error, the prediction with its interval, the residual and usability."""
        pred = self.prediction
        pct = "" if pred.level is None else f"{100 * pred.level:.0f}% "
        lines = [f"[[Fit]] {self.law} law, {len(self.records)} models, sizes <= "
                 f"{self.max_data:g}, target D* = {self.target:g}",
                 f"    {pred.summary()}"]
        for i, rec in enumerate(self.records):
            lines.append(f"[[{rec['model']}]] {int(self.batch.mask[i].sum())} points, "
                         f"{'usable' if rec['usable'] else 'NOT usable: ' + rec['why']}")
            for name, values in self.params.items():
                err = self.stderr[name][i]
                rel = (f" ({100 * err / abs(values[i]):.2g}%)"
                       if np.isfinite(err) and values[i] != 0 else "")
                shown = f" +/- {err:.4g}{rel}" if np.isfinite(err) else " +/- n/a"
                lines.append(f"    {name:>6} = {values[i]:.6g}{shown}")
            upper = "inf" if rec["upper"] is None else f"{rec['upper']:.4g}"
            band = ("" if rec["lower"] is None else
                    f", {pct}interval [{rec['lower']:.4g}, {upper}]")
            lines.append(f"    L({self.target:g}) = {rec['predicted']:.4g}{band} "
                         f"({self.table.loss_unit})")
            lines.append(f"    log RMSE = {rec['rmse']:.3g}, "
                         f"{'converged' if rec['success'] else 'did not converge'}")
        return "\n".join(lines)


def fit(data: Any, *, law: str = "rectified", max_data: float | None = None,
        target: float | None = None, interval: str = DEFAULT_INTERVAL,
        loss_goal: float | None = None, ntk: Any = None,
        loss_unit: str | None = None) -> FitResult:
    """Fit a fine-tuning scaling law to each model's losses and predict ``L(target)``.

    The same computation as ``lensllm fit`` (which calls this function): the laws defined
    at ``D = 0`` use the zero-shot loss as a point; every number comes from
    :mod:`lensllm.laws.service`.

    Args:
        data: a table name or CSV path, a :class:`~lensllm.bench.LossTable`, a pandas
            ``DataFrame`` in the table format, or ``{model: {size: loss}}`` (size 0: the
            zero-shot loss).
        law: ``"power"``, ``"rectified"`` (default) or ``"lensllm"`` (needs ``ntk``).
        max_data: use the sizes up to this (default: all).
        target: the size to predict at (default: the table's largest size).
        interval: ``"calibrated"`` (default) or ``"bootstrap"``; 90% intervals.
        loss_goal: also give the data each model needs to reach this loss.
        ntk: NTK features for ``law="lensllm"``: a directory of ``lensllm ntk`` files, one
            such file, or a JSON object of model -> spectrum; or one spectrum per model.
        loss_unit: the unit of a data frame's or a mapping's losses.

    Returns:
        A :class:`FitResult`.

    Raises:
        InputError: a bad argument, named; FitError: too few points for the law.

    Example:
        >>> import lensllm
        >>> result = lensllm.fit("gigaword", law="rectified", max_data=25600)
        >>> result.records[0]["model"], result.prediction.interval
        ('MBZUAI/LaMini-GPT-124M', 'calibrated')
    """
    check_interval(interval, allow_none=False)
    _check_positive(max_data=max_data, target=target, loss_goal=loss_goal)
    if law not in FIT_LAWS:
        raise InputError(f"`law` must be one of {', '.join(FIT_LAWS)}, got {law!r}")
    table = as_table(data, loss_unit=loss_unit)
    max_data = float(max_data if max_data is not None else table.sizes[-1])
    target = float(target if target is not None else table.sizes[-1])
    batch = _fit_table(table, law, max_data, ntk)
    pred = predict_at(batch, target, interval=interval)
    result = FitResult(law=law, table=table, max_data=max_data, target=target,
                       prediction=pred, params=batch.params, stderr=parameter_errors(batch),
                       usability=assess_fits(batch), batch=batch, records=[])
    result.records.extend(_records(result))
    if loss_goal is not None:
        for rec, need in zip(result.records, data_needed(batch, loss_goal, pred.calibration)):
            rec.update(need)
    return result


def _check_positive(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not 0 < value < float("inf"):
            raise InputError(f"`{name}` must be a finite number > 0, got {value:g}")


def _fit_table(table: LossTable, law: str, max_data: float, ntk: Any) -> BatchFit:
    """The law fitted to every model's points up to ``max_data``."""
    if (ntk is None) == (law == "lensllm"):
        raise InputError("`law` 'lensllm' needs `ntk` (its F(Theta, t) comes from NTK "
                         "features); `ntk` goes only with `law` 'lensllm'")
    aux = {}
    if law == "lensllm":
        aux["spectra"] = _spectra(ntk, table)
    keep = table.sizes <= max_data
    estimator = get_law(FIT_LAWS[law])
    zero = table.zero_shot if estimator.min_size() == 0 else None
    n_points = int(keep.sum()) + (zero is not None)
    if n_points < estimator.n_params:
        sizes = ([0.0] if zero is not None else []) + table.sizes[keep].tolist()
        raise FitError(f"`max_data` {max_data:g} leaves {n_points} points per model "
                       f"({', '.join(f'{s:g}' for s in sizes)}) but the {law} law has "
                       f"{estimator.n_params} free parameters")
    try:
        return fit_points(estimator, table.sizes[keep], table.losses[:, keep], zero,
                          names=table.models, **aux)
    except FitError as exc:
        raise FitError(f"`max_data` {max_data:g}: {exc}") from None


def _spectra(ntk: Any, table: LossTable) -> list:
    if isinstance(ntk, (str, Path)):
        from lensllm.ntk.files import match_spectra

        return match_spectra(ntk, list(table.models), what="`ntk`")
    spectra = list(ntk)
    if len(spectra) != table.n_models:
        raise InputError(f"`ntk` must give one spectrum per model ({table.n_models}), got "
                         f"{len(spectra)}")
    return spectra


def _records(result: FitResult) -> list[dict[str, Any]]:
    """One JSON-ready record per model: parameters, prediction, interval, usability."""
    batch, pred, table = result.batch, result.prediction, result.table
    notes = interval_note(batch)
    truth = table.column(result.target) if result.target in table.sizes else None
    rmse, success = batch.rmse, batch.success  # computed over every curve: read once
    records = []
    for i, model in enumerate(table.models):
        known = pred.lower is not None and not notes[i]
        records.append({
            "model": model, "law": result.law, "max_data_num": result.max_data,
            "target": result.target, **{k: float(v[i]) for k, v in result.params.items()},
            "stderr": {k: float(v[i]) for k, v in result.stderr.items()},
            "interval": pred.interval,
            "predicted": float(pred.predicted[i]), "predicted_law": float(pred.predicted_law[i]),
            "lower": float(pred.lower[i]) if known else None,
            "upper": float(pred.upper[i]) if known and np.isfinite(pred.upper[i]) else None,
            "interval_note": notes[i] or None,
            "rmse": float(rmse[i]), "success": bool(success[i]),
            "usable": bool(result.usability.usable[i]),
            "why": result.usability.reasons[i] or None,
            "true": None if truth is None else float(truth[i]),
            "loss_unit": table.loss_unit})
    return records
