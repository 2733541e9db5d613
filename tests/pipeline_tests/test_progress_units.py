"""Progress lines give a run's loss with its unit (per token, and per byte when known)."""

from __future__ import annotations

from types import SimpleNamespace

from lensllm.pipeline.run import loss_words


def test_loss_words_name_both_units():
    result = SimpleNamespace(test_loss=1.413, test_loss_per_byte=1.413 * 100 / 149)
    assert loss_words(result) == f"1.4130 nats/token = {1.413 * 100 / 149:.4f} nats/byte"


def test_loss_words_without_bytes():
    assert loss_words(SimpleNamespace(test_loss=2.0, test_loss_per_byte=None)) == \
        "2.0000 nats/token"
