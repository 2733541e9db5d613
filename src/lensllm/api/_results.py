"""What every result of the Python API shares: its JSON (that of the command's ``--json``)
and a pandas data frame of its records."""

from __future__ import annotations

from typing import Any

from lensllm.outputs import json_text

__all__ = ["Result", "frame"]


class Result:
    """Base of :class:`FitResult`, :class:`PlanResult`, :class:`SelectResult` and
    :class:`BenchResult`: ``to_dict()`` is the JSON value of the command's ``--json``,
    ``to_json()`` its text (byte for byte what the command prints), ``to_frame()`` the
    records as a pandas ``DataFrame`` (pandas is needed for that one method only)."""

    def to_dict(self) -> Any:  # pragma: no cover - every result defines it
        raise NotImplementedError(f"{type(self).__name__}.to_dict")

    def frame_records(self) -> tuple[list[dict[str, Any]], str | None]:
        """The rows of :meth:`to_frame` and the column used as index (None: none)."""
        return self.to_dict(), "model"

    def to_json(self) -> str:
        """The JSON text of the command's ``--json`` (non-finite numbers as null, named
        under ``nonfinite``: the one JSON policy of :mod:`lensllm.outputs`)."""
        return json_text(self.to_dict())

    def to_frame(self):
        """The records as a pandas ``DataFrame`` (one row per record; nested values kept
        as objects). Raises ImportError naming pandas when it is not installed."""
        rows, index = self.frame_records()
        return frame(rows, index)


def frame(rows: list[dict[str, Any]], index: str | None):
    """A pandas ``DataFrame`` of ``rows`` indexed by ``index`` (lazy pandas import)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("to_frame() needs pandas: pip install pandas") from exc
    df = pd.DataFrame.from_records(rows)
    if index is not None and index in df.columns:
        df = df.set_index(index)
    return df
