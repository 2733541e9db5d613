"""Size-constrained selection: only candidates up to a parameter count may be chosen.

The published protocol (``published_size_constraints.csv`` of Lin et al., ICML 2024): the
candidates above the constraint are removed from the table *first*; every method then runs
on the remaining rows and PearCorr and RelAcc are computed over them (RelAcc's best and worst
are those of the remaining candidates). Removing the rows before the view is built also
means a method never pays for a run of a model it may not choose.
"""

from __future__ import annotations

import dataclasses

from lensllm.bench.table import LossTable
from lensllm.exceptions import InputError

__all__ = ["restrict_table"]


def restrict_table(table: LossTable, max_params: float) -> LossTable:
    """The rows of ``table`` whose parameter count is at most ``max_params``.

    Args:
        table: a loss table.
        max_params: the largest admissible parameter count (``> 0``).

    Returns:
        A new table with the same name, sizes and columns and only the admissible rows.

    Raises:
        InputError: ``max_params`` is not > 0, or fewer than 2 models remain (no ranking).
    """
    if not max_params > 0:
        raise InputError(f"`max_params` must be > 0, got {max_params:g}")
    keep = table.n_params <= max_params
    if keep.sum() < 2:
        raise InputError(
            f"max_params {max_params:g} keeps {int(keep.sum())} model(s) of table "
            f"{table.name!r} (smallest: {table.n_params.min():g} parameters); ranking needs "
            f"at least 2")
    return dataclasses.replace(
        table,
        models=tuple(m for m, k in zip(table.models, keep) if k),
        losses=table.losses[keep],
        zero_shot=None if table.zero_shot is None else table.zero_shot[keep],
        n_params=table.n_params[keep],
        family=tuple(f for f, k in zip(table.family, keep) if k),
    )
