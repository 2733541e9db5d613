"""What every report module shares: matplotlib (imported lazily with the Agg backend), the
panel grid and short model names."""

from __future__ import annotations

import io
from pathlib import Path

from lensllm.outputs import write_bytes

__all__ = ["MAX_PANELS", "panels", "pyplot", "save_figure", "short_name", "top_panels"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed).

    Font-fallback messages are silenced: where the Computer Modern fonts of math text are
    not installed matplotlib draws with DejaVu Sans and says so once per glyph family, which
    filled ``lensllm demo``'s output with 21 warnings about nothing the user can act on."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, *, dpi: int) -> Path:
    """Render ``fig`` as PNG and write it atomically to ``path``; the figure is closed."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        pyplot().close(fig)
    return write_bytes(path, buf.getvalue(), "plot")


#: The most panels a figure of per-model curves shows (a readable page; a 10,000-panel
#: figure needs gigabytes).
MAX_PANELS = 24


def top_panels(ranking, n_models: int, limit: int = MAX_PANELS) -> tuple[list[int], str]:
    """The models to draw (the best ``limit`` by ``ranking``, else all in table order) and a
    note saying how many were left out ("" when none)."""
    if n_models <= limit:
        return list(range(n_models)), ""
    order = list(ranking) if ranking is not None else list(range(n_models))
    return ([int(i) for i in order[:limit]],
            f" (top {limit} of {n_models} candidates shown)")


def panels(axes, shown, cols: int):
    """Yield ``(slot, axis, candidate index)`` for each shown candidate of a ``rows x cols``
    grid of axes, filled row by row (``slot`` counts the panels), and switch the axes left
    over off."""
    for k, row in enumerate(axes):
        for j, ax in enumerate(row):
            slot = k * cols + j
            if slot >= len(shown):
                ax.axis("off")
                continue
            yield slot, ax, shown[slot]


def short_name(model: str) -> str:
    """A model id's last path component (``./zoo/gpt2-d48`` -> ``gpt2-d48``)."""
    return Path(model.rstrip("/")).name or model
