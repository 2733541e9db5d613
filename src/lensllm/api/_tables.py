"""Turn what a user holds (a table name or path, a loss table, a data frame, a mapping of
curves) into a :class:`~lensllm.bench.LossTable`, with errors naming the argument."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.bench import LossTable, load_table
from lensllm.bench.table import LOSS_UNITS, parse_table
from lensllm.exceptions import InputError

__all__ = ["as_table"]


def as_table(data: Any, *, loss_unit: str | None = None, what: str = "data") -> LossTable:
    """A :class:`LossTable` from ``data``.

    Args:
        data: a bundled table name (``"flan"``, ``"gigaword"``) or a CSV path; a
            :class:`LossTable`; a pandas ``DataFrame`` in the table format (index: models;
            columns: sizes, optional ``0`` for the zero-shot loss, ``size``, ``family``); or
            a mapping ``{model: {size: loss}}`` with one set of sizes for every model (size
            0 is the zero-shot loss; parameter counts are unknown and set to 1).
        loss_unit: the unit of a data frame's or a mapping's losses (default
            ``nats_per_token``); a file declares its own.
        what: the argument named in messages.

    Raises:
        InputError, TableError: naming the argument, the model and the size at fault.
    """
    if isinstance(data, LossTable):
        return data
    if isinstance(data, (str, Path)):
        return load_table(data)
    unit = loss_unit or LOSS_UNITS[0]
    if unit not in LOSS_UNITS:
        raise InputError(f"`loss_unit` must be one of {', '.join(LOSS_UNITS)}, got {unit!r}")
    if hasattr(data, "to_csv") and hasattr(data, "columns"):
        text = data.to_csv(index=True)
        table = parse_table(text, name="dataframe", source=f"`{what}` (data frame)")
        return _with_unit(table, unit)
    if isinstance(data, Mapping):
        return _from_curves(data, unit, what)
    raise InputError(f"`{what}` must be a table name or path, a LossTable, a data frame or a "
                     f"mapping of model -> {{size: loss}}, got {type(data).__name__}")


def _with_unit(table: LossTable, unit: str) -> LossTable:
    import dataclasses

    return dataclasses.replace(table, loss_unit=unit)


def _from_curves(curves: Mapping, unit: str, what: str) -> LossTable:
    """A table from ``{model: {size: loss}}`` (every model with the same sizes)."""
    if len(curves) < 2:
        raise InputError(f"`{what}`: ranking needs at least 2 models, got {len(curves)}")
    models = [str(m) for m in curves]
    points = {}
    for model, curve in curves.items():
        if not isinstance(curve, Mapping) or not curve:
            raise InputError(f"`{what}`[{model!r}] must be a non-empty mapping of size -> "
                             "loss")
        points[str(model)] = {float(s): float(v) for s, v in curve.items()}
    sizes = sorted(points[models[0]])
    for model in models:
        if sorted(points[model]) != sizes:
            raise InputError(f"`{what}`[{model!r}] has sizes {sorted(points[model])}, but "
                             f"{models[0]!r} has {sizes}: every model needs the same sizes")
    for model in models:
        for size, loss in points[model].items():
            if not (math.isfinite(loss) and loss > 0) or not (math.isfinite(size) and
                                                               size >= 0):
                raise InputError(f"`{what}`[{model!r}]: size {size:g} -> loss {loss!r}; sizes "
                                 "must be >= 0 and losses finite and > 0")
    fine = [s for s in sizes if s > 0]
    if not fine:
        raise InputError(f"`{what}`: no fine-tuned sizes (only size 0)")
    zero = (np.array([points[m][0.0] for m in models]) if 0.0 in points[models[0]] else None)
    return LossTable(name="curves", models=tuple(models), sizes=np.array(fine),
                     losses=np.array([[points[m][s] for s in fine] for m in models]),
                     zero_shot=zero, n_params=np.ones(len(models)),
                     family=("",) * len(models), loss_unit=unit)
