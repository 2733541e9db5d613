"""Which runs a selection paid for, where each candidate stopped, and what stopping saved.

For ``lensllm select``'s report: a selector that prunes (``halving``) says per candidate the
size where it stopped (:attr:`lensllm.selection.Selection.stopped_at`; the budget for a
candidate that went all the way). Had every candidate gone on to the budget, each one
stopped early would also have paid the runs above its stopping size up to the budget.
Those runs were never made, so their cost is the training recipe's price
(:meth:`RunView.estimate_run`); the cost paid is counted. A selector that says nothing of
stopping is drawn with every candidate at the budget and nothing saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lensllm.pipeline.view import RunView

__all__ = ["RunLadder", "run_ladder"]


@dataclass(frozen=True)
class RunLadder:
    """Runs paid and saved, per candidate and affordable size.

    Attributes:
        sizes: the affordable sizes ``(S,)``.
        paid: runs paid for ``(C, S)``.
        stopped_at: size where each candidate stopped ``(C,)`` (the budget when it did not).
        saved: the runs a candidate stopped early did not pay, above its stopping size up to
            the budget ``(C, S)``.
        paid_flops: counted FLOPs of the paid runs (every seed).
        saved_flops: estimated FLOPs of the saved runs (every seed).
    """

    sizes: np.ndarray
    paid: np.ndarray
    stopped_at: np.ndarray
    saved: np.ndarray
    paid_flops: float
    saved_flops: float

    @property
    def pruned(self) -> np.ndarray:
        """Candidates that stopped before the budget ``(C,)``."""
        return self.stopped_at < self.sizes[-1]

    @property
    def saved_fraction(self) -> float:
        """Saved FLOPs as a share of paying every candidate up to the budget."""
        total = self.paid_flops + self.saved_flops
        return self.saved_flops / total if total > 0 else 0.0


def run_ladder(view: RunView, selection) -> RunLadder:
    """The :class:`RunLadder` of a finished selection (reads the store: call before
    :meth:`RunView.freeze` closes it).

    Args:
        view: the selection's view.
        selection: its :class:`~lensllm.selection.Selection`.
    """
    sizes, paid = view.sizes, view.paid
    stopped = (np.full(view.n_models, float(sizes[-1])) if selection.stopped_at is None
               else np.asarray(selection.stopped_at, float))
    saved = (sizes[None, :] > stopped[:, None]) & ~paid
    saved_flops = 0.0
    for m, i in zip(*np.nonzero(saved)):
        est = view.estimate_run(int(m), int(sizes[i]))
        saved_flops += view.n_seeds * (est if est is not None else float("nan"))
    return RunLadder(sizes=sizes.copy(), paid=paid, stopped_at=stopped, saved=saved,
                     paid_flops=view.cost(), saved_flops=float(saved_flops))
