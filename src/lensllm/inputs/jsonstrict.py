"""JSON parsed strictly: every number is a finite float64, or the error says where.

Why: Python's ``json`` reads ``NaN`` and ``Infinity`` (not JSON), turns ``1e400`` into
``inf`` and ``1`` followed by 400 zeros into an int that numpy cannot convert
(``OverflowError`` deep inside a computation). Here each of them is an error naming the
source and the line, before the value is used.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lensllm.exceptions import InputError

__all__ = ["loads_strict"]


class _Bad(ValueError):
    pass


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"the number {text[:40]}{'...' if len(text) > 40 else ''} overflows a "
                   "64-bit float")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 308:  # beyond float64 (1.8e308), whatever it is used for
        raise _Bad(f"the integer {text[:20]}... ({len(text.lstrip('-'))} digits) overflows "
                   "a 64-bit float")
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise _Bad(f"the integer {text[:20]}... overflows a 64-bit float") from None
    return value


def _constant(text: str) -> Any:
    raise _Bad(f"{text} is not a JSON number (JSON has no NaN or Infinity)")


def loads_strict(text: str, source: str, *, error: type[Exception] = InputError) -> Any:
    """Parse JSON ``text``; ``source`` names it in errors.

    Raises:
        error: invalid JSON, ``NaN``/``Infinity``, or a number beyond float64; one line
            naming ``source`` and the line.
    """
    try:
        return json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except _Bad as exc:
        raise error(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg})") from None
    except (RecursionError, ValueError) as exc:  # deep nesting, int digits limit
        raise error(f"{source}: not valid JSON ({exc})") from None
