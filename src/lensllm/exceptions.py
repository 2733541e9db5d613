"""The exception hierarchy of lensllm.

Every error a user can cause derives from :class:`LensLLMError`; the CLI prints its message
on one stderr line and exits with status 2. Messages name the thing at fault (the row and
column of a table, the option, the config key) and the rule it broke.
"""

from __future__ import annotations

import warnings

__all__ = [
    "LensLLMError",
    "InputError",
    "TableError",
    "ConfigError",
    "NotFittedError",
    "FitError",
    "StoreError",
    "OutputError",
    "CLIUsageError",
    "TrainingDiverged",
    "FitWarning",
]


class LensLLMError(Exception):
    """Base class of every error lensllm raises on purpose."""


class InputError(LensLLMError, ValueError):
    """Bad input data or arguments (a value out of range, a wrong shape)."""


class TableError(InputError):
    """A loss table that cannot be used; the message names the row and column."""


class ConfigError(InputError):
    """A bad run or selection config; the message names the key or file."""


class NotFittedError(LensLLMError, ValueError, AttributeError):
    """``predict`` or an attribute of a fit was used before ``fit``."""


class FitError(LensLLMError, ValueError):
    """A fit that cannot be attempted (for example fewer points than free parameters)."""


class StoreError(LensLLMError):
    """The experiment store cannot be opened, read or written."""


class OutputError(LensLLMError):
    """An output path that cannot be written (a symlink, a special file, a file where a
    folder is needed, no permission, a full disk); the message names the path."""


class CLIUsageError(LensLLMError):
    """A command-line option is missing, malformed or conflicts with another."""


class TrainingDiverged(LensLLMError):
    """A fine-tuning run whose loss became non-finite; the run is recorded as failed."""


class FitWarning(UserWarning):
    """A fit finished without converging; its result has ``success=False``."""


def warn_fit(message: str) -> None:
    """Emit a :class:`FitWarning` pointing at the caller's caller."""
    warnings.warn(message, FitWarning, stacklevel=3)
