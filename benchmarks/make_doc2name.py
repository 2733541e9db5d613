"""Write the doc2name task: a stdlib object's first docstring line -> its qualified name.

A task made as a new user would make one, to try `lensllm select` on data nothing was
studied on (`benchmarks/results/newuser/`, docs/select.md). Offline: the examples come from
the standard library of the running Python (which modules import, and their docstrings,
depend on its version; the committed table was made with Python 3.11).

    python benchmarks/make_doc2name.py benchmarks/results/newuser/doc2name.jsonl
    lensllm select --config benchmarks/results/newuser/doc2name.toml --report reports/d2n
    lensllm validate --config benchmarks/results/newuser/doc2name.toml --size 1024 --top 5
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import random
from pathlib import Path

#: Modules whose public functions and classes give the examples.
MODULES = (
    "os os.path json re string textwrap itertools functools collections math statistics "
    "random shutil pathlib datetime time calendar heapq bisect copy pprint difflib csv "
    "base64 hashlib zlib gzip tarfile zipfile fnmatch glob tempfile urllib.parse html "
    "xml.dom.minidom email.utils logging argparse inspect operator types typing decimal "
    "fractions uuid socket subprocess threading queue asyncio unittest doctest ast dis "
    "tokenize codecs locale gettext platform sysconfig warnings weakref enum dataclasses "
    "contextlib abc numbers array struct io pickle shelve sqlite3 configparser secrets hmac "
    "ipaddress mimetypes quopri binascii colorsys wave traceback pdb timeit cProfile pstats "
    "trace gc site").split()


def examples() -> list[tuple[str, str]]:
    """(first docstring line, qualified name) of every public function or class with a
    first line of 15-90 characters, deduplicated, shuffled with seed 0."""
    rows = set()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, obj in inspect.getmembers(module):
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)
                                            or inspect.isbuiltin(obj)):
                continue
            doc = inspect.getdoc(obj)
            line = doc.strip().splitlines()[0].strip() if doc else ""
            if 15 <= len(line) <= 90:
                rows.add((line, f"{name}.{attr}"))
    rows = sorted(rows)
    random.Random(0).shuffle(rows)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the JSONL file to write")
    args = ap.parse_args()
    rows = examples()
    with args.out.open("w") as f:
        for line, name in rows:
            f.write(json.dumps({"source": "Which function: " + line, "target": " " + name})
                    + "\n")
    print(f"wrote {len(rows)} examples to {args.out}")


if __name__ == "__main__":
    main()
