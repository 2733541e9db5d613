"""Accept-then-stop (AtS), the selector of Lin et al. (ICML 2024), as published.

For the size columns ``s_1 < ... < s_n`` up to the budget and ``p = k, ..., n - 1``: fit a
least-squares line to ``(log s, log L)`` over the ``p`` largest sizes, take the population
standard deviation ``sigma`` of its residuals, and stop if the next smaller point
``s_(n-p)`` lies more than ``delta * sigma`` off the line (in log L). The line through the
final ``p`` largest points predicts ``L(D*)``. If no point is rejected, ``p`` ends at
``n - 1``: the smallest size is tested but never used (a quirk of the original code that the
published numbers depend on). With exactly ``n = k`` sizes there is nothing to test: the line
goes through all ``k`` points (what the original code does; the published ablation at budget
ratio 512 with ``k = 5`` depends on it). Fine-tuning goes from the largest size down, so the
runs paid for are the ``p + 1`` largest sizes (the rejected or last tested one included), or
all ``n`` when ``n = k``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lensllm.exceptions import InputError
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["AcceptThenStop", "ats_curve"]


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def ats_curve(sizes: np.ndarray, fetch: Callable[[int], float], *, k: int = 3,
              delta: float = 5.0) -> tuple[int, float, float]:
    """Run AtS on one curve, fetching losses lazily from the largest size down.

    Args:
        sizes: the affordable sizes, increasing ``(n,)`` with ``n >= k``.
        fetch: ``fetch(i)`` returns the loss at ``sizes[i]`` (and pays for the run).

    Returns:
        ``(p, slope, intercept)``: points in the final line and the line in log-log. The runs
        fetched are the ``p + 1`` largest sizes (all ``n`` when ``n = k``, then ``p = n``).
    """
    n = sizes.size
    x = np.log(sizes)
    y = np.full(n, np.nan)
    for i in range(n - k, n):
        y[i] = np.log(fetch(i))
    p = k
    while True:
        slope, intercept = _line(x[n - p:], y[n - p:])
        if p == n:  # n == k: no smaller point to test
            return p, slope, intercept
        sigma = float(np.std(y[n - p:] - (slope * x[n - p:] + intercept)))
        nxt = n - p - 1
        y[nxt] = np.log(fetch(nxt))
        if abs(y[nxt] - (slope * x[nxt] + intercept)) > delta * sigma or p == n - 1:
            return p, slope, intercept
        p += 1


@register
class AcceptThenStop(BaseSelector):
    """AtS with ``k`` initial points and rejection threshold ``delta`` (defaults 3 and 5)."""

    name = "ats"
    summary = "accept-then-stop: line in log-log over the largest sizes, stop at an outlier"

    def __init__(self, *, k: int = 3, delta: float = 5.0) -> None:
        if k < 2:
            raise InputError(f"`k` must be >= 2, got {k}")
        if not delta > 0:
            raise InputError(f"`delta` must be > 0, got {delta}")
        self.k, self.delta = k, delta

    def select(self, view):
        n = view.sizes.size
        if n < self.k:
            raise NotApplicable(f"AtS needs {self.k} sizes within the budget, got {n}")
        predicted = np.empty(view.n_models)
        lines = np.empty((view.n_models, 2))
        used = []
        for m in range(view.n_models):
            p, slope, intercept = ats_curve(
                view.sizes, lambda i, m=m: float(view.observe(m, view.sizes[i])),
                k=self.k, delta=self.delta)
            predicted[m] = np.exp(slope * np.log(view.target) + intercept)
            lines[m] = slope, intercept
            used.append(p)

        def curve(d: np.ndarray) -> np.ndarray:
            log_d = np.log(np.asarray(d, float))[None, :]
            return np.exp(lines[:, :1] * log_d + lines[:, 1:])

        return Selection(score=predicted, selected=int(np.argmin(predicted)),
                         predicted=predicted, info={"points_used": used}, curve=curve)
