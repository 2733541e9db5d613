"""Law objects, fit results and input validation shared by every law.

A law object (:class:`PowerLaw`, :class:`RectifiedLaw`, :class:`LensLaw`) stores settings
only. ``law.fit(d, loss)`` fits one curve, sets ``law.fit_`` (a :class:`LawFit`) and
returns the law; ``law.fit_many(d, losses, mask)`` fits many curves in one vectorised pass
and returns a :class:`BatchFit`. Parameters are reported in the units of the formulas in
:mod:`lensllm.laws._formulas`; internally the engine works in log coordinates.

Prediction intervals are a residual bootstrap in log space (:func:`_engine.bootstrap_params`),
computed on the first call of ``interval`` and cached: each replicate refits the law to the
fitted curve plus resampled residuals, predicts ``L(D)`` and adds one resampled residual (an
interval for a new measurement of the loss, not only for the curve).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lensllm.exceptions import FitError, InputError, NotFittedError, warn_fit
from lensllm.laws import _engine

__all__ = ["LOSS_RANGE", "Param", "BaseLaw", "LawFit", "BatchFit"]

#: Losses a fit accepts. Inside this range the fits are scale invariant: a table
#: multiplied by any factor that keeps it inside gives the same predictions times that
#: factor (measured on the bundled tables from 1e-8 to 1e9 times their losses; tested).
#: Far below it the engine's bounds and weights (1 / loss**2) break: losses of 1e-300
#: overflowed and the fit reported success on nonsense. A loss outside it is refused.
LOSS_RANGE = (1e-6, 1e6)


@dataclass(frozen=True)
class Param:
    """A parameter bound in the engine's internal coordinates.

    Attributes:
        name: user-facing name (``beta``, ``D_l``...).
        lower, upper: bounds of the *internal* coordinate.
        log: whether the internal coordinate is ``log(value)``.
    """

    name: str
    lower: float
    upper: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise InputError(
                f"bounds of `{self.name}` must satisfy lower < upper, got "
                f"[{self.lower}, {self.upper}]"
            )


class BaseLaw(ABC):
    """A law ``L(D) = B * x(D; theta) + E`` fitted in log space.

    Args:
        n_starts: grid points refined by Levenberg-Marquardt per curve.
        max_iter: Levenberg-Marquardt iteration cap.
    """

    name: ClassVar[str]
    #: User-facing parameter names, in the order of :meth:`user_params`.
    param_names: ClassVar[tuple[str, ...]]
    #: Keyword names of :meth:`fit` (one curve) mapped to those of :meth:`fit_many`.
    single_curve_inputs: ClassVar[dict[str, str]] = {}

    def __init__(self, *, n_starts: int = 4, max_iter: int = 200) -> None:
        if n_starts < 1:
            raise InputError(f"`n_starts` must be >= 1, got {n_starts}")
        if max_iter < 1:
            raise InputError(f"`max_iter` must be >= 1, got {max_iter}")
        self.n_starts = n_starts
        self.max_iter = max_iter

    # --- what each law defines -------------------------------------------------------
    @abstractmethod
    def theta_params(self) -> tuple[Param, ...]:
        """The non-linear parameters and their internal bounds."""

    @abstractmethod
    def grid(self, aux: dict[str, np.ndarray]) -> np.ndarray:
        """Starting grid of the non-linear parameters ``(G, k)``."""

    @abstractmethod
    def basis(self, d: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]) -> np.ndarray:
        """``x(d; theta)``."""

    @abstractmethod
    def basis_jac(
        self, d: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]
    ) -> np.ndarray:
        """``dx/dtheta`` ``(..., n, k)``."""

    def basis_and_jac(
        self, d: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(basis, basis_jac)`` in one call; a law overrides it to share the work (the
        values must equal those of the two methods bit for bit)."""
        return self.basis(d, theta, aux), self.basis_jac(d, theta, aux)

    @abstractmethod
    def user_params(self, phi: np.ndarray, aux: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Internal ``phi`` ``(C, p)`` to user-facing parameters, each ``(C,)``."""

    def prepare_aux(self, n_curves: int, **kwargs: Any) -> dict[str, np.ndarray]:
        """Per-curve extra arrays (NTK spectra...). Laws without any reject keywords."""
        if kwargs:
            raise InputError(f"{self.name} law takes no extra inputs, got {sorted(kwargs)}")
        return {}

    def min_size(self) -> float:
        """Smallest admissible data size (0 for laws defined at D = 0)."""
        return 0.0

    def transition(self, params: dict[str, np.ndarray]) -> np.ndarray | None:
        """Per curve, the size where the pre-power phase ends ``(C,)``; None for a law
        without one (the power law). Reports ask the law instead of naming parameters."""
        return None

    def basis_inverse(
        self, x: np.ndarray, theta: np.ndarray, aux: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The size ``D`` where ``basis(D; theta) = x``, per row; the laws give closed forms.

        ``x`` ``(N,)`` is positive; ``theta`` ``(N, k)``. Every basis falls with ``D``, so
        the answer is unique: 0 where ``x`` is at or above ``basis(0)`` (the goal is met
        without fine-tuning), ``inf`` where no finite size gets that low. This default
        bisects in ``log D`` (for a law without a closed form; see
        :mod:`lensllm.laws.inverse`).
        """
        from lensllm.laws._inversion import bisect_basis

        return bisect_basis(self, x, theta, aux)

    # --- engine protocol ---------------------------------------------------------------
    def theta_bounds(self, aux: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        params = self.theta_params()
        return (np.array([p.lower for p in params]), np.array([p.upper for p in params]))

    @property
    def n_params(self) -> int:
        return len(self.theta_params()) + 2

    # --- public API --------------------------------------------------------------------
    def fit_many(
        self,
        d: np.ndarray,
        loss: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        names: list[str] | None = None,
        **aux_inputs: Any,
    ) -> BatchFit:
        """Fit the law to many curves in one vectorised pass.

        Args:
            d: sizes ``(n,)`` shared by all curves, or ``(C, n)``.
            loss: test losses ``(C, n)``.
            mask: which points to use ``(C, n)``; default all.
            names: curve labels used in error messages and reports.
            **aux_inputs: law-specific inputs (``spectra=`` and ``t=`` for :class:`LensLaw`).

        Raises:
            InputError: non-finite or non-positive losses, negative or non-increasing sizes.
            FitError: a curve with fewer points than the law has free parameters.
        """
        d, loss, mask = self._validate(d, loss, mask, names)
        aux = self.prepare_aux(loss.shape[0], **aux_inputs)
        raw = _engine.fit_curves(self, d, loss, mask, aux, n_starts=self.n_starts,
                                 max_iter=self.max_iter)
        return BatchFit(law=self, d=d, loss=loss, mask=mask, aux=aux, raw=raw,
                        names=tuple(names) if names is not None else None)

    def fit(self, d: np.ndarray, loss: np.ndarray, **aux_inputs: Any) -> BaseLaw:
        """Fit one curve; sets ``fit_`` and returns ``self``.

        Args:
            d: sizes ``(n,)``; loss: losses ``(n,)``.
        """
        d = np.asarray(d, dtype=float)
        loss = np.asarray(loss, dtype=float)
        if d.ndim != 1 or loss.shape != d.shape:
            raise InputError(f"`d` and `loss` must be 1-D of one length, got shapes {d.shape} "
                             f"and {loss.shape}")
        rename = self.single_curve_inputs
        batch_aux = {rename.get(k, k): [v] for k, v in aux_inputs.items()}
        self.fit_ = self.fit_many(d, loss[None, :], **batch_aux)[0]
        if not self.fit_.success:
            warn_fit(f"{self.name} fit did not converge: {self.fit_.message}")
        return self

    def predict(self, d: np.ndarray) -> np.ndarray:
        """``L(d)`` of the last single-curve fit."""
        return self._fitted().predict(d)

    def interval(self, d: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Prediction interval of the last single-curve fit (see :meth:`LawFit.interval`)."""
        return self._fitted().interval(d, level)

    def _fitted(self) -> LawFit:
        fit = getattr(self, "fit_", None)
        if fit is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return fit

    def _validate(
        self, d: Any, loss: Any, mask: Any, names: list[str] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        loss = np.asarray(loss, dtype=float)
        if loss.ndim != 2 or loss.shape[1] == 0 or loss.shape[0] == 0:
            raise InputError(f"`loss` must be a non-empty 2-D array (curves, points), "
                             f"got shape {loss.shape}")
        d = np.asarray(d, dtype=float)
        if d.shape not in (loss.shape[1:], loss.shape):
            raise InputError(f"`d` must have shape {loss.shape[1:]} or {loss.shape}, "
                             f"got {d.shape}")
        mask = np.ones(loss.shape, bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != loss.shape:
            raise InputError(f"`mask` must have shape {loss.shape}, got {mask.shape}")
        label = (lambda i: repr(names[i])) if names is not None else (lambda i: f"#{i}")
        dd = np.broadcast_to(d, loss.shape)
        for i in range(loss.shape[0]):
            m = mask[i]
            li, di = loss[i, m], dd[i, m]
            if not np.all(np.isfinite(li)):
                j = np.flatnonzero(m)[~np.isfinite(li)][0]
                raise InputError(f"curve {label(i)}: loss at D={dd[i, j]:g} is not finite "
                                 f"({loss[i, j]})")
            if np.any(li <= 0):
                j = np.flatnonzero(m)[li <= 0][0]
                raise InputError(f"curve {label(i)}: loss at D={dd[i, j]:g} must be > 0, got "
                                 f"{loss[i, j]}")
            out = (li < LOSS_RANGE[0]) | (li > LOSS_RANGE[1])
            if np.any(out):
                j = np.flatnonzero(m)[out][0]
                raise InputError(f"curve {label(i)}: loss at D={dd[i, j]:g} is {loss[i, j]:g}, "
                                 f"outside [{LOSS_RANGE[0]:g}, {LOSS_RANGE[1]:g}], the range "
                                 "the fits are exact in; rescale the losses' unit")
            if not np.all(np.isfinite(di)) or np.any(di < self.min_size()) or (
                self.min_size() > 0 and np.any(di <= 0)
            ):
                rule = "> 0" if self.min_size() > 0 else ">= 0"
                raise InputError(f"curve {label(i)}: sizes for the {self.name} law must be "
                                 f"finite and {rule}, got {di.tolist()}")
            if np.any(np.diff(di) <= 0):
                raise InputError(f"curve {label(i)}: sizes must be strictly increasing, got "
                                 f"{di.tolist()}")
            if m.sum() < self.n_params:
                raise FitError(
                    f"curve {label(i)}: the {self.name} law has {self.n_params} free parameters "
                    f"but only {int(m.sum())} points were given"
                )
        return d, loss, mask


@dataclass(frozen=True, eq=False)
class BatchFit:
    """Fits of one law to many curves (see :meth:`BaseLaw.fit_many`)."""

    law: BaseLaw
    d: np.ndarray
    loss: np.ndarray
    mask: np.ndarray
    aux: dict[str, np.ndarray]
    raw: _engine.EngineResult
    names: tuple[str, ...] | None = None
    _boot: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.loss.shape[0]

    def __getitem__(self, i: int) -> LawFit:
        params = {k: float(v[i]) for k, v in self.params.items()}
        return LawFit(batch=self, index=i, law_name=self.law.name, params=params,
                      success=bool(self.success[i]), message=self.messages[i],
                      n_iter=int(self.raw.n_iter[i]), rmse=float(self.rmse[i]),
                      n_points=int(self.mask[i].sum()))

    @property
    def params(self) -> dict[str, np.ndarray]:
        """User-facing parameters, each ``(C,)``."""
        return self.law.user_params(self.raw.phi, self.aux)

    @property
    def transition(self) -> np.ndarray | None:
        """Per curve, the end of the pre-power phase ``(C,)`` (None if the law has none)."""
        return self.law.transition(self.params)

    @property
    def rmse(self) -> np.ndarray:
        """Root mean squared log-space residual per curve ``(C,)``."""
        return np.sqrt(self.raw.sse / self.mask.sum(axis=1))

    @property
    def sse(self) -> np.ndarray:
        """Sum of squared log-space residuals per curve ``(C,)``."""
        return self.raw.sse

    @property
    def success(self) -> np.ndarray:
        return self.raw.converged & np.isfinite(self.raw.sse) & np.all(
            np.isfinite(self.raw.phi), axis=1)

    @property
    def messages(self) -> list[str]:
        out = []
        for ok, it, sse in zip(self.success, self.raw.n_iter, self.raw.sse):
            out.append(f"converged in {it} iterations" if ok else
                       f"stopped after {it} iterations without meeting the tolerance "
                       f"(log-space SSE {sse:.3g})")
        return out

    def predict(self, d: np.ndarray) -> np.ndarray:
        """``L(d)`` per curve: ``d`` ``(m,)`` gives ``(C, m)``."""
        d = self._check_d(d)
        return _engine.model_values(self.law, d, self.raw.phi, self.aux)

    def interval(
        self, d: np.ndarray, level: float = 0.9, *, n_boot: int = 200, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap prediction interval of a new loss measurement at ``d``.

        Args:
            d: sizes ``(m,)``.
            level: central coverage, in (0, 1).
            n_boot: bootstrap replicates (computed once per ``(n_boot, seed)`` and cached).

        Returns:
            ``(lower, upper)``, each ``(C, m)``. Curves with as many points as parameters
            have no residual information: their interval is ``(0, inf)``.
        """
        if not 0 < level < 1:
            raise InputError(f"`level` must be in (0, 1), got {level}")
        d = self._check_d(d)
        phi_star, noise = self.replicates(n_boot=n_boot, seed=seed)
        n_curves, n_rep, p = phi_star.shape
        aux_r = _engine._repeat_aux(self.aux, n_rep)
        pred = _engine.model_values(self.law, d, phi_star.reshape(-1, p), aux_r)
        log_pred = np.log(np.maximum(pred, 1e-300)).reshape(n_curves, n_rep, -1)
        log_pred = log_pred + noise[..., None]
        n_pts = self.mask.sum(axis=1)
        alpha = (1 - level) / 2
        lo = np.exp(np.quantile(log_pred, alpha, axis=1))
        hi = np.exp(np.quantile(log_pred, 1 - alpha, axis=1))
        no_info = n_pts <= p
        lo[no_info], hi[no_info] = 0.0, np.inf
        return lo, hi

    def replicates(self, *, n_boot: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The bootstrap behind :meth:`interval`: refitted parameters and measurement noise.

        Replicate ``r`` of curve ``c`` is the curve ``L_r(D) * exp(noise[c, r])``, with
        ``L_r`` the law at ``phi_star[c, r]`` (internal coordinates) and ``noise`` one
        resampled log residual. Every interval (the loss at a size, the data needed for a
        loss, the floor ``E``) is read off these same replicates, so they agree.

        Returns:
            ``phi_star`` ``(C, R, p)`` and ``noise`` ``(C, R)``; computed once per
            ``(n_boot, seed)`` and cached.
        """
        key = (n_boot, seed)
        if key not in self._boot:
            phi_star, resid = _engine.bootstrap_params(
                self.law, self.d, self.loss, self.mask, self.raw.phi, self.aux,
                n_boot=n_boot, seed=seed)
            n_curves, n_rep, _ = phi_star.shape
            rng = np.random.default_rng(seed + 1)
            n_pts = self.mask.sum(axis=1)
            pos = np.minimum((rng.random((n_curves, n_rep)) * n_pts[:, None]).astype(int),
                             n_pts[:, None] - 1)
            valid_idx = np.argsort(~self.mask, axis=1, kind="stable")
            noise = np.take_along_axis(resid, np.take_along_axis(valid_idx, pos, axis=1),
                                       axis=1)
            self._boot[key] = (phi_star, noise)
        return self._boot[key]

    def _check_d(self, d: Any) -> np.ndarray:
        d = np.atleast_1d(np.asarray(d, dtype=float))
        if d.ndim != 1 or not np.all(np.isfinite(d)) or np.any(d < self.law.min_size()) or (
            self.law.min_size() > 0 and np.any(d <= 0)
        ):
            raise InputError(f"sizes to predict at must be finite and "
                             f"{'> 0' if self.law.min_size() > 0 else '>= 0'}, got {d.tolist()}")
        return d


@dataclass(frozen=True, eq=False)
class LawFit:
    """The fit of one law to one curve.

    Attributes:
        law_name: ``power``, ``rectified`` or ``lens``.
        params: fitted parameters by name (units of the formulas).
        success: whether the optimiser met its tolerance.
        message: what the optimiser reports.
        n_iter: Levenberg-Marquardt iterations.
        rmse: root mean squared log-space residual.
        n_points: points used.
    """

    batch: BatchFit = field(repr=False)
    index: int = field(repr=False)
    law_name: str
    params: dict[str, float]
    success: bool
    message: str
    n_iter: int
    rmse: float
    n_points: int

    def predict(self, d: np.ndarray) -> np.ndarray:
        """``L(d)`` ``(m,)``."""
        return self.batch.predict(d)[self.index]

    def interval(self, d: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap prediction interval at ``d`` (see :meth:`BatchFit.interval`)."""
        lo, hi = self.batch.interval(d, level)
        return lo[self.index], hi[self.index]

    def report(self) -> str:
        """A few lines of text: parameters, residual, convergence."""
        lines = [f"{self.law_name} law fit ({self.n_points} points): {self.message}"]
        lines += [f"  {k:>6} = {v:.6g}" for k, v in self.params.items()]
        lines.append(f"  log-space RMSE = {self.rmse:.4g}")
        return "\n".join(lines)
