"""A natural-language downstream task, offline: name a standard-library callable, say what it does.

The word-list task (:func:`lensllm.zoo.corpus.make_task`) is algorithmic: small models learn
it abruptly once they have seen enough examples, which no saturating scaling law can
extrapolate (the zoo benchmark measured this, ``docs/zoo.md``). Users fine-tune on natural
language, so the zoo benchmark's main task is this one: the source names a public function
or class of a fixed list of standard-library modules, the target is the first sentence of
its docstring, e.g. ``{"source": "shutil.move:", "target": " Recursively move a file or
directory to another location."}``.

The pretraining text (``pydoc_data.topics``, the language reference) does not contain these
docstrings, but its vocabulary and style are close: pretraining helps without giving the
answers away. Everything comes with CPython, so the task builds offline; its examples depend
on the Python version (the docstrings of 3.11 and 3.12 differ slightly), so the benchmark
records the version.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings

from lensllm.zoo._draw import draw_nested

__all__ = ["DOC_MODULES", "docstring_pairs", "make_docstring_task"]

#: The modules the task reads, importable on every CPython build (no GUI, no optional
#: C libraries beyond zlib/lzma/sqlite3/ssl, which the official builds ship).
DOC_MODULES = tuple(sorted("""
abc argparse array base64 bisect calendar cmath codecs collections colorsys contextlib copy
csv datetime decimal difflib dis email enum filecmp fnmatch fractions functools getopt
gettext glob gzip hashlib heapq hmac html http inspect io ipaddress itertools json keyword
linecache locale logging lzma math mimetypes numbers operator os pathlib pickle pkgutil
platform plistlib pprint queue quopri random re reprlib sched secrets shelve shlex shutil
signal socket sqlite3 stat statistics string struct subprocess symtable tarfile tempfile
textwrap threading time timeit token tokenize trace traceback types typing unicodedata
unittest urllib uuid warnings wave weakref zipfile zlib
""".split()))

_MIN_CHARS, _MAX_CHARS = 15, 160


def _first_sentence(doc: str) -> str:
    """The docstring's first paragraph, on one line, cut after its first full stop."""
    paragraph = doc.strip().split("\n\n")[0]
    return re.split(r"(?<=\.)\s", " ".join(paragraph.split()))[0]


def docstring_pairs() -> list[tuple[str, str]]:
    """Every ``(qualified name, first docstring sentence)`` of :data:`DOC_MODULES`, sorted.

    Public module-level functions and classes with a docstring whose first sentence is
    15-160 characters and does not restate the signature; a sentence already taken (a
    re-exported object) is kept once, under the first name in sorted order.
    """
    pairs, seen = [], set()
    with warnings.catch_warnings():  # importing / reading deprecated names warns
        warnings.simplefilter("ignore")
        for module_name in DOC_MODULES:
            module = importlib.import_module(module_name)
            for name in sorted(dir(module)):
                if name.startswith("_"):
                    continue
                obj = getattr(module, name, None)
                if not (inspect.isfunction(obj) or inspect.isbuiltin(obj)
                        or inspect.isclass(obj)):
                    continue
                sentence = _first_sentence(inspect.getdoc(obj) or "")
                if (not _MIN_CHARS <= len(sentence) <= _MAX_CHARS
                        or sentence.startswith(name) or sentence in seen):
                    continue
                seen.add(sentence)
                pairs.append((f"{module_name}.{name}", sentence))
    return pairs


def make_docstring_task(n_examples: int, *, seed: int = 0) -> list[dict[str, str]]:
    """``n_examples`` distinct examples ``{"source": "<name>:", "target": " <sentence>"}``.

    Drawn without replacement from :func:`docstring_pairs` in an order fixed by ``seed``,
    so a larger task starts with the examples of a smaller one (nested subsets stay nested).

    Raises:
        ValueError: more examples asked for than this Python's standard library has.
    """
    return draw_nested(docstring_pairs(), n_examples, seed=seed, salt=20251,
                       task="docstring", source_suffix=":")
