"""Losses written for a reader: four decimals, and significant digits where four decimals
would read ``0.0000``.

A task the candidates learn almost perfectly (a label to copy, a format to follow) ends
with losses of ``1e-3`` nats per token and below; ``0.0007`` and ``0.0001`` are then a
factor of seven apart, and an interval ``[0.0000, 0.0007]`` hides its lower end. Below
``0.01`` a loss is written with three significant digits (``0.000712``, ``1.2e-05``).
"""

from __future__ import annotations

import math

__all__ = ["interval_text", "loss_text"]


def loss_text(x: float | None) -> str:
    """``x`` as shown in tables and progress lines: ``-`` for None or NaN, ``inf`` for
    infinity, ``.4f`` from 0.01 up, three significant digits below."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or abs(x) >= 0.01:
        return f"{x:.4f}"
    return f"{x:.3g}"


def interval_text(lower: float | None, upper: float | None) -> str:
    """An interval of losses, ``[lower, upper]`` each as :func:`loss_text` writes it; ``-``
    when there is none (``lower`` is None)."""
    return "-" if lower is None else f"[{loss_text(lower)}, {loss_text(upper)}]"
