"""The power law with a floor, ``L = A * D**-alpha + E`` (VanillaFit in the papers)."""

from __future__ import annotations

import numpy as np

from lensllm.laws._base import BaseLaw, Param

__all__ = ["PowerLaw"]


class PowerLaw(BaseLaw):
    """``L(D) = A * D**-alpha + E``, fitted in log space; undefined at ``D = 0``.

    Bounds: ``1e-4 <= alpha <= 4``, ``A > 0``, ``0 <= E <= min L``.
    """

    name = "power"
    param_names = ("A", "alpha", "E")

    def theta_params(self) -> tuple[Param, ...]:
        return (Param("alpha", 1e-4, 4.0),)

    def min_size(self) -> float:
        return np.nextafter(0.0, 1.0)

    def grid(self, aux):
        return np.geomspace(1e-3, 3.0, 64)[:, None]

    def basis(self, d, theta, aux):
        return np.power(d, -theta[..., 0:1])

    def basis_jac(self, d, theta, aux):
        x = self.basis(d, theta, aux)
        return (-x * np.log(d))[..., None]

    def basis_and_jac(self, d, theta, aux):
        x = self.basis(d, theta, aux)
        return x, (-x * np.log(d))[..., None]

    def basis_inverse(self, x, theta, aux):
        """``D**-alpha = x``: ``D = x**(-1 / alpha)``."""
        with np.errstate(over="ignore", divide="ignore"):
            return np.exp(-np.log(x) / theta[..., 0])

    def user_params(self, phi, aux):
        return {"A": np.exp(phi[:, 1]), "alpha": phi[:, 0], "E": phi[:, 2]}
