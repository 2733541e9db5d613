"""The budget protocol: what a selection method may see, and what it paid for.

This is the one place where the protocol is enforced. A :class:`BudgetView` is built from a
table and a budget (``max_data_num``): it holds *copies* of the model metadata, the
zero-shot losses (free: no fine-tuning) and the losses of the size columns up to the budget,
and nothing else. The target size ``D*`` is known (a method must predict at it) but its
losses are not. Every fine-tuned loss a method reads goes through :meth:`BudgetView.observe`,
which records the run as paid; the cost of a selection is computed here from those records
(docs/design.md, section 5: a run of model ``m`` on ``D`` examples costs ``n_params[m] * D``), not
reported by the method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lensllm.bench.table import LossTable
from lensllm.exceptions import InputError

__all__ = ["BudgetView"]


class BudgetView:
    """A table as seen by a method with a data budget (a
    :class:`lensllm.selection.SelectionView`).

    Args:
        table: the full table (only the permitted parts are copied).
        max_data_num: the largest subset size the method may fine-tune on.
        target: the size ``D*`` to predict at (must be a column of ``table``).
        ntk: optional NTK spectra, one per model (for the ``lensllm`` method).
    """

    def __init__(self, table: LossTable, max_data_num: float, target: float,
                 ntk: Sequence[object] | None = None) -> None:
        visible = table.sizes <= max_data_num
        if not visible.any():
            raise InputError(f"budget {max_data_num:g} is below the smallest size column "
                             f"({table.sizes[0]:g}) of table {table.name!r}")
        self.dataset = table.name
        self.max_data_num = float(max_data_num)
        self.target = float(target)
        self.models = tuple(table.models)
        self.n_params = table.n_params.copy()
        self.family = tuple(table.family)
        self.zero_shot = None if table.zero_shot is None else table.zero_shot.copy()
        self.sizes = table.sizes[visible].copy()
        self.ntk = None if ntk is None else tuple(ntk)
        self._losses = table.losses[:, visible].copy()
        self._paid = np.zeros(self._losses.shape, bool)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def observe(self, model: int | np.ndarray, size: float | np.ndarray) -> np.ndarray:
        """Pay for (or reuse) the runs ``(model, size)`` and return their test losses.

        Args:
            model: model indices (broadcast against ``size``).
            size: data sizes; each must be a visible column.

        Raises:
            InputError: a size above the budget or not in the table.
        """
        model, size = np.broadcast_arrays(np.asarray(model), np.asarray(size, dtype=float))
        col = np.searchsorted(self.sizes, size)
        bad = (col >= self.sizes.size) | (self.sizes[np.minimum(col, self.sizes.size - 1)]
                                          != size)
        if np.any(bad):
            raise InputError(f"size {size[bad].ravel()[0]:g} is not a visible column (budget "
                             f"{self.max_data_num:g}; visible: "
                             f"{', '.join(f'{s:g}' for s in self.sizes)})")
        self._paid[model, col] = True
        return self._losses[model, col]

    def observe_all(self) -> np.ndarray:
        """Pay for every visible run; losses ``(C, S_visible)``."""
        self._paid[:] = True
        return self._losses.copy()

    @property
    def paid(self) -> np.ndarray:
        """Which runs were paid for ``(C, S_visible)`` (a copy)."""
        return self._paid.copy()

    def cost(self) -> float:
        """Cost of the paid runs, in parameter x example units (``sum n_params * D``)."""
        return float((self._paid * self.n_params[:, None] * self.sizes[None, :]).sum())

    def full_cost(self) -> float:
        """Cost of fine-tuning every candidate on ``D*``: the denominator of cost fractions."""
        return float(self.n_params.sum() * self.target)
