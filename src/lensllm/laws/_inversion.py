"""Inverting a fitted law: the size where it reaches a loss, and quantiles that tolerate
infinite sizes. The primitives under :mod:`lensllm.laws.inverse` (data planning) and
:mod:`lensllm.laws.calibration` (which plans with calibrated replicates), kept apart from
both so neither has to import the other's module to use them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["data_needed_at", "bisect_basis", "quantile_with_infinities"]


def data_needed_at(law, phi: np.ndarray, aux: dict[str, np.ndarray],
                   goal: np.ndarray) -> np.ndarray:
    """The size where the law at ``phi`` (internal coordinates, ``(N, p)``) reaches ``goal``.

    Returns ``(N,)``: ``inf`` where ``goal <= E``, 0 where the curve is already at or below
    the goal at ``D = 0``.
    """
    k = phi.shape[1] - 2
    b, e = np.exp(phi[:, k]), phi[:, k + 1]
    gap = np.broadcast_to(np.asarray(goal, float), e.shape) - e
    reach = gap > 0
    x = np.where(reach, gap, 1.0) / b
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d = law.basis_inverse(x, phi[:, :k], aux)
    return np.where(reach, d, np.inf)


def bisect_basis(law, x: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray],
                 *, n_iter: int = 200) -> np.ndarray:
    """``D`` with ``basis(D; theta) = x`` by bisection in ``log D`` (a decreasing basis).

    The fallback of :meth:`lensllm.laws.BaseLaw.basis_inverse` for a law without a closed
    form, searching ``1e-12 <= D <= 1e300``; 0 below that range (for laws defined at 0),
    ``inf`` above it.
    """
    x = np.asarray(x, float)
    lo = np.full(x.shape, np.log(1e-12))
    hi = np.full(x.shape, np.log(1e300))

    def basis_at(log_d):
        return law.basis(np.exp(log_d)[:, None], theta, aux)[:, 0]

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            above = basis_at(mid) > x
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        out = np.exp(0.5 * (lo + hi))
        out = np.where(basis_at(hi) > x, np.inf, out)
        if law.min_size() == 0.0:
            out = np.where(law.basis(np.zeros((x.size, 1)), theta, aux)[:, 0] <= x, 0.0, out)
    return out


def quantile_with_infinities(values: np.ndarray, q: float, axis: int = -1) -> np.ndarray:
    """``np.quantile`` (linear interpolation) that tolerates ``+-inf`` among the values.

    numpy's interpolation gives NaN between two equal infinities or at weight 0 next to one;
    here an interpolation that touches an infinite order statistic returns that infinity
    (the limit of the interpolation), and weight 0 returns the lower order statistic.
    """
    v = np.sort(np.moveaxis(np.asarray(values, float), axis, -1), axis=-1)
    n = v.shape[-1]
    pos = q * (n - 1)
    i = int(np.floor(pos))
    j = min(i + 1, n - 1)
    frac = pos - i
    a, b = v[..., i], v[..., j]
    finite = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore"):
        lerp = a + (b - a) * frac
    open_end = np.where(np.isneginf(a), a, b)
    return np.where(finite, lerp, a if frac == 0 else open_end)
