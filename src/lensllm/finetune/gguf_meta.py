"""The parameter count of a GGUF file, read from its header (no tensor data is read).

A GGUF file (format versions 2 and 3) starts with the magic ``GGUF``, a version, the number
of tensors and of metadata entries, then the metadata (typed key/value pairs, skipped here)
and one record per tensor: its name, its shape and its quantisation type. The parameter count
is the sum over tensors of the product of their dimensions, so ``lensllm select`` can skip a
large candidate before the file is dequantised and loaded. All integers are little-endian.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from lensllm.exceptions import ConfigError

__all__ = ["gguf_parameter_count"]

_MAGIC = b"GGUF"
#: Byte size of each fixed-size metadata value type (8 = string, 9 = array: variable).
_SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def gguf_parameter_count(path: str | Path) -> int:
    """Sum over the tensors of a GGUF file of the product of their dimensions.

    Args:
        path: a ``.gguf`` file.

    Returns:
        The parameter count (tied tensors are stored once, so counted once).

    Raises:
        ConfigError: the file is missing, not GGUF, of an unsupported version, or truncated.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _count(f)
    except OSError as exc:
        raise ConfigError(f"GGUF file '{path}' could not be read: {exc.strerror}") from None
    except (struct.error, _Truncated):
        raise ConfigError(f"GGUF file '{path}' is truncated (header incomplete)") from None
    except ValueError as exc:
        raise ConfigError(f"GGUF file '{path}': {exc}") from None


class _Truncated(Exception):
    pass


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Truncated
    return data


def _u32(f: BinaryIO) -> int:
    return struct.unpack("<I", _read(f, 4))[0]


def _u64(f: BinaryIO) -> int:
    return struct.unpack("<Q", _read(f, 8))[0]


def _skip_value(f: BinaryIO, kind: int) -> None:
    """Skip one metadata value of type ``kind``."""
    if kind in _SCALAR_SIZE:
        _read(f, _SCALAR_SIZE[kind])
    elif kind == _STRING:
        _read(f, _u64(f))
    elif kind == _ARRAY:
        inner, count = _u32(f), _u64(f)
        if inner in _SCALAR_SIZE:
            _read(f, _SCALAR_SIZE[inner] * count)
        else:
            for _ in range(count):
                _skip_value(f, inner)
    else:
        raise ValueError(f"unknown metadata value type {kind}")


def _count(f: BinaryIO) -> int:
    if _read(f, 4) != _MAGIC:
        raise ValueError("not a GGUF file (no 'GGUF' magic)")
    version = _u32(f)
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_kv = _u64(f), _u64(f)
    for _ in range(n_kv):
        _read(f, _u64(f))  # key
        _skip_value(f, _u32(f))
    total = 0
    for _ in range(n_tensors):
        _read(f, _u64(f))  # name
        n_dims = _u32(f)
        numel = 1
        for _ in range(n_dims):
            numel *= _u64(f)
        _read(f, 12)  # quantisation type (u32) and data offset (u64)
        total += numel
    return total
