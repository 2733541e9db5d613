"""The rectified law of Lin et al. (ICML 2024), ``L = B / (D_l + D**beta) + E``."""

from __future__ import annotations

import numpy as np

from lensllm.laws._base import BaseLaw, Param
from lensllm.laws._formulas import transition_size

__all__ = ["RectifiedLaw", "signed_power_and_log", "pre_power_inverse"]


def signed_power_and_log(d: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``d**beta`` and ``d**beta * log d``, both exactly 0 at ``d = 0`` (for ``beta > 0``)."""
    pos = d > 0
    log_d = np.log(np.where(pos, d, 1.0))
    dpow = np.where(pos, np.exp(beta * log_d), 0.0)
    return dpow, dpow * log_d


def pre_power_inverse(x: np.ndarray, offset: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """The ``D`` with ``1 / (offset + D**beta) = x``: ``(1/x - offset)**(1/beta)``.

    Shared by the rectified law (``offset = D_l``) and the LensLLM law (``offset = F``).
    Where ``1/x <= offset`` the curve is already at or below that level at ``D = 0``: 0.
    """
    with np.errstate(divide="ignore", over="ignore"):
        gap = 1.0 / x - offset
        pos = gap > 0
        return np.where(pos, np.exp(np.log(np.where(pos, gap, 1.0)) / beta), 0.0)


class RectifiedLaw(BaseLaw):
    """``L(D) = B / (D_l + D**beta) + E``, defined at ``D = 0`` (the zero-shot loss
    ``B / D_l + E``), fitted in log space.

    Internal coordinates: ``beta`` and ``log D_l``. Bounds: ``0.01 <= beta <= 4``,
    ``e**-20 <= D_l <= e**60``, ``B > 0``, ``0 <= E <= min L``.
    """

    name = "rectified"
    param_names = ("B", "D_l", "beta", "E")

    def theta_params(self) -> tuple[Param, ...]:
        return (Param("beta", 0.01, 4.0), Param("D_l", -20.0, 60.0, log=True))

    def grid(self, aux):
        beta = np.geomspace(0.02, 3.0, 24)
        log_dl = np.linspace(-6.0, 50.0, 36)
        b, c = np.meshgrid(beta, log_dl, indexing="ij")
        return np.column_stack([b.ravel(), c.ravel()])

    def basis(self, d, theta, aux):
        dpow, _ = signed_power_and_log(d, theta[..., 0:1])
        return 1.0 / (np.exp(theta[..., 1:2]) + dpow)

    def basis_jac(self, d, theta, aux):
        dpow, dpow_log = signed_power_and_log(d, theta[..., 0:1])
        d_l = np.exp(theta[..., 1:2])
        x = 1.0 / (d_l + dpow)
        x2 = x * x
        return np.stack([-x2 * dpow_log, -x2 * d_l], axis=-1)

    def basis_and_jac(self, d, theta, aux):
        dpow, dpow_log = signed_power_and_log(d, theta[..., 0:1])
        d_l = np.exp(theta[..., 1:2])
        x = 1.0 / (d_l + dpow)
        x2 = x * x
        return x, np.stack([-x2 * dpow_log, -x2 * d_l], axis=-1)

    def basis_inverse(self, x, theta, aux):
        """``1 / (D_l + D**beta) = x``: ``D = (1/x - D_l)**(1/beta)``, 0 if ``1/x <= D_l``."""
        return pre_power_inverse(x, np.exp(theta[..., 1]), theta[..., 0])

    def user_params(self, phi, aux):
        return {"B": np.exp(phi[:, 2]), "D_l": np.exp(phi[:, 1]), "beta": phi[:, 0],
                "E": phi[:, 3]}

    def transition(self, params):
        """``D**beta = D_l``: where the free pre-learned size stops dominating."""
        return transition_size(params["D_l"], params["beta"])
