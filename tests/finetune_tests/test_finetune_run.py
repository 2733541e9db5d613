"""The run loop: counted FLOPs, early stopping, zero-shot, LoRA, seq2seq, determinism."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import transformers

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import FinetuneConfig
from lensllm.finetune.data import load_task_data
from lensllm.finetune.models import load_model
from lensllm.finetune.train import finetune, subset_examples

SPLITS = {"validation_size": 16, "test_size": 24}


@pytest.fixture(scope="module")
def addition(tmp_path_factory):
    """Addition examples, every one exactly 8 characters ("12+34=46" style sums < 100)."""
    rng = random.Random(0)
    lines = []
    while len(lines) < 120:
        a, b = rng.randint(10, 49), rng.randint(10, 49)
        if a + b < 100:
            lines.append(json.dumps({"text": f"{a}+{b}={a + b}"}))
    path = tmp_path_factory.mktemp("data") / "add.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return load_task_data(path)


def test_flops_agree_with_six_n_tokens_counted_independently(addition):
    # Independent counts: GPT-2 parameters from the architecture formula; every example is
    # a start token + 8 bytes + EOS = 10 byte-level tokens, of which 9 are scored (the 8
    # bytes and EOS); no early stop (patience > evaluations).
    d, layers = 32, 2
    n_params = 384 * d + 256 * d + layers * (12 * d * d + 13 * d) + 2 * d
    tokens_per_example = 1 + len(transformers.ByT5Tokenizer()("12+34=46")["input_ids"])
    assert tokens_per_example == 10
    size, epochs, batch = 16, 3, 4
    config = FinetuneConfig(batch_size=batch, epochs=epochs, min_steps=1, eval_every_epochs=1000,
                            patience_epochs=1000, max_length=32, learning_rate=1e-3)
    result = finetune("tiny:gpt2", addition, size=size, seed=0, config=config, **SPLITS)
    train_tokens = epochs * size * tokens_per_example
    evaluations = 2  # validation at step 0 and at the last step
    eval_tokens = tokens_per_example * (evaluations * SPLITS["validation_size"]
                                        + SPLITS["test_size"])
    assert result.steps == epochs * size // batch
    assert result.n_params == n_params
    assert result.train_tokens == train_tokens
    expected = 6 * n_params * train_tokens + 2 * n_params * eval_tokens
    assert result.flops == pytest.approx(expected, rel=0.02)
    assert result.test_scored_tokens == 9 * SPLITS["test_size"]
    assert result.test_bytes == 8 * SPLITS["test_size"]
    assert result.test_truncated == 0
    assert 6 * n_params * result.train_tokens == pytest.approx(6 * n_params * train_tokens,
                                                               rel=0.02)


def test_training_lowers_the_test_loss_and_is_deterministic(addition):
    config = FinetuneConfig(batch_size=8, epochs=4, min_steps=1, eval_every_epochs=0.5,
                            max_length=32, learning_rate=3e-3)
    zero = finetune("tiny:gpt2", addition, size=0, seed=0, config=config, **SPLITS)
    assert zero.steps == 0 and zero.train_tokens == 0 and zero.early_stop_step == 0
    assert zero.test_loss == pytest.approx(math.log(384), abs=0.3)  # random init: ~uniform
    one = finetune("tiny:gpt2", addition, size=64, seed=1, config=config, **SPLITS)
    two = finetune("tiny:gpt2", addition, size=64, seed=1, config=config, **SPLITS)
    assert one.test_loss < zero.test_loss - 1.0
    assert one.test_loss == two.test_loss
    assert one.loss_points == two.loss_points
    splits = {p.split for p in one.loss_points}
    assert splits == {"train", "validation", "test"}
    assert one.learning_rate == 3e-3


def test_early_stopping_restores_the_best_weights(addition):
    # A huge learning rate makes every validation worse than step 0: training stops at the
    # first evaluation at least `patience` after step 0 (0.4 epochs of 10 steps = 4 steps,
    # raised by the 50-step floor as far as its cap, four times that: 16), and the step-0
    # weights come back.
    config = FinetuneConfig(batch_size=4, epochs=10, eval_every_epochs=0.2, min_eval_interval=1,
                            patience_epochs=0.4, min_train_epochs=0, warmup_ratio=0,
                            max_grad_norm=0, max_length=32, learning_rate=5.0)
    zero = finetune("tiny:gpt2", addition, size=0, seed=0, config=config, **SPLITS)
    result = finetune("tiny:gpt2", addition, size=40, seed=0, config=config, **SPLITS)
    assert result.early_stop_step == 0
    assert result.steps == 16
    assert result.test_loss == pytest.approx(zero.test_loss, abs=1e-5)


def test_lora_trains_adapters_only_and_counts_them(addition):
    config = FinetuneConfig(method="lora", lora_r=4, batch_size=8, epochs=2, min_steps=1,
                            max_length=32, learning_rate=1e-2)
    result = finetune("tiny:llama", addition, size=32, seed=0, config=config, **SPLITS)
    base, _ = load_model("tiny:llama")
    base_count = sum(p.numel() for p in base.parameters())
    assert result.base_params == base_count
    assert result.n_params == base_count + result.n_trainable
    assert 0 < result.n_trainable < base_count / 2
    assert math.isfinite(result.test_loss)


def test_seq2seq_model_on_source_target_data(tmp_path):
    rng = random.Random(1)
    lines = [json.dumps({"source": f"{a}+{b}", "target": str(a + b)})
             for a, b in ((rng.randint(10, 99), rng.randint(10, 99)) for _ in range(80))]
    path = tmp_path / "s2s.jsonl"
    path.write_text("\n".join(lines))
    task = load_task_data(path)
    config = FinetuneConfig(batch_size=8, epochs=3, min_steps=1, max_length=16,
                            learning_rate=3e-3)
    zero = finetune("tiny:t5", task, size=0, seed=0, config=config, **SPLITS)
    trained = finetune("tiny:t5", task, size=32, seed=0, config=config, **SPLITS)
    assert trained.test_loss < zero.test_loss
    # A causal model on the same data scores the target continuation only.
    causal = finetune("tiny:gpt2", task, size=16, seed=0, config=config, **SPLITS)
    assert math.isfinite(causal.test_loss)


def test_encoder_decoder_on_text_data_is_a_config_error(addition):
    from lensllm.finetune.train import RunFailed

    with pytest.raises(RunFailed, match="encoder-decoder") as info:
        finetune("tiny:t5", addition, size=8, seed=0, config=FinetuneConfig(), **SPLITS)
    assert info.value.cause is ConfigError and info.value.failure.tokens == 0


def test_subsets_used_by_runs_are_nested(addition):
    small = subset_examples(addition, 10, 3, **SPLITS)
    big = subset_examples(addition, 40, 3, **SPLITS)
    assert {e["text"] for e in small[0]} <= {e["text"] for e in big[0]}
    assert small[1:] == big[1:]  # same validation and test splits


def _stop_step_by_hand(validations, plan, min_improvement):
    """Where the documented stopping rule ends a run with these validations, replayed
    independently of the trainer: a better loss is min_improvement below the best; once the
    best is patience_at(best) old the run stops unless numpy's least-squares slope of log
    loss over the last 2 patiences (3 validations at least) is negative; at 4 patiences it
    stops regardless. Returns (the stop step, whether the trend kept the run going once)."""
    best_step, best = validations[0]
    extended = False
    for i, (step, loss) in enumerate(validations[1:], start=1):
        if loss < best * (1 - min_improvement):
            best_step, best = step, loss
            continue
        patience = max(plan.patience_steps, math.ceil(plan.patience_fraction * best_step))
        waited = step - best_step
        if step < plan.guaranteed_steps or waited < patience:
            continue
        if waited >= 4 * patience:
            return step, extended
        window = np.array([(s, v) for s, v in validations[:i + 1] if s >= step - 2 * patience])
        if len(window) < 3 or np.polyfit(window[:, 0], np.log(window[:, 1]), 1)[0] >= 0:
            return step, extended
        extended = True
    return validations[-1][0], extended


def test_runs_stop_where_the_trend_rule_says(addition):
    # without the step floor, so that the one-epoch patience runs out and the trend decides
    config = FinetuneConfig(batch_size=4, learning_rate=3e-3, max_length=16,
                            eval_batch_size=64, epochs=30, min_patience_steps=0)
    extended = []
    for size in (16, 40, 80):
        result = finetune("tiny:gpt2", addition, size=size, seed=0, config=config, **SPLITS)
        validations = [(p.step, p.loss) for p in result.loss_points if p.split == "validation"]
        stop, went_on = _stop_step_by_hand(validations, config.plan(size),
                                           config.min_improvement)
        assert result.steps == stop, size
        extended.append(went_on)
    assert any(extended)  # the trend kept at least one run going past its patience (40)
