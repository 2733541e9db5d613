"""Option parsing helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

from lensllm.exceptions import CLIUsageError

__all__ = ["parse_number_list", "parse_name_list", "print_json", "positive_number"]


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
    if value is not None and not value > 0:
        raise CLIUsageError(f"{option} must be > 0, got {value:g}")
    return value


def print_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")
