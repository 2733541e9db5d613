"""The one check that an output of a command is none of its inputs.

Why: ``lensllm export --store s.sqlite --out s.sqlite`` replaced the store with the table,
and ``lensllm ntk --out d.jsonl --data d.jsonl`` the task data: each command checked its
output path for being writable, not for being what it reads. Here every output path (a
file or a folder) is resolved (symlinks in it followed) and refused, before any work,
when it is an input of the same command, or the same file under another name (a hard
link), or one of a store's own files (``-wal``, ``-shm``, ``-journal``); outputs are also
kept apart from one another.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from lensllm.exceptions import OutputError

__all__ = ["STORE_SIDE_FILES", "check_apart"]

#: Files SQLite keeps beside a store ``X``: ``X-wal``, ``X-shm``, ``X-journal``.
STORE_SIDE_FILES = ("-wal", "-shm", "-journal")

PathLike = str | os.PathLike[str]


def _identity(path: str) -> tuple[str, tuple[int, int] | None]:
    """The resolved path, and the file's ``(device, inode)`` when it exists."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real, None
    return real, (st.st_dev, st.st_ino)


def _input_files(inputs: Mapping[str, PathLike | None], stores: Iterable[str]
                 ) -> list[tuple[str, str, str, tuple[int, int] | None]]:
    """``(key, what, resolved path, identity)`` of every input file, store side files
    included."""
    stores = set(stores)
    out = []
    for key, path in inputs.items():
        if path is None or str(path) in ("", "-", ":memory:"):
            continue
        names = [(key, str(path))]
        if key in stores:
            names += [(f"{key} (its {suffix[1:]} file)", f"{path}{suffix}")
                      for suffix in STORE_SIDE_FILES]
        for what, name in names:
            real, ident = _identity(name)
            out.append((key, what, real, ident))
    return out


def check_apart(outputs: Mapping[str, PathLike | None],
                inputs: Mapping[str, PathLike | None], *,
                stores: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output that is (or links to) an input or another output.

    Args:
        outputs: option or role -> output path (a file or a folder); None and ``-``
            (standard output) are skipped.
        inputs: option or role -> input path (None skipped). A path under the same key in
            both maps (a store a command reads and writes) is not compared with itself.
        stores: keys of ``inputs`` and ``outputs`` that are SQLite stores: their ``-wal``,
            ``-shm`` and ``-journal`` files count as inputs too.

    Raises:
        OutputError: one line naming the output, the input and the path.
    """
    stores = list(stores)
    every = _input_files({**inputs, **{k: v for k, v in outputs.items() if k not in inputs}},
                         stores)
    for key, path in outputs.items():
        if path is None or str(path) in ("", "-", ":memory:"):
            continue
        real, ident = _identity(str(path))
        for other, what, other_real, other_ident in every:
            if other == key:
                continue
            same = real == other_real or (ident is not None and ident == other_ident)
            if same:
                kind = "input" if other in inputs else "output"
                link = "" if real == other_real else " (the same file under another name)"
                raise OutputError(
                    f"{key} '{path}' is the {kind} {what} '{Path(other_real)}'{link}; "
                    "an output never replaces what the command reads: name another path")
