"""The power-law variant of Lin et al.'s code (their "vanilla" law in the fit-quality study):

    L(D) = (1 / (B * D**beta) + |E|) ** alpha,   i.e.   log L = alpha * log(D**-beta / B + |E|).

It is not of the form ``B * x(D) + E`` the engine of :mod:`lensllm.laws._engine` solves, so
it has its own fitter, built on the same idea (variable projection in log space). With
``r = 1 / (B |E|)`` (how far above its floor the curve starts):

    log L = alpha * log|E| + alpha * log(1 + r * D**-beta) = a0 + alpha * g(D; beta, r),

which is linear in ``(a0, alpha)`` once ``(beta, log r)`` are fixed. The fitter solves
``(a0, alpha)`` in closed form on a grid of ``(beta, log r)`` for every curve at once, then
refines the best grid point of each curve with ``scipy.optimize.least_squares`` on the
projected residual. ``|E| = exp(a0 / alpha)``, ``B = 1 / (r |E|)``. Defined for ``D > 0``.

Bounds: ``alpha`` is free; ``beta`` is kept in the power-law region ``[1e-3, 4]`` by
default. The published code bounds neither, and without the bound the best fit of almost
every curve of the bundled tables leaves that region (``beta < 0`` on 49 of 60 curves, often
with ``|alpha| > 1e7``): ``(1 + r D**|beta|)**alpha`` is then a stretched exponential, not a
power law. ``beta_bounds=(-4, 4)`` gives those fits (``docs/studies.md`` has both).

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from lensllm.exceptions import FitError, InputError

__all__ = ["paper_power_loss", "PaperPowerFit", "fit_paper_power"]

#: Bounds of the non-linear coordinates ``(beta, log r)``; ``beta``'s is the default.
BETA_BOUNDS = (1e-3, 4.0)
LOG_R_BOUNDS = (-20.0, 80.0)
#: Grid points refined per curve.
N_STARTS = 4


def paper_power_loss(d, b, beta, e, alpha):
    """``L(D) = (1 / (B D**beta) + |E|) ** alpha`` (``D > 0``, ``B > 0``)."""
    d = np.asarray(d, dtype=float)
    return (1.0 / (b * np.power(d, beta)) + np.abs(e)) ** alpha


@dataclass(frozen=True, eq=False)
class PaperPowerFit:
    """Fits of :func:`paper_power_loss` to many curves.

    Attributes:
        params: ``B``, ``beta``, ``E``, ``alpha``, each ``(C,)``.
        rmse: in-sample root mean squared error of ``log L`` per curve ``(C,)``.
        success: whether the refinement converged ``(C,)``.
    """

    params: dict[str, np.ndarray]
    rmse: np.ndarray
    success: np.ndarray

    def predict(self, d: np.ndarray) -> np.ndarray:
        """``L(d)`` per curve: ``d`` ``(m,)`` gives ``(C, m)``."""
        p = {k: v[:, None] for k, v in self.params.items()}
        return paper_power_loss(np.asarray(d, float)[None, :], p["B"], p["beta"], p["E"],
                                p["alpha"])


def _basis(x: np.ndarray, beta: np.ndarray, log_r: np.ndarray) -> np.ndarray:
    """``g = log(1 + r D**-beta)`` for ``x = log D`` ``(n,)`` and parameters ``(..., 1)``."""
    return np.logaddexp(0.0, log_r - beta * x)


def _project(g: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``y ~ a0 + alpha g`` along the last axis: ``(a0, alpha, sse)``."""
    gm, ym = g.mean(-1, keepdims=True), y.mean(-1, keepdims=True)
    sgg = ((g - gm) ** 2).sum(-1)
    alpha = ((g - gm) * (y - ym)).sum(-1) / np.where(sgg > 0, sgg, np.inf)
    a0 = ym[..., 0] - alpha * gm[..., 0]
    sse = ((y - a0[..., None] - alpha[..., None] * g) ** 2).sum(-1)
    return a0, alpha, sse


def _check(d: np.ndarray, loss: np.ndarray, names: list[str] | None) -> None:
    if loss.ndim != 2 or d.shape != loss.shape[1:]:
        raise InputError(f"`loss` must be (curves, points) with `d` (points,), got "
                         f"{loss.shape} and {d.shape}")
    if not (np.all(np.isfinite(d)) and np.all(d > 0) and np.all(np.diff(d) > 0)):
        raise InputError(f"sizes for the paper's power law must be finite, > 0 and strictly "
                         f"increasing, got {d.tolist()}")
    bad = ~(np.isfinite(loss) & (loss > 0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        name = repr(names[i]) if names else f"#{i}"
        raise InputError(f"curve {name}: loss at D={d[j]:g} must be finite and > 0, got "
                         f"{loss[i, j]}")
    if d.size < 4:
        raise FitError(f"the paper's power law has 4 free parameters but only {d.size} "
                       f"points were given")


def _refine(x: np.ndarray, y: np.ndarray, starts: np.ndarray,
            beta_bounds: tuple[float, float]) -> tuple[float, float, bool]:
    """The best local optimum of the projected residual from each start ``(k, 2)``."""
    def resid(theta):
        g = _basis(x, theta[0], theta[1])
        a0, alpha, _ = _project(g, y)
        return y - a0 - alpha * g

    lower, upper = (beta_bounds[0], LOG_R_BOUNDS[0]), (beta_bounds[1], LOG_R_BOUNDS[1])
    best = None
    for start in starts:
        res = least_squares(resid, start, bounds=(lower, upper), x_scale=(0.1, 1.0),
                            xtol=1e-12, ftol=1e-14, gtol=1e-12, max_nfev=2000)
        if best is None or res.cost < best.cost:
            best = res
    return float(best.x[0]), float(best.x[1]), bool(best.success)


def fit_paper_power(d: np.ndarray, loss: np.ndarray, *, names: list[str] | None = None,
                    beta_bounds: tuple[float, float] = BETA_BOUNDS) -> PaperPowerFit:
    """Fit the paper's power-law variant to every curve in log space.

    Args:
        d: sizes ``(n,)``, > 0, increasing, shared by all curves.
        loss: losses ``(C, n)``.
        names: curve labels for error messages.
        beta_bounds: bounds of ``beta`` (see the module docstring).

    Raises:
        InputError: bad sizes, losses or bounds (the curve and size named).
        FitError: fewer than 4 points.
    """
    d, loss = np.asarray(d, float), np.asarray(loss, float)
    _check(d, loss, names)
    if not beta_bounds[0] < beta_bounds[1]:
        raise InputError(f"`beta_bounds` must satisfy lower < upper, got {beta_bounds}")
    x, y = np.log(d), np.log(loss)
    betas = np.geomspace(0.01, 3.0, 30)
    betas = np.concatenate([-betas[::-1], betas])
    betas = betas[(betas >= beta_bounds[0]) & (betas <= beta_bounds[1])]
    if betas.size == 0:
        betas = np.array([(beta_bounds[0] + beta_bounds[1]) / 2])
    beta_g, log_r_g = np.meshgrid(betas, np.linspace(-15.0, 60.0, 61), indexing="ij")
    beta_g, log_r_g = beta_g.ravel()[:, None], log_r_g.ravel()[:, None]
    g = _basis(x, beta_g, log_r_g)  # (G, n)
    _, _, sse = _project(np.broadcast_to(g[None], (y.shape[0],) + g.shape), y[:, None, :])
    starts = np.argsort(sse, axis=1)[:, :N_STARTS]
    out = {k: np.empty(y.shape[0]) for k in ("B", "beta", "E", "alpha")}
    rmse, success = np.empty(y.shape[0]), np.zeros(y.shape[0], bool)
    for i in range(y.shape[0]):
        beta, log_r, ok = _refine(x, y[i], np.column_stack([beta_g[starts[i], 0],
                                                            log_r_g[starts[i], 0]]),
                                beta_bounds)
        a0, alpha, sse_i = _project(_basis(x, beta, log_r), y[i])
        log_e = a0 / alpha if alpha != 0 else -np.inf
        out["beta"][i], out["alpha"][i] = beta, alpha
        out["E"][i] = np.exp(log_e)
        out["B"][i] = np.exp(-log_r - log_e)
        rmse[i] = np.sqrt(sse_i / x.size)
        success[i] = ok and np.isfinite(rmse[i])
    if not np.all(np.isfinite(rmse)):
        i = int(np.flatnonzero(~np.isfinite(rmse))[0])
        raise FitError(f"curve {names[i] if names else i}: the paper's power law fit failed")
    return PaperPowerFit(params=out, rmse=rmse, success=success)
