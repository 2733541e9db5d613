"""What every report module shares: matplotlib, imported lazily with the Agg backend."""

from __future__ import annotations

import io
from pathlib import Path

from lensllm.outputs import write_bytes

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed)."""
    import matplotlib

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
