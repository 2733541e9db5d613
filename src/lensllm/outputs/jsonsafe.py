"""The one JSON policy of lensllm: always valid JSON, non-finite numbers as ``null``.

Why: ``json.dumps`` writes ``Infinity`` and ``NaN`` by default (not JSON: strict parsers
fail), and with ``allow_nan=False`` it raises after part of the output is printed. Here a
non-finite float becomes ``null`` and the dict that held it gains
``"nonfinite": {key: "inf" | "-inf" | "nan"}`` (the reason), so a reader can tell a missing
value from a diverging one. A non-finite float directly inside a list becomes ``null`` (the
enclosing record, if any, names the list). Everything is converted before one byte is
written.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["json_safe", "json_text", "NONFINITE_KEY"]

#: The key under which a record lists its values written as null, with the reason.
NONFINITE_KEY = "nonfinite"


def _word(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _is_float(x: Any) -> bool:
    return isinstance(x, float) or type(x).__name__ in ("float32", "float64", "float16")


def json_safe(value: Any) -> Any:
    """A copy of ``value`` with every non-finite float replaced by ``None`` (see module)."""
    if _is_float(value):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, dict):
        out: dict = {}
        reasons: dict[str, str] = {}
        for key, item in value.items():
            if hasattr(item, "tolist") and not _is_float(item):
                item = item.tolist()
            if _is_float(item) and not math.isfinite(float(item)):
                reasons[str(key)] = _word(float(item))
            elif isinstance(item, (list, tuple)) and any(
                    _is_float(v) and not math.isfinite(float(v)) for v in item):
                reasons[str(key)] = "non-finite entries written as null"
            out[key] = json_safe(item)
        if reasons:
            previous = out.get(NONFINITE_KEY)
            out[NONFINITE_KEY] = {**(previous if isinstance(previous, dict) else {}), **reasons}
        return out
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return json_safe(value.tolist())
    if type(value).__name__.startswith(("int", "uint")) and hasattr(value, "item"):
        return int(value)
    if type(value).__name__ == "bool_":
        return bool(value)
    return value


def json_text(payload: Any, *, indent: int | None = 1) -> str:
    """``payload`` as strict JSON text (ends with a newline), non-finite numbers as null."""
    return json.dumps(json_safe(payload), indent=indent, allow_nan=False) + "\n"
