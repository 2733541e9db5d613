"""The scaling-law formulas as pure, vectorised functions.

All take the data size ``d`` (number of fine-tuning examples, ``d >= 0``) and return the
predicted test loss. They broadcast like numpy ufuncs. ``d = 0`` means no fine-tuning (the
zero-shot loss): there ``d ** beta`` is 0 for ``beta > 0``, which is what the rectified and
LensLLM laws need; the power law is infinite at ``d = 0`` and is never evaluated there.
"""

from __future__ import annotations

import numpy as np

__all__ = ["power_loss", "rectified_loss", "lens_loss", "transition_size"]


def power_loss(d, a, alpha, e):
    """Power law with a floor: ``L(D) = A * D**-alpha + E`` (VanillaFit).

    Args:
        d: data sizes, ``> 0``.
        a: scale ``A > 0``.
        alpha: exponent ``alpha > 0``.
        e: the loss with unlimited data, ``E >= 0``.
    """
    return a * np.power(np.asarray(d, dtype=float), -np.asarray(alpha, dtype=float)) + e


def rectified_loss(d, b, d_l, beta, e):
    """Rectified law of Lin et al. (ICML 2024): ``L(D) = B / (D_l + D**beta) + E``.

    ``D_l`` is the "pre-learned data size": for ``D**beta << D_l`` the curve is flat (the
    pre-power phase), for ``D**beta >> D_l`` it is the power law ``B * D**-beta + E``.
    """
    return b / (d_l + np.power(np.asarray(d, dtype=float), beta)) + e


def lens_loss(d, b, f, beta, e):
    """LensLLM law (Zeng et al., ICML 2025): ``L(D) = B / (F(Theta, t) + D**beta) + E``.

    ``f`` is the NTK-predicted loss ``F(Theta, t)`` (see :class:`lensllm.ntk.spectrum.NTKSpectrum`);
    it takes the place of the rectified law's free ``D_l``.
    """
    return b / (f + np.power(np.asarray(d, dtype=float), beta)) + e


def transition_size(d_l, beta):
    """Data size where the pre-power phase gives way to the power phase: ``D**beta = D_l``.

    Below it the denominator is dominated by ``D_l`` (or ``F``) and the curve is flat in
    log-log; above it the curve is a straight line of slope ``-beta``.
    """
    with np.errstate(divide="ignore", over="ignore"):
        return np.power(np.asarray(d_l, dtype=float), 1.0 / np.asarray(beta, dtype=float))
