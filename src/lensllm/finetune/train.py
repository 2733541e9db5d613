"""One fine-tuning run: a model, a nested subset, early stopping, a test loss and its cost.

:func:`finetune` is a pure function of its arguments (model id, task data, subset size,
seed, settings): it touches no store, so it runs the same in-process or in a Ray task.

FLOPs are counted, not guessed: every training batch adds its non-padding tokens to
``train_tokens`` and every evaluation batch to ``eval_tokens`` (an encoder-decoder counts
source plus target tokens), and ``flops = 6 * n_params * train_tokens + 2 * n_params *
eval_tokens`` with ``n_params`` every parameter of the model as trained (base weights,
frozen or not, plus LoRA adapters; tied tensors once).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import FinetuneConfig
from lensllm.finetune.data import (
    TaskData,
    encode_examples,
    nested_subset_indices,
    split_indices,
)
from lensllm.finetune.lora import add_lora as _add_lora
from lensllm.finetune.models import count_parameters, is_encoder_decoder, load_model
from lensllm.store import LossPoint, RunResult

__all__ = ["finetune", "subset_examples", "evaluate_loss", "ProgressCallback"]

#: ``callback(step, total_steps, train_loss)`` after every optimiser step.
ProgressCallback = Callable[[int, int, float], None]


def subset_examples(
    task: TaskData,
    size: int,
    seed: int,
    *,
    validation_size: int,
    test_size: int,
    split_seed: int = 0,
) -> tuple[list[dict], list[dict], list[dict]]:
    """The training subset of ``size`` examples and the fixed validation and test splits.

    Args:
        task: the task data.
        size: subset size (0 for none).
        seed: run seed; the subset is the first ``size`` entries of a seeded permutation of
            the training pool (nested across sizes).
        validation_size, test_size, split_seed: the fixed split (see
            :func:`lensllm.finetune.data.split_indices`).

    Returns:
        ``(train_subset, validation, test)`` example lists.
    """
    split = split_indices(
        len(task), n_validation=validation_size, n_test=test_size, seed=split_seed
    )
    train: list[dict] = []
    if size > 0:
        picks = nested_subset_indices(len(split.train), [size], seed)[size]
        train = [task.examples[split.train[i]] for i in picks]
    validation = [task.examples[i] for i in split.validation]
    test = [task.examples[i] for i in split.test]
    return train, validation, test


def finetune(
    model_id: str,
    task: TaskData,
    *,
    size: int,
    seed: int,
    config: FinetuneConfig,
    validation_size: int,
    test_size: int,
    split_seed: int = 0,
    family: str = "",
    threads: int | None = None,
    callback: ProgressCallback | None = None,
) -> RunResult:
    """Fine-tune one model on a nested subset and measure its test loss and cost.

    ``size == 0`` evaluates the model as loaded (zero-shot): no training, ``steps == 0``.
    Otherwise trains with AdamW for at most ``max_epochs`` passes (``max_steps`` steps),
    validating at step 0, every ``eval_every`` steps and at the last step; stops after
    ``patience`` validations without improvement and restores the weights of the best one
    (its step is ``early_stop_step``) before measuring the test loss.

    Args:
        model_id: any id :func:`lensllm.finetune.models.load_model` accepts.
        task: the task data.
        size: training examples (0: zero-shot evaluation only).
        seed: run seed (subset, batch order, adapter init, dropout).
        config: fine-tuning settings.
        validation_size, test_size, split_seed: the fixed splits.
        family: family name to record (default: the model's ``model_type``).
        threads: torch threads for this run (None: leave as is).
        callback: called after every step with ``(step, total_steps, train_loss)``.

    Returns:
        The measurements, with the loss curve in ``loss_points``.

    Raises:
        ConfigError: the model cannot be loaded or does not fit the data kind.
    """
    start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    train, validation, test = subset_examples(
        task, size, seed, validation_size=validation_size, test_size=test_size,
        split_seed=split_seed,
    )
    torch.manual_seed(seed)
    model, tokenizer = load_model(
        model_id, attn_implementation=config.attn_implementation
    )
    base_params = count_parameters(model)
    encdec = is_encoder_decoder(model)
    if encdec and task.kind != "seq2seq":
        raise ConfigError(
            f"model '{model_id}' is an encoder-decoder and needs 'source'/'target' data; "
            f"'{task.path}' has 'text'"
        )
    family = family or str(getattr(model.config, "model_type", "")) or model_id
    if config.method == "lora" and size > 0:
        model = _add_lora(model, config, encdec)
    device = _device(config.device)
    model.to(device)
    n_params = count_parameters(model)
    n_trainable = count_parameters(model, trainable_only=True) if size > 0 else 0

    def encode(examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        batch = encode_examples(
            tokenizer, examples, task.kind, max_length=config.max_length,
            is_encoder_decoder=encdec,
        )
        return {k: v.to(device) for k, v in batch.items()}

    val_batches = [encode(b) for b in _chunks(validation, config.eval_batch_size)]
    test_batches = [encode(b) for b in _chunks(test, config.eval_batch_size)]
    points: list[LossPoint] = []
    eval_tokens = 0
    train_tokens = 0
    steps = 0
    best_step = 0

    if size > 0:
        steps_per_epoch = math.ceil(size / config.batch_size)
        total_steps = steps_per_epoch * config.max_epochs
        if config.max_steps:
            total_steps = min(total_steps, config.max_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        rng = np.random.default_rng([seed, 1])
        best_loss, tokens = evaluate_loss(model, val_batches, encdec)
        eval_tokens += tokens
        points.append(LossPoint(0, "validation", best_loss, 0))
        best_state = _trainable_state(model)
        bad_evals = 0
        window: list[float] = []
        stop = False
        while not stop and steps < total_steps:
            order = rng.permutation(size)
            for chunk in _chunks(list(order), config.batch_size):
                model.train()
                batch = encode([train[i] for i in chunk])
                loss = _mean_token_loss(model, batch, encdec)[0]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                train_tokens += _count_tokens(batch, encdec)
                window.append(float(loss.detach()))
                if callback is not None:
                    callback(steps, total_steps, window[-1])
                if steps % config.eval_every == 0 or steps == total_steps:
                    val_loss, tokens = evaluate_loss(model, val_batches, encdec)
                    eval_tokens += tokens
                    points.append(LossPoint(steps, "train", float(np.mean(window)), train_tokens))
                    points.append(LossPoint(steps, "validation", val_loss, train_tokens))
                    window = []
                    if val_loss < best_loss:
                        best_loss, best_step, bad_evals = val_loss, steps, 0
                        best_state = _trainable_state(model)
                    else:
                        bad_evals += 1
                        if bad_evals >= config.patience:
                            stop = True
                if stop or steps >= total_steps:
                    break
        _load_trainable_state(model, best_state)

    test_loss, tokens = evaluate_loss(model, test_batches, encdec)
    eval_tokens += tokens
    points.append(LossPoint(best_step, "test", test_loss, train_tokens))
    return RunResult(
        test_loss=test_loss,
        steps=steps,
        train_tokens=train_tokens,
        eval_tokens=eval_tokens,
        flops=6.0 * n_params * train_tokens + 2.0 * n_params * eval_tokens,
        wall_time=time.perf_counter() - start,
        learning_rate=config.learning_rate,
        early_stop_step=best_step,
        n_params=n_params,
        n_trainable=n_trainable,
        base_params=base_params,
        family=family,
        device=str(device),
        loss_points=tuple(points),
    )


@torch.no_grad()
def evaluate_loss(
    model, batches: Sequence[dict[str, torch.Tensor]], encoder_decoder: bool
) -> tuple[float, int]:
    """Mean token loss over every scored token of ``batches`` (not a mean of batch means).

    Returns:
        ``(loss, tokens)``: the loss in nats and the non-padding tokens processed.
    """
    model.eval()
    total, count, tokens = 0.0, 0, 0
    for batch in batches:
        loss, n_scored = _mean_token_loss(model, batch, encoder_decoder)
        total += float(loss) * n_scored
        count += n_scored
        tokens += _count_tokens(batch, encoder_decoder)
    if count == 0:
        raise ConfigError("no token is scored in the evaluation split (all targets truncated?)")
    return total / count, tokens


def _mean_token_loss(
    model, batch: dict[str, torch.Tensor], encoder_decoder: bool
) -> tuple[torch.Tensor, int]:
    """Cross-entropy averaged over scored tokens, computed here rather than by the model
    so that every architecture scores the same positions."""
    labels = batch["labels"]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if encoder_decoder:
        inputs["labels"] = labels  # the model builds its decoder inputs from them
        logits = model(**inputs).logits
        targets = labels
    else:
        logits = model(**inputs).logits[:, :-1]
        targets = labels[:, 1:]
    n_scored = int((targets != -100).sum())
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100,
        reduction="sum",
    ) / max(n_scored, 1)
    return loss, n_scored


def _count_tokens(batch: dict[str, torch.Tensor], encoder_decoder: bool) -> int:
    tokens = int(batch["attention_mask"].sum())
    if encoder_decoder:
        tokens += int((batch["labels"] != -100).sum())
    return tokens


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable_state(model, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in state:
                param.copy_(state[name])


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("`finetune.device` is 'cuda' but no CUDA device is available")
    return torch.device(name)
