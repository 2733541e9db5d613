"""Selection metrics, as defined for the published tables (fractions, not percent)."""

from __future__ import annotations

import numpy as np

__all__ = ["pearson_corr", "rel_acc", "log_rmse", "coverage"]


def pearson_corr(score: np.ndarray, true_loss: np.ndarray) -> float | None:
    """PearCorr: Pearson correlation of a method's per-model score with the true ``L(D*)``.

    ``r = sum((s - s_mean)(y - y_mean)) / sqrt(sum((s - s_mean)**2) sum((y - y_mean)**2))``.
    None when either side is constant (the correlation is undefined).
    """
    s = np.asarray(score, float)
    y = np.asarray(true_loss, float)
    sc, yc = s - s.mean(), y - y.mean()
    denom = np.sqrt((sc * sc).sum() * (yc * yc).sum())
    if not np.isfinite(denom) or denom == 0:
        return None
    return float((sc * yc).sum() / denom)


def rel_acc(selected: int, true_loss: np.ndarray) -> float:
    """RelAcc: ``(L_worst - L_selected) / (L_worst - L_best)`` with true losses at ``D*``.

    1 picks the best model, 0 the worst.
    """
    y = np.asarray(true_loss, float)
    span = y.max() - y.min()
    return 1.0 if span == 0 else float((y.max() - y[selected]) / span)


def log_rmse(predicted: np.ndarray, true_loss: np.ndarray) -> float:
    """Root mean squared error of ``log L`` predictions: ``sqrt(mean((log p - log y)**2))``."""
    p = np.asarray(predicted, float)
    y = np.asarray(true_loss, float)
    return float(np.sqrt(np.mean((np.log(p) - np.log(y)) ** 2)))


def coverage(lower: np.ndarray, upper: np.ndarray, true_loss: np.ndarray) -> float:
    """Fraction of models whose interval ``[lower, upper]`` contains the true loss."""
    y = np.asarray(true_loss, float)
    return float(np.mean((np.asarray(lower) <= y) & (y <= np.asarray(upper))))
