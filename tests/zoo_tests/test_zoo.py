"""The zoo: offline corpus, generated task, pretrained checkpoints."""

from __future__ import annotations

import json

import pytest

from lensllm.zoo import ZooModel, make_task, pretraining_text, task_vocabulary, write_task
from lensllm.zoo.corpus import TASK_OPS


def test_corpus_is_the_pydoc_topics():
    from pydoc_data.topics import topics

    text = pretraining_text()
    assert len(text) == sum(len(v) for v in topics.values()) + 2 * (len(topics) - 1)


def test_task_answers_follow_the_instruction():
    vocab = set(task_vocabulary())
    numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"]
    for ex in make_task(300, seed=3):
        op, _, rest = ex["source"].partition(": ")
        words = rest.removesuffix(" =").split()
        assert op in TASK_OPS and 3 <= len(words) <= 6 and set(words) <= vocab
        expected = {"reverse": " ".join(words[::-1]), "sort": " ".join(sorted(words)),
                    "first": words[0], "last": words[-1], "count": numbers[len(words)]}[op]
        assert ex["target"] == " " + expected


def test_task_is_a_pure_function_of_its_seed(tmp_path):
    assert make_task(50, seed=1) == make_task(50, seed=1) != make_task(50, seed=2)
    path = write_task(tmp_path / "t.jsonl", 20, seed=1)
    assert [json.loads(x) for x in path.read_text().splitlines()] == make_task(20, seed=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "bert"}, "arch"), ({"hidden": 30, "heads": 4}, "shape"),
    ({"pretrain_steps": -1}, "pretrain_steps")])
def test_bad_zoo_model(kwargs, message):
    base = {"arch": "gpt2", "hidden": 32, "layers": 1, "pretrain_steps": 0}
    with pytest.raises(ValueError, match=message):
        ZooModel(**{**base, **kwargs})


def test_build_checkpoints_once(tmp_path):
    pytest.importorskip("torch")
    import torch

    from lensllm.finetune.models import load_model
    from lensllm.zoo import build_zoo

    zoo = (ZooModel("llama", 16, 1, 0), ZooModel("llama", 16, 1, 3))
    paths = build_zoo(zoo, root=tmp_path)
    assert [p.name for p in paths.values()] == ["llama-d16-L1-p0", "llama-d16-L1-p3"]
    m0, tok = load_model(str(paths["llama-d16-L1-p0"]))
    m3, _ = load_model(str(paths["llama-d16-L1-p3"]))
    assert tok.pad_token == "<pad>" and tok.eos_token == "<eos>" and len(tok) == 1024
    w0 = dict(m0.named_parameters())
    changed = [n for n, p in m3.named_parameters() if not torch.equal(p, w0[n])]
    assert changed  # three optimiser steps moved the weights
    stamp = (paths["llama-d16-L1-p3"] / "config.json").stat().st_mtime_ns
    build_zoo(zoo, root=tmp_path)  # cached: nothing rebuilt
    assert (paths["llama-d16-L1-p3"] / "config.json").stat().st_mtime_ns == stamp
