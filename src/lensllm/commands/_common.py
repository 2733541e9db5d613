"""Option parsing helpers shared by the subcommands."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lensllm.exceptions import CLIUsageError, LensLLMError
from lensllm.outputs import json_text

__all__ = ["as_option_error", "check_seed", "check_threads", "parse_number_list", "parse_name_list", "print_json",
           "positive_number"]


def parse_number_list(text: str, option: str) -> list[float]:
    """``"8,16,32"`` to numbers; a clear error naming ``option`` otherwise."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(float(part))
        except ValueError:
            raise CLIUsageError(f"{option}: {part!r} is not a number (expected e.g. "
                                f"{option} 8,16,32)") from None
        if not math.isfinite(values[-1]):
            raise CLIUsageError(f"{option}: {part!r} is not a finite number")
    if not values:
        raise CLIUsageError(f"{option}: empty list")
    return values


def parse_name_list(text: str, option: str, allowed: list[str]) -> list[str]:
    """``"a,b"`` to names, each checked against ``allowed``."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise CLIUsageError(f"{option}: empty list")
    for name in names:
        if name not in allowed:
            raise CLIUsageError(f"{option}: unknown name {name!r}; choose from "
                                f"{', '.join(allowed)}")
    return names


def positive_number(value: float | None, option: str) -> float | None:
    """``value`` if it is a finite number > 0 (or None); a clear error naming ``option``."""
    if value is not None and not 0 < value < math.inf:
        raise CLIUsageError(f"{option} must be a finite number > 0, got {value:g}")
    return value


def check_threads(value: int | None, option: str) -> int | None:
    """``value`` if it is between 1 and the machine's CPU count (or None)."""
    from lensllm.finetune.config import max_threads

    if value is not None and not 1 <= value <= max_threads():
        raise CLIUsageError(f"{option} must be between 1 and {max_threads()} (this machine's "
                            f"CPU count), got {value}")
    return value


def check_seed(value: int, option: str) -> int:
    """``value`` if it is a valid seed, an integer in [0, 2**32)."""
    from lensllm.finetune.config import MAX_SEED

    if not 0 <= value <= MAX_SEED:
        raise CLIUsageError(f"{option} must be an integer in [0, {MAX_SEED}], got {value}")
    return value


def print_json(payload: Any) -> None:
    """``payload`` on standard output as strict JSON (the one policy of
    :func:`lensllm.outputs.json_text`: non-finite numbers as null, with the reason)."""
    sys.stdout.write(json_text(payload))


@contextmanager
def as_option_error(options: dict[str, str]) -> Iterator[None]:
    """Re-raise a library error whose message names an argument (```max_data```) as a
    :class:`CLIUsageError` naming the option that sets it (``--max-data``)."""
    try:
        yield
    except LensLLMError as exc:
        text = str(exc)
        hits = [name for name in options if name in text]
        if not hits:
            raise
        for name in sorted(hits, key=len, reverse=True):
            text = text.replace(name, options[name])
        raise CLIUsageError(text) from None
