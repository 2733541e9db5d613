"""Vectorised log-space fitting by variable projection, shared by every law.

Every law in lensllm has the form ``L(D) = B * x(D; theta) + E`` with a *basis* ``x`` that
depends on a few non-linear parameters ``theta`` (the exponent, the pre-learned size, the
NTK time). The fit minimises the log-space error ``sum_i (log L_i - log L(D_i))**2`` over
``phi = (theta, log B, E)`` with box bounds, for many curves at once:

1. **Grid over theta, closed form for (B, E).** For a fixed ``theta`` the model is linear in
   ``(B, E)``. Minimising the *relative* error ``sum ((L_i - B x_i - E) / L_i)**2`` (the
   first-order expansion of the log error) has a closed-form solution with the bounds
   ``B > 0`` and ``0 <= E <= min L``, so every grid point costs a few dot products. This is
   the variable-projection step of docs/design.md, section 3.
2. **Batched Levenberg-Marquardt** on the exact log-space objective from the best few grid
   points of each curve (all curves and starts in one batch, analytic Jacobians, bounds by an
   active set: a parameter at its bound whose gradient points outward is held fixed). The
   damping follows Nielsen's rule (shrink by ``max(1/3, 1 - (2 rho - 1)**3)`` after a step
   with gain ratio ``rho``, grow by a doubling factor after a rejected one), which crosses
   the long curved valleys of near-flat curves (tiny ``beta``) in about half the iterations
   of a fixed divide-by-3 / multiply-by-4 rule.

The multi-start keeps the fit global in practice; the tests check it against a multi-start
``scipy.optimize.minimize`` on every row of the bundled tables.

Shapes: ``C`` curves, ``n`` points per curve (a boolean ``mask`` marks the points that
exist, so curves of different lengths share one array), ``k`` non-linear parameters,
``p = k + 2`` parameters in all, ``G`` grid points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lensllm.laws._workers import map_blocks

__all__ = ["LawSpec", "EngineResult", "fit_curves", "levenberg_marquardt"]

LOG_B_BOUNDS = (-60.0, 90.0)
_TINY = 1e-300


class LawSpec(Protocol):
    """What the engine needs from a law (internal, unconstrained-by-name coordinates)."""

    def theta_bounds(self, aux: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of theta, each ``(C, k)``."""

    def grid(self, aux: dict[str, np.ndarray]) -> np.ndarray:
        """Starting grid of theta, ``(G, k)``."""

    def basis(self, d: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]) -> np.ndarray:
        """``x(d; theta)`` with ``d`` ``(..., n)`` and ``theta`` ``(..., k)``: ``(..., n)``."""

    def basis_jac(
        self, d: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]
    ) -> np.ndarray:
        """``dx/dtheta``: ``(..., n, k)``."""

    def basis_and_jac(
        self, d: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(basis, basis_jac)`` at once, equal bit for bit to the two calls."""


@dataclass(frozen=True)
class EngineResult:
    """Raw output of :func:`fit_curves` (internal coordinates).

    Attributes:
        phi: best parameters per curve ``(C, p)``: ``(theta..., log B, E)``.
        sse: log-space sum of squared residuals per curve ``(C,)``.
        n_iter: Levenberg-Marquardt iterations of the winning start ``(C,)``.
        converged: whether the winning start met the tolerance ``(C,)``.
    """

    phi: np.ndarray
    sse: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


def _weighted_linear_solve(
    stats: dict[str, np.ndarray], e_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounded weighted least squares for ``L ~ B x + E`` from sufficient statistics.

    ``stats`` holds the weighted sums ``w, x, xx, y, xy, yy`` (each broadcastable to the
    same shape); the bounds are ``B >= 0`` and ``0 <= E <= e_max``. Returns ``B``, ``E`` and
    the weighted residual sum of squares. The optimum of a convex quadratic over a box lies
    in the interior or on an edge: all candidates are evaluated and the feasible best kept.
    """
    sw, sx, sxx, sy, sxy, syy = (stats[k] for k in ("w", "x", "xx", "y", "xy", "yy"))
    e_max = np.broadcast_to(e_max, np.broadcast_shapes(np.shape(sw), np.shape(e_max)))

    def objective(b, e):
        return syy - 2 * b * sxy - 2 * e * sy + b * b * sxx + 2 * b * e * sx + e * e * sw

    with np.errstate(divide="ignore", invalid="ignore"):
        det = sw * sxx - sx * sx
        b_free = (sw * sxy - sx * sy) / det
        e_free = (sxx * sy - sx * sxy) / det
        # Edge E = 0 and edge E = e_max: B from its normal equation, clipped at 0.
        b_e0 = np.maximum(sxy / sxx, 0.0)
        b_emax = np.maximum((sxy - e_max * sx) / sxx, 0.0)
        # Edge B = 0: E is the weighted mean, clipped into [0, e_max].
        e_b0 = np.clip(sy / sw, 0.0, e_max)
    candidates = [
        (b_free, e_free, (b_free >= 0) & (e_free >= 0) & (e_free <= e_max) & np.isfinite(det)),
        (b_e0, np.zeros_like(b_e0), np.isfinite(b_e0)),
        (b_emax, e_max, np.isfinite(b_emax)),
        (np.zeros_like(e_b0), e_b0, np.isfinite(e_b0)),
    ]
    best_b = np.zeros(np.shape(sw))
    best_e = np.zeros(np.shape(sw))
    best_f = np.full(np.shape(sw), np.inf)
    for b, e, ok in candidates:
        b = np.where(ok, b, 0.0)
        e = np.where(ok, e, 0.0)
        f = np.where(ok, objective(b, e), np.inf)
        take = f < best_f
        best_b, best_e, best_f = (np.where(take, b, best_b), np.where(take, e, best_e),
                                  np.where(take, f, best_f))
    return best_b, best_e, best_f


def _grid_starts(
    spec: LawSpec,
    d: np.ndarray,
    loss: np.ndarray,
    mask: np.ndarray,
    aux: dict[str, np.ndarray],
    e_max: np.ndarray,
    n_starts: int,
) -> np.ndarray:
    """The ``n_starts`` best grid points of each curve as full parameter vectors ``(C, S, p)``."""
    grid = spec.grid(aux)  # (G, k)
    n_curves = loss.shape[0]
    w = np.where(mask, 1.0 / np.where(mask, loss, 1.0) ** 2, 0.0)  # relative-error weights
    y = np.where(mask, loss, 0.0)
    shared = d.ndim == 1 and not aux
    if shared:
        x = spec.basis(d[None, :], grid, aux)  # (G, n)
        stats = {
            "w": w.sum(1)[:, None],
            "x": w @ x.T,
            "xx": w @ (x * x).T,
            "y": (w * y).sum(1)[:, None],
            "xy": (w * y) @ x.T,
            "yy": (w * y * y).sum(1)[:, None],
        }
    else:
        dd = np.broadcast_to(d, loss.shape)[:, None, :]
        x = spec.basis(dd, grid[None, :, :], _expand_aux(aux, 1))  # (C, G, n)
        w3, y3 = w[:, None, :], y[:, None, :]
        stats = {
            "w": w3.sum(-1),
            "x": (w3 * x).sum(-1),
            "xx": (w3 * x * x).sum(-1),
            "y": (w3 * y3).sum(-1),
            "xy": (w3 * y3 * x).sum(-1),
            "yy": (w3 * y3 * y3).sum(-1),
        }
    b, e, f = _weighted_linear_solve(stats, e_max[:, None])
    f = np.where(np.isfinite(f) & (b > 0), f, np.inf)
    n_starts = min(n_starts, grid.shape[0])
    order = np.argsort(f, axis=1)[:, :n_starts]  # (C, S)
    rows = np.arange(n_curves)[:, None]
    theta0 = grid[order]  # (C, S, k)
    log_b0 = np.log(np.maximum(b[rows, order], np.exp(LOG_B_BOUNDS[0] + 1)))
    e0 = e[rows, order]
    return np.concatenate([theta0, log_b0[..., None], e0[..., None]], axis=-1)


def _expand_aux(aux: dict[str, np.ndarray], axis_count: int) -> dict[str, np.ndarray]:
    """Insert ``axis_count`` unit axes after the curve axis of every per-curve array."""
    out = {}
    for key, value in aux.items():
        value = np.asarray(value)
        out[key] = value.reshape(value.shape[:1] + (1,) * axis_count + value.shape[1:])
    return out


def _repeat_aux(aux: dict[str, np.ndarray], repeats: int) -> dict[str, np.ndarray]:
    """Repeat every per-curve array ``repeats`` times along the curve axis (for starts)."""
    return {key: np.repeat(np.asarray(v), repeats, axis=0) for key, v in aux.items()}


def _model_and_jac(
    spec: LawSpec, d: np.ndarray, phi: np.ndarray, aux: dict[str, np.ndarray], want_jac: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Model ``m = B x + E`` ``(N, n)`` and ``dm/dphi`` ``(N, n, p)``."""
    k = phi.shape[1] - 2
    theta, b = phi[:, :k], np.exp(phi[:, k])
    if not want_jac:
        x = spec.basis(d, theta, aux)
        return b[:, None] * x + phi[:, k + 1 : k + 2], None
    x, dx = spec.basis_and_jac(d, theta, aux)  # one pass (the same values as two calls)
    m = b[:, None] * x + phi[:, k + 1 : k + 2]
    jac = np.empty(m.shape + (k + 2,))
    jac[..., :k] = b[:, None, None] * dx
    jac[..., k] = b[:, None] * x
    jac[..., k + 1] = 1.0
    return m, jac


def _residuals(
    spec: LawSpec,
    d: np.ndarray,
    log_loss: np.ndarray,
    mask: np.ndarray,
    phi: np.ndarray,
    aux: dict[str, np.ndarray],
    want_jac: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    m, dm = _model_and_jac(spec, d, phi, aux, want_jac)
    bad = ~(m > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(mask, log_loss - np.log(np.where(bad, 1.0, m)), 0.0)
    r = np.where(mask & bad, 1e6, r)  # a non-positive model is infinitely wrong
    if not want_jac:
        return r, None
    with np.errstate(divide="ignore", invalid="ignore"):
        jac = np.where(mask[..., None] & ~bad[..., None], -dm / np.where(bad, 1.0, m)[..., None],
                       0.0)
    return r, jac


def levenberg_marquardt(
    spec: LawSpec,
    d: np.ndarray,
    log_loss: np.ndarray,
    mask: np.ndarray,
    phi0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    aux: dict[str, np.ndarray],
    *,
    max_iter: int = 200,
    tol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched, bounded Levenberg-Marquardt on the log-space residuals.

    Args:
        d: sizes ``(N, n)`` or ``(n,)``.
        log_loss: ``log L`` ``(N, n)``; mask ``(N, n)``.
        phi0: starts ``(N, p)``; lower, upper: bounds ``(N, p)``.

    Returns:
        ``phi`` ``(N, p)``, ``sse`` ``(N,)``, iterations ``(N,)``, converged ``(N,)``.
    """
    phi = np.clip(phi0, lower, upper)
    n_batch, p = phi.shape
    r, jac = _residuals(spec, d, log_loss, mask, phi, aux, True)
    out_phi, out_cost = phi.copy(), np.einsum("ij,ij->i", r, r)
    out_iter, done = np.zeros(n_batch, int), np.zeros(n_batch, bool)
    # The working set holds the unfinished rows only (compacted when rows finish), so an
    # iteration touches no finished row; every row's arithmetic is what it would be alone.
    w = _Work(rows=np.arange(n_batch), phi=phi, r=r, jac=jac, cost=out_cost.copy(),
              lam=np.full(n_batch, 1e-3), nu=np.full(n_batch, 2.0),
              n_iter=np.zeros(n_batch, int), lower=lower, upper=upper, d=d,
              log_loss=log_loss, mask=mask, aux=aux)
    eye = np.eye(p)
    for _ in range(max_iter):
        if w.rows.size == 0:
            break
        finished = _lm_step(spec, w, eye, tol)
        if finished.any():
            idx = w.rows[finished]
            out_phi[idx], out_cost[idx] = w.phi[finished], w.cost[finished]
            out_iter[idx], done[idx] = w.n_iter[finished], True
            w = w.keep(~finished)
    out_phi[w.rows], out_cost[w.rows], out_iter[w.rows] = w.phi, w.cost, w.n_iter
    return out_phi, out_cost, out_iter, done


@dataclass
class _Work:
    """The unfinished rows of a Levenberg-Marquardt batch and their state."""

    rows: np.ndarray
    phi: np.ndarray
    r: np.ndarray
    jac: np.ndarray
    cost: np.ndarray
    lam: np.ndarray
    nu: np.ndarray
    n_iter: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    d: np.ndarray
    log_loss: np.ndarray
    mask: np.ndarray
    aux: dict[str, np.ndarray]

    def keep(self, sel: np.ndarray) -> _Work:
        """The rows where ``sel`` is true (copies)."""
        idx = np.flatnonzero(sel)
        fields = {f: getattr(self, f)[idx] for f in
                  ("rows", "phi", "r", "jac", "cost", "lam", "nu", "n_iter", "lower",
                   "upper", "log_loss", "mask")}
        return _Work(**fields, d=_take(self.d, idx), aux=_take_aux(self.aux, idx))


def _lm_step(spec: LawSpec, w: _Work, eye: np.ndarray, tol: float) -> np.ndarray:
    """One damped step on every row of ``w`` (updated in place); returns which finished."""
    j, rr, ph, lower, upper = w.jac, w.r, w.phi, w.lower, w.upper
    # Gradient of 0.5 * sse is J^T r: at a bound, a parameter whose descent direction
    # (-J^T r) points outside is held fixed for this step (active set).
    grad = np.einsum("inp,in->ip", j, rr)
    at_lower = (ph <= lower) & (grad > 0)
    at_upper = (ph >= upper) & (grad < 0)
    free = ~(at_lower | at_upper)
    jf = j * free[:, None, :]
    a = np.einsum("inp,inq->ipq", jf, jf)
    g = np.einsum("inp,in->ip", jf, rr)
    diag = np.einsum("ipp->ip", a)
    scale = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
    m = a + (w.lam[:, None] * scale)[:, :, None] * eye + (~free)[:, :, None] * eye
    try:
        step = -np.linalg.solve(m, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        step = -g / np.maximum(np.einsum("ipp->ip", m), 1e-300)
    step = np.where(free & np.isfinite(step), step, 0.0)
    trial = np.clip(ph + step, lower, upper)
    r_new, jac_new = _residuals(spec, w.d, w.log_loss, w.mask, trial, w.aux, True)
    cost_new = np.einsum("ij,ij->i", r_new, r_new)
    cost = w.cost
    better = np.isfinite(cost_new) & (cost_new < cost)
    gain = (cost - cost_new) / np.maximum(cost, 1e-300)
    moved = np.abs(trial - ph).max(axis=1)
    # Gain ratio rho = actual / predicted decrease (predicted by the linear model of the
    # residuals along the step actually taken), for Nielsen's damping update.
    taken = trial - ph
    jd = np.einsum("inp,ip->in", j, taken)
    predicted = -(2.0 * np.einsum("in,in->i", rr, jd) + np.einsum("in,in->i", jd, jd))
    rho = (cost - cost_new) / np.where(predicted > 0, predicted, np.inf)
    w.phi[better], w.r[better], w.jac[better] = trial[better], r_new[better], jac_new[better]
    w.cost = np.where(better, cost_new, cost)
    shrink = np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.clip(rho, 0.0, 1.0) - 1.0) ** 3)
    w.lam = np.where(better, np.maximum(w.lam * shrink, 1e-12), w.lam * w.nu)
    w.nu = np.where(better, 2.0, w.nu * 2.0)
    w.n_iter += 1
    finished = (better & ((gain < tol) | (moved < 1e-12))) | (~better & (w.lam > 1e12))
    return finished | (w.cost < 1e-28)


def _take(d: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return d if d.ndim == 1 else d[idx]


def _take_aux(aux: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {key: np.asarray(v)[idx] for key, v in aux.items()}


def full_bounds(
    spec: LawSpec, loss: np.ndarray, mask: np.ndarray, aux: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``phi`` per curve ``(C, p)``: theta's, ``log B``'s and ``0 <= E <= min L``."""
    t_lo, t_hi = spec.theta_bounds(aux)
    n_curves = loss.shape[0]
    e_max = np.where(mask, loss, np.inf).min(axis=1)
    lower = np.column_stack([np.broadcast_to(t_lo, (n_curves, t_lo.shape[-1])),
                             np.full(n_curves, LOG_B_BOUNDS[0]), np.zeros(n_curves)])
    upper = np.column_stack([np.broadcast_to(t_hi, (n_curves, t_hi.shape[-1])),
                             np.full(n_curves, LOG_B_BOUNDS[1]), e_max])
    return lower, upper


#: Curves fitted (and bootstrapped) per block: the engine's arrays grow with curves x
#: starts (or replicates) x points x parameters, so blocks bound peak memory on tables of
#: thousands of models (10,000 rectified curves at once took 3.5 GB).
FIT_BLOCK = 256
BOOT_BLOCK = 32


def _blocks(n_curves: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n_curves)) for i in range(0, n_curves, size)]


def fit_curves(spec: LawSpec, d: np.ndarray, loss: np.ndarray, mask: np.ndarray,
               aux: dict[str, np.ndarray] | None = None, **kwargs: Any) -> EngineResult:
    """:func:`_fit_block` over blocks of :data:`FIT_BLOCK` curves (same results, bounded
    memory; on large tables the blocks run in worker processes, see
    :mod:`lensllm.laws._workers`); see :func:`_fit_block` for the arguments."""
    aux = aux or {}
    n_curves = loss.shape[0]
    if n_curves <= FIT_BLOCK:
        return _fit_block(spec, d, loss, mask, aux, **kwargs)
    jobs = [((spec, d if d.ndim == 1 else d[sl], loss[sl], mask[sl],
              _take_aux(aux, np.arange(n_curves)[sl])), kwargs)
            for sl in _blocks(n_curves, FIT_BLOCK)]
    parts = map_blocks(_fit_block, jobs, n_curves)
    return EngineResult(*(np.concatenate([getattr(r, f) for r in parts])
                          for f in ("phi", "sse", "n_iter", "converged")))


def _fit_block(
    spec: LawSpec,
    d: np.ndarray,
    loss: np.ndarray,
    mask: np.ndarray,
    aux: dict[str, np.ndarray] | None = None,
    *,
    n_starts: int = 4,
    max_iter: int = 200,
    tol: float = 1e-12,
) -> EngineResult:
    """Fit one law to ``C`` curves at once (see the module docstring for the algorithm).

    Args:
        spec: the law.
        d: sizes, ``(n,)`` shared by all curves or ``(C, n)``.
        loss: losses ``(C, n)``, positive and finite where ``mask``.
        mask: which points exist ``(C, n)``.
        aux: per-curve arrays the law needs (for example NTK spectra), leading axis ``C``.
        n_starts: grid points refined per curve.
    """
    aux = aux or {}
    lower, upper = full_bounds(spec, loss, mask, aux)
    starts = _grid_starts(spec, d, loss, mask, aux, upper[:, -1], n_starts)  # (C, S, p)
    n_curves, n_s, p = starts.shape
    rep = lambda a: np.repeat(a, n_s, axis=0)  # noqa: E731 - local shorthand
    log_loss = np.log(np.where(mask, loss, 1.0))
    phi, sse, n_iter, conv = levenberg_marquardt(
        spec, d if d.ndim == 1 else rep(d), rep(log_loss), rep(mask), starts.reshape(-1, p),
        rep(lower), rep(upper), _repeat_aux(aux, n_s), max_iter=max_iter, tol=tol,
    )
    sse = np.where(np.isfinite(sse), sse, np.inf).reshape(n_curves, n_s)
    best = np.argmin(sse, axis=1)
    rows = np.arange(n_curves)
    pick = lambda a: a.reshape(n_curves, n_s, *a.shape[1:])[rows, best]  # noqa: E731
    return EngineResult(phi=pick(phi), sse=sse[rows, best], n_iter=pick(n_iter),
                        converged=pick(conv))


def model_values(
    spec: LawSpec, d: np.ndarray, phi: np.ndarray, aux: dict[str, np.ndarray]
) -> np.ndarray:
    """``L(d)`` for parameters ``phi`` ``(N, p)`` at sizes ``d`` ``(m,)`` or ``(N, m)``: ``(N, m)``."""
    d = np.asarray(d, dtype=float)
    if d.ndim == 1:
        d = np.broadcast_to(d, (phi.shape[0], d.shape[0]))
    return _model_and_jac(spec, d, phi, aux, False)[0]


def bootstrap_params(spec: LawSpec, d: np.ndarray, loss: np.ndarray, mask: np.ndarray,
                     phi: np.ndarray, aux: dict[str, np.ndarray], *, n_boot: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_bootstrap_block` over blocks of :data:`BOOT_BLOCK` curves (block ``k`` draws
    with seed ``seed + k``; one block, the usual case, is exactly the unblocked result)."""
    n_curves = loss.shape[0]
    if n_curves <= BOOT_BLOCK:
        return _bootstrap_block(spec, d, loss, mask, phi, aux, n_boot=n_boot, seed=seed)
    jobs = [((spec, d if d.ndim == 1 else d[sl], loss[sl], mask[sl], phi[sl],
              _take_aux(aux, np.arange(n_curves)[sl])), {"n_boot": n_boot, "seed": seed + k})
            for k, sl in enumerate(_blocks(n_curves, BOOT_BLOCK))]
    parts = map_blocks(_bootstrap_block, jobs, n_curves)
    return (np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts]))


def _bootstrap_block(
    spec: LawSpec,
    d: np.ndarray,
    loss: np.ndarray,
    mask: np.ndarray,
    phi: np.ndarray,
    aux: dict[str, np.ndarray],
    *,
    n_boot: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Residual bootstrap in log space, warm-started at the fit.

    Each replicate adds log residuals drawn with replacement (rescaled by
    ``sqrt(n / (n - p))`` so their spread is unbiased) to the fitted log curve and refits.

    Returns:
        ``phi_star`` ``(C, R, p)`` and the rescaled residual pools ``(C, n)`` (zero where
        ``mask`` is false), used to add observation noise to predictions.
    """
    rng = np.random.default_rng(seed)
    n_curves, p = phi.shape
    dd = np.broadcast_to(d, loss.shape) if d.ndim == 1 else d
    log_fit = np.log(model_values(spec, dd, phi, aux))
    log_loss = np.log(np.where(mask, loss, 1.0))
    resid = np.where(mask, log_loss - log_fit, 0.0)
    n_pts = mask.sum(axis=1)
    dof = np.maximum(n_pts - p, 1)
    resid = resid * np.sqrt(n_pts / dof)[:, None]
    resid = resid - np.where(mask, (resid.sum(1) / n_pts)[:, None], 0.0)  # centre the pool
    # Draw, for every curve, replicate and point, one of that curve's valid residuals.
    u = rng.random((n_curves, n_boot, loss.shape[1]))
    valid_idx = np.argsort(~mask, axis=1, kind="stable")  # valid points first
    pick = np.minimum((u * n_pts[:, None, None]).astype(int), n_pts[:, None, None] - 1)
    point = np.take_along_axis(np.broadcast_to(valid_idx[:, None, :], pick.shape), pick, axis=2)
    drawn = np.take_along_axis(np.broadcast_to(resid[:, None, :], pick.shape), point, axis=2)
    y_star = log_fit[:, None, :] + drawn  # (C, R, n)
    lower, upper = full_bounds(spec, loss, mask, aux)
    rep = lambda a: np.repeat(a, n_boot, axis=0)  # noqa: E731
    # E's bound uses each replicate's own minimum loss.
    mask_r = rep(mask)
    y_flat = y_star.reshape(-1, loss.shape[1])
    upper_r = rep(upper)
    upper_r[:, -1] = np.where(mask_r, np.exp(y_flat), np.inf).min(axis=1)
    phi_star, _, _, _ = levenberg_marquardt(
        spec, d if d.ndim == 1 else rep(d), y_flat, mask_r,
        np.minimum(rep(phi), upper_r), rep(lower), upper_r, _repeat_aux(aux, n_boot),
        max_iter=60, tol=1e-9,
    )
    return phi_star.reshape(n_curves, n_boot, p), resid

