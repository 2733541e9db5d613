"""Test settings every run needs (see ENVIRONMENT notes in the README).

- one torch thread: two threads on two cores ran ~100x slower in this project's CI;
- an offline Hugging Face hub: tests never download anything;
- opt-in markers: ``--realmodel`` for real pretrained models, ``--slow`` for long tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

try:  # the numeric core is tested without torch too
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - exercised by the no-torch job
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--realmodel", action="store_true", help="run tests on real pretrained LMs")
    parser.addoption("--slow", action="store_true", help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("realmodel", "--realmodel"), ("slow", "--slow")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"opt-in: pass {option} to run")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def bpe_gpt2_dir(tmp_path_factory):
    """``(directory, tokenizer)`` of a tiny GPT-2 whose tokenizer is a byte-level BPE trained
    here on 300 lines (the `tokenizers` library), saved like a hub model: a candidate whose
    tokenizer differs from the ``tiny:`` models' byte-level one."""
    import random

    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    words = ["réseau", "año", "naïve", "straße", "cost", "loss", "byte", "token", "€", "data"]
    rng = random.Random(1)
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 5))) for _ in range(300)]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(lines, trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    config = transformers.GPT2Config(
        vocab_size=bpe.get_vocab_size(), n_embd=32, n_layer=2, n_head=2, n_positions=128,
        pad_token_id=0, eos_token_id=1, bos_token_id=1)
    path = tmp_path_factory.mktemp("bpe") / "gpt2-bpe"
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path, tokenizer


@pytest.fixture(scope="session")
def addition_task(tmp_path_factory):
    """Every sum a+b of two-digit numbers (8100 examples), as task data."""
    import json

    from lensllm.finetune.data import load_task_data

    path = tmp_path_factory.mktemp("add") / "add.jsonl"
    path.write_text("".join(json.dumps({"text": f"{a}+{b}={a + b}"}) + "\n"
                            for a in range(10, 100) for b in range(10, 100)))
    return load_task_data(path)
