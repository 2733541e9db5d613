"""One fine-tuning run: a model, a nested subset, the recipe, a test loss and its cost.

:func:`finetune` is a pure function of its arguments (model id, task data, subset size,
seed, settings): it touches no store, so it runs the same in-process or in a Ray task.
How long it trains, when it evaluates and when it stops follow the recipe of
:mod:`lensllm.finetune.recipe`; the steps themselves run in
:class:`lensllm.finetune.engine.TrainEngine`.

FLOPs are counted, not guessed: every training batch adds its non-padding tokens to
``train_tokens`` and every evaluation batch to ``eval_tokens`` (an encoder-decoder counts
source plus target tokens), and ``flops = 6 * n_params * train_tokens + 2 * n_params *
eval_tokens`` with ``n_params`` every parameter of the model as trained (base weights,
frozen or not, plus LoRA adapters; tied tensors once).

Besides the test loss in nats per scored token, a run records what it was averaged over:
the scored tokens, the UTF-8 bytes of the scored text (counted from the text, not the
tokenizer) and how many test examples had scored text truncated; ``test_loss *
test_scored_tokens / test_bytes`` is the loss in nats per byte, comparable across
tokenizers.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from lensllm.exceptions import ConfigError, LensLLMError
from lensllm.finetune.batches import Batch, TokenizedSplit
from lensllm.finetune.config import FinetuneConfig
from lensllm.finetune.data import (
    TaskData,
    pad_token_id,
    nested_subset_indices,
    scored_bytes,
    split_indices,
    tokenize_rows,
    truncated_examples,
)
from lensllm.finetune.engine import Scorer, TrainEngine, check_finite, resolve_device
from lensllm.finetune.lora import add_lora
from lensllm.finetune.models import (
    count_parameters,
    is_encoder_decoder,
    load_model,
    model_fingerprint,
)
from lensllm.finetune.recipe import TrainingPlan
from lensllm.finetune.reuse import fresh_model, token_rows
from lensllm.store import LossPoint, RunFailure, RunResult

__all__ = ["finetune", "subset_examples", "ProgressCallback", "RunFailed"]


class RunFailed(LensLLMError):
    """A run that raised (non-finite loss, an exception inside the model, out of memory):
    ``failure`` holds the reason and the compute spent until then, for the store; ``cause``
    the type of the original exception (:class:`~lensllm.exceptions.TrainingDiverged`...)."""

    def __init__(self, failure: RunFailure, cause: type[BaseException]) -> None:
        super().__init__(failure.reason)
        self.failure = failure
        self.cause = cause

#: ``callback(step, total_steps, train_loss)`` after every optimiser step; the loss is the
#: mean since the last evaluation (read from the device only there, NaN before the first).
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
    Otherwise trains by the recipe (``config.plan(size)``), judged on the first
    ``plan.validation_examples`` of the validation split: validation at step 0, every
    ``eval_interval`` steps and at the horizon; the run stops at an evaluation once it
    has trained its guaranteed steps and the best validation loss (a drop of at least
    ``min_improvement`` counts) is ``plan.patience_at(best step)`` old (the patience grows
    with the run) and, with ``patience_trend``, the recent validation losses no longer fall
    (:meth:`~lensllm.finetune.recipe.TrainingPlan.should_stop`), and the weights of the best
    validation (its step is ``early_stop_step``) are put back before the test loss is
    measured. ``early_stop_step < steps`` means the run converged; ``steps`` at the
    horizon (``plan.planned_steps``) means it may not have.

    Args:
        model_id: any id :func:`lensllm.finetune.models.load_model` accepts.
        task: the task data.
        size: training examples (0: zero-shot evaluation only).
        seed: run seed (subset, batch order, adapter init, dropout).
        config: fine-tuning settings.
        validation_size, test_size, split_seed: the fixed splits.
        family: family name to record (default: the model's ``model_type``).
        threads: torch threads for this run (None: leave as is).
        callback: called after every optimizer step (see :data:`ProgressCallback`).

    Returns:
        The measurements, with the loss curve in ``loss_points``.

    Raises:
        RunFailed: anything went wrong (the model cannot be loaded or does not fit the data
            kind, the loss became non-finite, the model raised, memory ran out); it carries
            the reason and the FLOPs, tokens and seconds spent before the failure.
    """
    start = time.perf_counter()
    counter = _Counter()
    loaded: list[_RunSetup] = []
    try:
        return _finetune(model_id, task, size, seed, config, (validation_size, test_size,
                         split_seed), family, threads, callback, counter, loaded)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded failed run
        failure = _failure(exc, counter, loaded, time.perf_counter() - start)
        cause = type(exc)
    loaded.clear()  # drop the model (and, after an out-of-memory error, its device memory)
    _free_device_memory()
    raise RunFailed(failure, cause)


def _failure(exc: Exception, counter: _Counter, loaded: list, wall_time: float) -> RunFailure:
    """The reason of a failed run and its cost so far (FLOPs as in :class:`RunResult`)."""
    message = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, LensLLMError):
        message = str(exc)
    elif not isinstance(exc, MemoryError) and "OutOfMemoryError" not in type(exc).__name__:
        message += "\n" + "".join(traceback.format_exception(exc, limit=-3))
    n_params = count_parameters(loaded[0].model) if loaded else 0
    flops = 6.0 * n_params * counter.train_tokens + 2.0 * n_params * counter.eval_tokens
    return RunFailure(message, flops=flops, wall_time=wall_time,
                      tokens=counter.train_tokens + counter.eval_tokens)


def _free_device_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _finetune(model_id, task, size, seed, config, splits, family, threads, callback,
              counter, loaded) -> RunResult:
    """The body of :func:`finetune`; fills ``counter`` and ``loaded`` as it goes, so a
    failure can say what it had spent."""
    start = time.perf_counter()
    validation_size, test_size, split_seed = splits
    if threads is not None:
        torch.set_num_threads(threads)
    train, validation, test = subset_examples(
        task, size, seed, validation_size=validation_size, test_size=test_size,
        split_seed=split_seed,
    )
    run = _RunSetup.load(model_id, task, config, family, training=size > 0, seed=seed)
    loaded.append(run)
    test_batches = run.eval_batches(test)
    best_step = 0
    if size > 0:
        plan = config.plan(size)
        val_batches = run.eval_batches(validation[:plan.validation_count(len(validation))])
        best_step = _train(run, run.split(train), val_batches, plan, seed, counter, callback)
    test_loss = run.scorer().evaluate(_on(test_batches, run.device))
    counter.eval_tokens += sum(b.tokens for b in test_batches)
    check_finite("test", test_loss, counter.steps)
    counter.points.append(LossPoint(best_step, "test", test_loss, counter.train_tokens))
    counter.test_scored = sum(b.scored for b in test_batches)
    counter.test_bytes = sum(scored_bytes(test, task.kind))
    counter.test_truncated = run.truncated(test)
    return run.result(counter, test_loss, best_step, time.perf_counter() - start)


@dataclass
class _Counter:
    """What a run has done so far: steps, tokens (FLOPs are counted from them), points,
    and what the test loss was averaged over: scored tokens, the UTF-8 bytes of the scored
    text (tokenizer-independent) and the test examples whose scored text was truncated."""

    steps: int = 0
    train_tokens: int = 0
    eval_tokens: int = 0
    points: list[LossPoint] = field(default_factory=list)
    test_scored: int = 0
    test_bytes: int = 0
    test_truncated: int = 0


@dataclass
class _RunSetup:
    """The loaded model of one run and how to batch its data."""

    model: torch.nn.Module
    tokenizer: object
    config: FinetuneConfig
    kind: str
    encoder_decoder: bool
    device: torch.device
    family: str
    base_params: int
    n_trainable: int
    model_key: tuple = ()
    _engine: TrainEngine | None = None

    @classmethod
    def load(cls, model_id: str, task: TaskData, config: FinetuneConfig, family: str,
             *, training: bool, seed: int) -> _RunSetup:
        """The run's model: its own copy of the weights the process keeps on the host
        (loaded from disk on the model's first run only; see :mod:`lensllm.finetune.reuse`),
        LoRA-wrapped when the run trains adapters, on the run's device."""
        attn = config.attn_implementation
        key = (model_id, model_fingerprint(model_id), attn, "float32")
        device = resolve_device(config.device)
        model, tokenizer = fresh_model(
            key, lambda: load_model(model_id, attn_implementation=attn), device)
        base_params = count_parameters(model)
        encdec = is_encoder_decoder(model)
        if encdec and task.kind != "seq2seq":
            raise ConfigError(
                f"model '{model_id}' is an encoder-decoder and needs 'source'/'target' data; "
                f"'{task.path}' has {task.kind} data"
            )
        family = family or str(getattr(model.config, "model_type", "")) or model_id
        # seeded after loading, so that LoRA's initialisation and dropout do not depend on
        # whether the weights came from disk or from the process's kept copy
        torch.manual_seed(seed)
        if config.method == "lora" and training:
            model = add_lora(model, config, encdec)
        if not training:
            model.requires_grad_(False)
        model.to(device)  # anything the copy or the wrapping left elsewhere
        trainable = count_parameters(model, trainable_only=True) if training else 0
        return cls(model, tokenizer, config, task.kind, encdec, device, family, base_params,
                   trainable, key)

    def _settings(self) -> tuple:
        return (*self.model_key, self.kind, self.config.max_length, self.encoder_decoder)

    def split(self, examples: list[dict]) -> TokenizedSplit:
        """The examples tokenised (each once per process, see :func:`token_rows`)."""
        rows = token_rows(self._settings(), examples, lambda part: tokenize_rows(
            self.tokenizer, part, self.kind, max_length=self.config.max_length,
            is_encoder_decoder=self.encoder_decoder))
        return TokenizedSplit(rows, pad_token_id(self.tokenizer), self.encoder_decoder)

    def truncated(self, examples: list[dict]) -> int:
        """Examples whose scored tokens ``max_length`` cuts."""
        flags = token_rows((*self._settings(), "truncated"), examples, lambda part: [
            truncated_examples(self.tokenizer, [ex], self.kind,
                               max_length=self.config.max_length,
                               is_encoder_decoder=self.encoder_decoder) for ex in part])
        return int(sum(flags))

    def eval_batches(self, examples: list[dict]) -> list[Batch]:
        """Evaluation batches of rows of similar lengths (less padding; a loss summed over
        the split does not depend on which rows share a batch)."""
        return self.split(examples).batches(self.config.eval_batch_size, by_length=True)

    def engine(self, plan: TrainingPlan) -> TrainEngine:
        if self._engine is None:
            self._engine = TrainEngine(self.model, self.config, self.device,
                                       planned_steps=plan.planned_steps,
                                       warmup_steps=plan.warmup_steps)
        return self._engine

    def scorer(self) -> Scorer:
        """The training engine when the run trained, else a plain scorer."""
        return self._engine or Scorer(self.model, self.config.precision, self.device)

    def result(self, counter: _Counter, test_loss: float, best_step: int,
               wall_time: float) -> RunResult:
        n_params = count_parameters(self.model)
        return RunResult(
            test_loss=test_loss, steps=counter.steps, train_tokens=counter.train_tokens,
            eval_tokens=counter.eval_tokens,
            flops=6.0 * n_params * counter.train_tokens + 2.0 * n_params * counter.eval_tokens,
            wall_time=wall_time, learning_rate=self.config.learning_rate,
            early_stop_step=best_step, n_params=n_params, n_trainable=self.n_trainable,
            base_params=self.base_params, family=self.family, device=str(self.device),
            loss_points=tuple(counter.points), test_scored_tokens=counter.test_scored,
            test_bytes=counter.test_bytes, test_truncated=counter.test_truncated,
        )


def _train(run: _RunSetup, data: TokenizedSplit, val_batches: list[Batch],
           plan: TrainingPlan, seed: int, counter: _Counter,
           callback: ProgressCallback | None) -> int:
    """Train by the recipe until the validation loss stops improving (or the horizon);
    restore the best validation's weights; return its step."""
    engine = run.engine(plan)
    val_on_device = _on(val_batches, run.device)
    val_tokens = sum(b.tokens for b in val_batches)
    best_loss = engine.evaluate(val_on_device)
    counter.eval_tokens += val_tokens
    check_finite("validation", best_loss, 0)
    counter.points.append(LossPoint(0, "validation", best_loss, 0))
    best_state, best_step = engine.snapshot(), 0
    eval_at = set(plan.eval_steps())
    history = [(0, best_loss)]  # (step, validation loss): the trend check reads it
    last_train_loss = float("nan")
    for micro_batches in _step_batches(data, plan, run.config, seed):
        engine.step([b.to(run.device) for b in micro_batches])
        counter.steps += 1
        counter.train_tokens += sum(b.tokens for b in micro_batches)
        step = counter.steps
        if step in eval_at:
            last_train_loss = engine.read_train_loss()
            check_finite("training", last_train_loss, step)
            val_loss = engine.evaluate(val_on_device)
            counter.eval_tokens += val_tokens
            check_finite("validation", val_loss, step)
            counter.points.append(LossPoint(step, "train", last_train_loss, counter.train_tokens))
            counter.points.append(LossPoint(step, "validation", val_loss, counter.train_tokens))
            history.append((step, val_loss))
            if val_loss < best_loss * (1.0 - run.config.min_improvement):
                best_loss, best_step, best_state = val_loss, step, engine.snapshot()
            elif plan.should_stop(step, best_step, history):
                break
        if callback is not None:
            callback(step, plan.planned_steps, last_train_loss)
    engine.restore(best_state)
    return best_step


def _step_batches(data: TokenizedSplit, plan: TrainingPlan, config: FinetuneConfig,
                  seed: int):
    """Yield the micro-batches of each optimizer step, ``plan.planned_steps`` times: a new
    seeded permutation of the subset every epoch, ``batch_size`` examples a step (the last
    step of an epoch may be short), split into micro-batches of ``micro_batch_size`` rows of
    similar lengths (which rows share a step is the permutation's; grouping them by length
    inside the step changes only the padding)."""
    rng = np.random.default_rng([seed, 1])
    micro = config.micro_batch_size or config.batch_size
    steps = 0
    while True:
        order = rng.permutation(len(data))
        for i in range(0, len(order), config.batch_size):
            chunk = order[i : i + config.batch_size]
            yield data.micro_batches(chunk, micro)
            steps += 1
            if steps >= plan.planned_steps:
                return


def _on(batches: list[Batch], device: torch.device) -> list[Batch]:
    return [b.to(device) for b in batches]
