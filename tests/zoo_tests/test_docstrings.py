"""The natural-language downstream task: standard-library names and their docstrings."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from lensllm.zoo import write_task
from lensllm.zoo.docstrings import DOC_MODULES, docstring_pairs, make_docstring_task

# reading the docstrings of deprecated aliases (typing.re...) warns; the task skips nothing
# for it
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_every_target_is_the_start_of_that_objects_docstring():
    examples = make_docstring_task(300, seed=0)
    for ex in examples:
        qualified = ex["source"].removesuffix(":")
        module_name, _, name = qualified.rpartition(".")
        assert module_name in DOC_MODULES and not name.startswith("_")
        obj = getattr(importlib.import_module(module_name), name)
        # read independently: the docstring with its whitespace collapsed
        doc = " ".join(inspect.getdoc(obj).split())
        sentence = ex["target"].removeprefix(" ")
        assert ex["target"].startswith(" ") and doc.startswith(sentence)
        assert 15 <= len(sentence) <= 160
        # cut at the first full stop followed by a space (or at the paragraph's end)
        assert ". " not in sentence[:-1]


def test_examples_are_distinct_nested_and_seeded(tmp_path):
    small, large = make_docstring_task(50, seed=0), make_docstring_task(200, seed=0)
    assert large[:50] == small  # a larger task keeps the smaller one's examples first
    assert len({ex["source"] for ex in large}) == len({ex["target"] for ex in large}) == 200
    assert make_docstring_task(50, seed=1) != small
    path = write_task(tmp_path / "d.jsonl", 30, seed=2, task="docstrings")
    assert [json.loads(x) for x in path.read_text().splitlines()] == make_docstring_task(30,
                                                                                       seed=2)


def test_too_many_examples_and_unknown_task_are_refused(tmp_path):
    n = len(docstring_pairs())
    assert n > 600  # the zoo benchmark needs D* + validation + test = 592
    with pytest.raises(ValueError, match=f"has {n} examples"):
        make_docstring_task(n + 1)
    with pytest.raises(ValueError, match="unknown task 'poems'"):
        write_task(tmp_path / "x.jsonl", 5, task="poems")
    assert not (tmp_path / "x.jsonl").exists()
