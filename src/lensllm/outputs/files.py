"""Output paths checked up front, and files written atomically and exclusively.

Why: a predictable temporary name (``<out>.tmp``) lets a pre-existing symlink redirect the
write to any file, and ``Path.write_text`` on a FIFO, a device or a symlink writes through
or replaces what the user did not name. Here the temporary file comes from
:func:`tempfile.mkstemp` in the target directory (created with ``O_EXCL``, mode 0600, then
given the usual permissions), is flushed and fsynced, and replaces the target with
:func:`os.replace`, so a reader sees the old file or the new one, never half of one.
Only ``-`` (standard output) writes through, because the user asked for it.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from pathlib import Path

from lensllm.exceptions import OutputError

__all__ = ["STDOUT", "check_output_dir", "check_output_file", "make_dir", "write_bytes",
           "write_text"]

#: The path that means "standard output".
STDOUT = "-"


def _is_stdout(path: str | os.PathLike[str]) -> bool:
    return str(path) == STDOUT


def _existing_ancestor(path: Path) -> Path:
    """The nearest existing ancestor of ``path`` (``path`` itself if it exists)."""
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_parent(path: Path, what: str) -> None:
    """The folder that will hold ``path`` exists or can be created, and is writable."""
    parent = path.parent if str(path.parent) else Path(".")
    base = _existing_ancestor(parent)
    if not base.is_dir():
        raise OutputError(f"{what} '{path}': '{base}' is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} '{path}': folder '{base}' is not writable")


def check_output_file(path: str | os.PathLike[str], what: str = "output",
                      *, allow_stdout: bool = False) -> None:
    """Refuse an output file path before any work starts.

    Refused: a symlink, a FIFO, a device or socket, a folder at ``path``; a parent that is
    a file or is not writable. ``-`` is accepted only with ``allow_stdout``.

    Raises:
        OutputError: one line naming ``what``, the path and the rule.
    """
    if _is_stdout(path):
        if not allow_stdout:
            raise OutputError(f"{what}: '-' (standard output) is not supported here")
        return
    p = Path(path)
    if p.is_symlink():
        raise OutputError(f"{what} '{p}' is a symbolic link; remove it or name a plain file")
    if p.exists():
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode):
            raise OutputError(f"{what} '{p}' is a folder; name a file")
        if not stat.S_ISREG(mode):
            raise OutputError(f"{what} '{p}' is a special file (FIFO, device or socket); "
                              "name a plain file, or '-' for standard output"
                              if allow_stdout else
                              f"{what} '{p}' is a special file (FIFO, device or socket); "
                              "name a plain file")
    _check_parent(p, what)


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> None:
    """Refuse an output folder before any work starts: an existing file or a special file
    at ``path`` or at any ancestor, a symlink at ``path``, or a folder that cannot be
    created or written.

    Raises:
        OutputError: one line naming ``what``, the path and the rule.
    """
    p = Path(path)
    if p.is_symlink() and not p.is_dir():
        raise OutputError(f"{what} '{p}' is a symbolic link to no folder")
    if p.exists():
        if not p.is_dir():
            raise OutputError(f"{what} '{p}' exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputError(f"{what} '{p}' is not writable")
        return
    _check_parent(p, what)


def make_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Check ``path`` with :func:`check_output_dir`, then create it (and its parents)."""
    check_output_dir(path, what)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {what} '{path}': {_reason(exc)}") from None
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, what: str = "output") -> str:
    """Write ``text`` (UTF-8) atomically to ``path``, or to standard output for ``-``.

    Returns:
        The path written, as given (``-`` for standard output).
    """
    if _is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return STDOUT
    write_bytes(path, text.encode("utf-8"), what)
    return str(path)


def write_bytes(path: str | os.PathLike[str], data: bytes, what: str = "output") -> Path:
    """Write ``data`` atomically to ``path`` through an exclusive temporary file.

    Parent folders are created. The target is checked again right before the rename (a
    symlink or special file put there meanwhile is refused, not followed).

    Raises:
        OutputError: the path is refused, or the write failed (full disk, no permission);
            the temporary file is removed and the target is left as it was.
    """
    p = Path(path)
    check_output_file(p, what)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {what} '{p}': {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        check_output_file(p, what)
        os.replace(tmp, p)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write {what} '{p}': {_reason(exc)}") from None
    except BaseException:
        _remove(tmp)
        raise
    return p


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device (disk full)"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return exc.strerror or str(exc)


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
