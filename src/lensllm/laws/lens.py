"""The LensLLM law (Zeng et al., ICML 2025), ``L = B / (F(Theta, t) + D**beta) + E``.

``F(Theta, t) = sum_k exp(-2 eta lambda_k t) (u_k^T r0)**2`` is the loss that the model's
empirical neural tangent kernel predicts after ``t`` optimizer steps at learning rate ``eta``
(docs/design.md, section 1; features from :mod:`lensllm.ntk`). It replaces the rectified law's free
pre-learned size ``D_l``: the kernel, not a free constant, sets where the pre-power phase
ends. ``t`` is either fixed per curve (the run's step count) or fitted within bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lensllm.exceptions import InputError
from lensllm.laws._base import BaseLaw, Param
from lensllm.laws._formulas import transition_size
from lensllm.laws.rectified import pre_power_inverse, signed_power_and_log

__all__ = ["LensLaw", "ntk_loss"]


def ntk_loss(t: np.ndarray, eigenvalues: np.ndarray, proj_sq: np.ndarray,
             eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``F(t)`` and ``t * dF/dt``, broadcasting ``t`` ``(...)`` against spectra ``(..., q)``.

    Args:
        t: training steps.
        eigenvalues: kernel eigenvalues ``lambda_k`` (last axis ``q``).
        proj_sq: ``(u_k^T r0)**2`` (last axis ``q``).
        eta: learning rate, broadcastable to ``t``.
    """
    rate = 2.0 * np.asarray(eta)[..., None] * eigenvalues * np.asarray(t)[..., None]
    decay = proj_sq * np.exp(-rate)
    return decay.sum(-1), -(decay * rate).sum(-1)


class LensLaw(BaseLaw):
    """``L(D) = B / (F(Theta, t) + D**beta) + E`` with ``F`` from an NTK spectrum.

    Args:
        fit_t: fit ``t`` within ``t_bounds`` (default); if False, ``t`` is given per curve.
        t_bounds: bounds of the fitted ``t`` in optimizer steps.

    Inputs of :meth:`fit_many`: ``spectra`` (one per curve, objects with ``eigenvalues``,
    ``proj_sq`` and ``eta``, such as :class:`lensllm.ntk.spectrum.NTKSpectrum`) and, when
    ``fit_t`` is False, ``t`` (per curve). :meth:`fit` takes ``spectrum=`` and ``t=``.
    """

    name = "lens"
    param_names = ("B", "beta", "E", "t", "F")
    single_curve_inputs = {"spectrum": "spectra"}

    def __init__(self, *, fit_t: bool = True, t_bounds: tuple[float, float] = (1.0, 1e6),
                 n_starts: int = 4, max_iter: int = 200) -> None:
        super().__init__(n_starts=n_starts, max_iter=max_iter)
        if not (0 < t_bounds[0] < t_bounds[1] and np.isfinite(t_bounds[1])):
            raise InputError(f"`t_bounds` must satisfy 0 < lower < upper < inf, got {t_bounds}")
        self.fit_t = fit_t
        self.t_bounds = (float(t_bounds[0]), float(t_bounds[1]))

    def theta_params(self) -> tuple[Param, ...]:
        beta = Param("beta", 0.01, 4.0)
        if not self.fit_t:
            return (beta,)
        return (beta, Param("t", np.log(self.t_bounds[0]), np.log(self.t_bounds[1]), log=True))

    def prepare_aux(self, n_curves: int, *, spectra: Sequence[Any] | None = None,
                    t: Any = None) -> dict[str, np.ndarray]:
        if spectra is None or len(spectra) != n_curves:
            raise InputError(f"the lens law needs `spectra`, one NTK spectrum per curve "
                             f"({n_curves}), got {0 if spectra is None else len(spectra)}")
        q = max(len(np.atleast_1d(s.eigenvalues)) for s in spectra)
        eig = np.zeros((n_curves, q))
        proj = np.zeros((n_curves, q))
        eta = np.zeros(n_curves)
        for i, s in enumerate(spectra):
            lam = np.asarray(s.eigenvalues, float)
            pr = np.asarray(s.proj_sq, float)
            if lam.shape != pr.shape or lam.ndim != 1:
                raise InputError(f"spectrum {i}: eigenvalues and proj_sq must be 1-D of one "
                                 f"length, got {lam.shape} and {pr.shape}")
            if not (np.all(np.isfinite(lam)) and np.all(np.isfinite(pr)) and np.all(pr >= 0)):
                raise InputError(f"spectrum {i}: eigenvalues and proj_sq must be finite, "
                                 f"proj_sq >= 0")
            if s.eta is None or not s.eta > 0:
                raise InputError(f"spectrum {i}: the learning rate `eta` must be > 0, got "
                                 f"{s.eta}")
            eig[i, : lam.size], proj[i, : pr.size], eta[i] = np.maximum(lam, 0.0), pr, s.eta
        aux = {"eig": eig, "proj": proj, "eta": eta}
        if self.fit_t:
            if t is not None:
                raise InputError("`t` is fitted (fit_t=True); do not pass `t`")
            return aux
        if t is None:
            raise InputError("fit_t=False needs `t`, the optimizer steps of each curve's run")
        t = np.broadcast_to(np.asarray(t, float), (n_curves,))
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise InputError(f"`t` must be finite and >= 0, got {t.tolist()}")
        f, _ = ntk_loss(t, eig, proj, eta)
        if np.any(f <= 0):
            raise InputError("F(Theta, t) is 0 for some curve (all residual decayed): the lens "
                             "law needs F > 0")
        return {"f": f, "t": t.copy(), **aux}

    def grid(self, aux):
        beta = np.geomspace(0.02, 3.0, 24)
        if not self.fit_t:
            return beta[:, None]
        log_t = np.linspace(np.log(self.t_bounds[0]), np.log(self.t_bounds[1]), 24)
        b, c = np.meshgrid(beta, log_t, indexing="ij")
        return np.column_stack([b.ravel(), c.ravel()])

    def _f(self, theta, aux):
        if not self.fit_t:
            return aux["f"][..., None], None
        t = np.exp(theta[..., 1])
        f, t_df = ntk_loss(t, aux["eig"], aux["proj"], aux["eta"])
        return f[..., None], t_df[..., None]

    def basis(self, d, theta, aux):
        dpow, _ = signed_power_and_log(d, theta[..., 0:1])
        f, _ = self._f(theta, aux)
        return 1.0 / (f + dpow)

    def basis_jac(self, d, theta, aux):
        dpow, dpow_log = signed_power_and_log(d, theta[..., 0:1])
        f, t_df = self._f(theta, aux)
        x2 = 1.0 / (f + dpow) ** 2
        cols = [-x2 * dpow_log]
        if self.fit_t:
            cols.append(-x2 * t_df)
        return np.stack(np.broadcast_arrays(*cols), axis=-1)

    def basis_inverse(self, x, theta, aux):
        """``1 / (F + D**beta) = x``: ``D = (1/x - F)**(1/beta)``, 0 if ``1/x <= F``."""
        f, _ = self._f(theta, aux)
        return pre_power_inverse(x, f[..., 0], theta[..., 0])

    def user_params(self, phi, aux):
        k = len(self.theta_params())
        if self.fit_t:
            t = np.exp(phi[:, 1])
            f, _ = ntk_loss(t, aux["eig"], aux["proj"], aux["eta"])
        else:
            t, f = aux["t"], aux["f"]
        return {"B": np.exp(phi[:, k]), "beta": phi[:, 0], "E": phi[:, k + 1], "t": t, "F": f}

    def transition(self, params):
        """``D**beta = F(Theta, t)``: where the kernel's predicted loss stops dominating."""
        return transition_size(params["F"], params["beta"])
