"""Offline text: the pretraining corpus and the generated downstream task."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["TASKS", "TASK_OPS", "make_task", "pretraining_text", "task_vocabulary", "write_task"]

#: The operations of the downstream task (one is drawn per example).
TASK_OPS = ("reverse", "sort", "first", "last", "count")
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")


def pretraining_text() -> str:
    """The pretraining corpus: every ``pydoc_data.topics`` entry, in key order (~465k chars).

    Ships with CPython, so it is available offline on every machine with Python.
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def task_vocabulary(n_words: int = 600) -> list[str]:
    """The ``n_words`` most frequent lowercase words (3 to 9 letters) of the corpus.

    Ties are broken alphabetically so the list is the same on every machine with the same
    ``pydoc_data``.
    """
    words = re.findall(r"\b[a-z]{3,9}\b", pretraining_text())
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:n_words]]


def make_task(n_examples: int, *, seed: int = 0, n_words: int = 600) -> list[dict[str, str]]:
    """The downstream task: instructions over word lists, as ``source``/``target`` pairs.

    Each example draws an operation from :data:`TASK_OPS` and 3 to 6 words from
    :func:`task_vocabulary`, e.g. ``{"source": "reverse: alpha beta gamma =",
    "target": " gamma beta alpha"}``. The format never occurs in the pretraining text, but
    the words do, so pretraining helps without giving the answers away.

    Args:
        n_examples: how many examples.
        seed: generator seed (the task is a pure function of its arguments).
        n_words: vocabulary size.

    Returns:
        The examples, in generation order.
    """
    vocab = task_vocabulary(n_words)
    rng = np.random.default_rng([seed, 20250])
    out = []
    for _ in range(n_examples):
        op = TASK_OPS[int(rng.integers(len(TASK_OPS)))]
        k = int(rng.integers(3, 7))
        words = [vocab[int(i)] for i in rng.choice(len(vocab), size=k, replace=False)]
        if op == "reverse":
            answer = " ".join(reversed(words))
        elif op == "sort":
            answer = " ".join(sorted(words))
        elif op == "first":
            answer = words[0]
        elif op == "last":
            answer = words[-1]
        else:
            answer = _NUMBERS[k]
        out.append({"source": f"{op}: {' '.join(words)} =", "target": f" {answer}"})
    return out


#: The downstream tasks :func:`write_task` can write.
TASKS = ("wordlist", "docstrings", "comments")


def write_task(path: str | Path, n_examples: int, *, seed: int = 0,
               task: str = "wordlist") -> Path:
    """Write a downstream task as JSONL (what ``[data] path`` of a config reads).

    Args:
        path: the file to write (atomically: a temporary file renamed into place).
        n_examples: how many examples.
        seed: generator seed.
        task: ``"wordlist"`` (:func:`make_task`), ``"docstrings"``
            (:func:`lensllm.zoo.docstrings.make_docstring_task`) or ``"comments"``
            (:func:`lensllm.zoo.comments.make_comment_task`).
    """
    if task == "wordlist":
        examples = make_task(n_examples, seed=seed)
    elif task == "docstrings":
        from lensllm.zoo.docstrings import make_docstring_task

        examples = make_docstring_task(n_examples, seed=seed)
    elif task == "comments":
        from lensllm.zoo.comments import make_comment_task

        examples = make_comment_task(n_examples, seed=seed)
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(ex) for ex in examples]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
