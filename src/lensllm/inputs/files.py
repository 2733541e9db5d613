"""Input files checked before they are read, and decoded with errors that say where.

Why: ``Path.read_text()`` on ``/dev/zero`` reads until memory runs out, on a FIFO it
blocks, and an undecodable byte gives a traceback without the line. A JSON string may
also hold a lone surrogate (``"\\ud800"``): Python accepts it, but it cannot be encoded
as UTF-8, so it passes every check and fails later in a tokenizer, once per run. Here
an input must be a regular file (or a folder where a folder is allowed), text is decoded
as strict UTF-8 (a BOM is dropped) and an error names the file, the line and the byte.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lensllm.exceptions import InputError

__all__ = ["check_input_path", "check_text", "decode_text", "read_lines", "read_text"]

_BOM = "\ufeff"


def check_input_path(path: str | os.PathLike[str], what: str, *, folder_ok: bool = False,
                     error: type[Exception] = InputError) -> Path:
    """Refuse an input path that is missing or not a regular file (nor, with ``folder_ok``,
    a folder): a FIFO, a character or block device, a socket.

    Args:
        path: the path as given (a symlink is followed: what it points at is checked).
        what: what the path is, for the message (``"--table"``, ``"data file"``).
        folder_ok: a folder is accepted too.
        error: the exception class to raise (a subclass of :class:`InputError` or
            another :class:`~lensllm.exceptions.LensLLMError`).

    Returns:
        The path.

    Raises:
        error: one line naming ``what``, the path and the rule.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise error(f"{what} '{p}' does not exist") from None
    except OSError as exc:
        raise error(f"{what} '{p}' cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return p
    if stat.S_ISDIR(mode):
        raise error(f"{what} '{p}' is a folder; name a file")
    raise error(f"{what} '{p}' is a special file (FIFO, device or socket), not a regular "
                "file; refusing to read it")


def decode_text(data: bytes, source: str, *, error: type[Exception] = InputError) -> str:
    """``data`` decoded as strict UTF-8 (a leading BOM dropped).

    Raises:
        error: an invalid byte, naming ``source``, the line and the byte's offset (in the
            file and in the line), and the byte itself.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        col = start - (data.rfind(b"\n", 0, start) + 1)
        raise error(f"{source}, line {line}: byte {data[start]:#04x} at byte {start} of the "
                    f"file (byte {col + 1} of the line) is not UTF-8 ({exc.reason}); "
                    "save the file as UTF-8") from None
    return text[1:] if text.startswith(_BOM) else text


def read_text(path: str | os.PathLike[str], what: str, *,
              error: type[Exception] = InputError) -> str:
    """The text of a regular file, decoded as UTF-8 (see :func:`decode_text`).

    Raises:
        error: the path is refused by :func:`check_input_path`, cannot be read, or is not
            UTF-8; the message names the file (and the line and byte of a bad byte).
    """
    p = check_input_path(path, what, error=error)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{what} '{p}' cannot be read: {exc.strerror or exc}") from None
    return decode_text(data, f"{what} '{p}'", error=error)


def read_lines(path: str | os.PathLike[str], what: str, *,
               error: type[Exception] = InputError) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, 1-based, line ends kept."""
    text = read_text(path, what, error=error)
    yield from enumerate(text.splitlines(keepends=True), start=1)


def check_text(value: Any, where: str, *, error: type[Exception] = InputError) -> None:
    """Refuse a lone surrogate in any string of ``value`` (a string, or lists and dicts
    of them, keys included): such a string cannot be encoded as UTF-8.

    Raises:
        error: naming ``where``, the field path and the character's position.
    """
    _check(value, where, "", error)


def _check(value: Any, where: str, at: str, error: type[Exception]) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            field = f" field {at}" if at else ""
            raise error(f"{where}:{field} character {exc.start + 1} is a lone surrogate "
                        f"({value[exc.start]!r}), which is not text (no UTF-8 encoding)"
                        ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, where, at or "(a key)", error)
            _check(item, where, f"{at}.{key}" if at else f"'{key}'", error)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, where, f"{at}[{i}]" if at else f"[{i}]", error)
