"""A second natural-language downstream task, offline and larger: say what a line of code is for.

The docstring task (:mod:`lensllm.zoo.docstrings`) has about 1.1k examples, too few for a
target size ``D*`` of several thousand. The standard library's sources have more natural
language in them: the comments. Each example pairs a line of code with the first sentence of
the comment block right above it, e.g. ``{"source": "if y is not x:\\n#", "target": " If is
its own copy, don't memoize."}``: the model reads the code and writes the comment.

Only the sources that ship with CPython are read (no tests, GUI or vendored packages), so
the task builds offline; its examples depend on the Python version, which the benchmark
records. Unlike the docstrings, the comments are not in the zoo's pretraining text.
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

from lensllm.zoo._draw import draw_nested

__all__ = ["comment_pairs", "make_comment_task"]

#: Folders of the standard library left out: tests, GUI, vendored or build-only code.
_SKIP_DIRS = frozenset({"test", "tests", "idlelib", "tkinter", "lib2to3", "site-packages",
                        "ensurepip", "turtledemo", "__pycache__", "distutils"})
#: Comment openings that are markers, not prose.
_MARKERS = ("xxx", "todo", "noqa", "type:", "pragma", "copyright", "-*-", "fixme", "!", "http")
_CODE_CHARS = (6, 100)
_SENTENCE_CHARS = (15, 140)
#: Prose: three words in a row, the second and third lower case.
_PROSE = re.compile(r"[A-Za-z]{3} [a-z]{2,} [a-z]{2}")


def _source_files() -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in lib.rglob("*.py")
                  if not set(p.relative_to(lib).parts[:-1]) & _SKIP_DIRS)


def _pairs_of(lines: list[str]) -> list[tuple[str, str]]:
    """``(code line, first comment sentence)`` for each comment block of one file that is
    directly followed by a line of code."""
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip().startswith("#"):
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].strip().startswith("#"):
            block.append(lines[i].strip().lstrip("#").strip())
            i += 1
        if i == len(lines):
            break
        code = lines[i].strip()
        text = " ".join(b for b in block if b)
        sentence = re.split(r"(?<=[.!?])\s", text)[0]
        if (_CODE_CHARS[0] <= len(code) <= _CODE_CHARS[1]
                and _SENTENCE_CHARS[0] <= len(sentence) <= _SENTENCE_CHARS[1]
                and _PROSE.search(sentence) and not sentence.lower().startswith(_MARKERS)):
            out.append((code, sentence))
    return out


def comment_pairs() -> list[tuple[str, str]]:
    """Every ``(code line, comment sentence)`` of the standard library's sources, a
    sentence kept once (its first occurrence, files in sorted order)."""
    pairs, seen = [], set()
    for path in _source_files():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):  # a file that is not UTF-8 text is skipped
            continue
        for code, sentence in _pairs_of(lines):
            if sentence not in seen:
                seen.add(sentence)
                pairs.append((code, sentence))
    return pairs


def make_comment_task(n_examples: int, *, seed: int = 0) -> list[dict[str, str]]:
    """``n_examples`` distinct examples ``{"source": "<code>\\n#", "target": " <sentence>"}``.

    Drawn without replacement in an order fixed by ``seed``, so a larger task starts with
    the examples of a smaller one.

    Raises:
        ValueError: more examples asked for than this Python's standard library has.
    """
    return draw_nested(comment_pairs(), n_examples, seed=seed, salt=31337, task="comments",
                       source_suffix="\n#")
