"""The training engine: optimizer steps at device speed, evaluation, best-state snapshots.

What makes it fast on a GPU, each measured by ``benchmarks/bench_train_throughput.py``
(see ``docs/running.md``):

- bf16 autocast on CUDA (``precision = "auto"``), fp32 master weights; fp16 with loss
  scaling on request;
- fused AdamW where torch has it for the device (else the multi-tensor ``foreach`` one);
- no host synchronisation inside the step loop: losses are summed on the device and read
  only at evaluation points, token counts come from the host-side batches;
- gradient accumulation over micro-batches, each weighted by the step's scored positions,
  so a step is the same token-mean loss whatever the micro-batch size;
- the output layer computed at the scored positions only (:class:`Scorer`): a source/target
  or chat example scores its target tokens, not its prompt, and no padded position is
  scored, so a 262k-token head (Gemma-3) costs in proportion to the target tokens only;
- encoder-decoders are given their decoder inputs, not ``labels``, so the model does not
  compute a second, full-vocabulary loss of its own;
- gradient clipping with the fused norm, warmup and a decaying schedule over the run's
  planned steps, optional gradient checkpointing.

It is written by hand on plain torch rather than on ``transformers.Trainer`` because the
measured loop is faster than the Trainer on the same batches (the benchmark prints the
ratio) and early stopping with best-state restore, FLOPs counting and the epoch-based
recipe are simpler here than as Trainer callbacks.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch

from lensllm.exceptions import ConfigError, TrainingDiverged
from lensllm.finetune.batches import IGNORE, Batch
from lensllm.finetune.config import FinetuneConfig

__all__ = ["Scorer", "TrainEngine", "resolve_device", "resolve_precision", "lr_factor",
           "check_finite"]


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``finetune.device`` setting."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("`finetune.device` is 'cuda' but no CUDA device is available")
    return torch.device(name)


def resolve_precision(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a ``finetune.precision`` setting (None: plain fp32)."""
    if setting == "fp32" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if setting == "fp16" and device.type != "cuda":
        raise ConfigError("`finetune.precision = \"fp16\"` needs a CUDA device")
    return torch.bfloat16 if setting == "bf16" else torch.float16


def lr_factor(step: int, *, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate for the optimizer step with 0-based index
    ``step`` of ``total``: linear warmup over ``warmup`` steps, then the decay."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = (step - warmup) / (total - warmup)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class Scorer:
    """Token losses of a model on device-resident batches, in the run's precision.

    Args:
        model: the model, on ``device``.
        precision: a ``finetune.precision`` setting.
        device: where the model lives.
    """

    def __init__(self, model: torch.nn.Module, precision: str, device: torch.device) -> None:
        self.model = model
        self.device = device
        self.dtype = resolve_precision(precision, device)
        self._decoder_inputs = getattr(model, "prepare_decoder_input_ids_from_labels", None)
        self._head = _output_layer(model)
        if self._decoder_inputs is None and _is_encoder_decoder(model):
            self._head = None  # it computes its own loss from full logits given labels
        self._verified = False

    def autocast(self):
        """The forward pass's precision context."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def loss_sum(self, batch: Batch) -> torch.Tensor:
        """Summed cross-entropy (nats) over the batch's scored positions, in fp32.

        The model's output layer sees the hidden states of the scored positions only (a
        forward pre-hook gathers them at ``batch.positions``), so the logits are
        ``(scored, vocab)``, not ``(batch, length, vocab)``. A model whose output layer does
        not take ``(batch, length, hidden)`` hidden states, or which reshapes its logits, is
        detected on the first batch (shapes only, no device synchronisation) and scored
        from its full logits from then on.
        """
        inputs = self._inputs(batch)
        if self._head is not None:
            try:
                logits = self._scored_logits(inputs, batch)
            except _NotPerPosition:
                logits = None
            if logits is not None and logits.dim() == 2 and logits.shape[0] == batch.scored:
                self._verified = True
                return torch.nn.functional.cross_entropy(
                    logits.float(), batch.scored_targets, reduction="sum")
            if self._verified:
                raise RuntimeError("the output layer's logits lost their per-position shape")
            self._head = None
        logits = self.model(**inputs).logits
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), batch.targets.reshape(-1),
            ignore_index=IGNORE, reduction="sum",
        )

    def _inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The forward's inputs: an encoder-decoder's ``labels`` become its decoder inputs
        (shifted right, as the model would), so that it computes no loss of its own."""
        if "labels" not in batch.inputs or self._decoder_inputs is None:
            return batch.inputs
        inputs = dict(batch.inputs)
        inputs["decoder_input_ids"] = self._decoder_inputs(labels=inputs.pop("labels"))
        return inputs

    def _scored_logits(self, inputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        n_positions = batch.targets.numel()

        def gather(_module, args):
            hidden = args[0]
            if hidden.numel() != n_positions * hidden.shape[-1]:
                raise _NotPerPosition
            flat = hidden.reshape(n_positions, hidden.shape[-1])
            return (flat.index_select(0, batch.positions), *args[1:])

        handle = self._head.register_forward_pre_hook(gather)
        try:
            return self.model(**inputs).logits
        finally:
            handle.remove()

    @torch.no_grad()
    def evaluate(self, batches: Sequence[Batch]) -> float:
        """Token-mean loss (nats) over every scored position of ``batches`` (one host
        synchronisation at the end).

        Raises:
            ConfigError: no position is scored (every target truncated).
        """
        self.model.eval()
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        scored = 0
        for batch in batches:
            with self.autocast():
                total += self.loss_sum(batch).double()
            scored += batch.scored
        if scored == 0:
            raise ConfigError("no token is scored in the evaluation split (all targets truncated?)")
        return float(total) / scored


class TrainEngine(Scorer):
    """Trains the parameters of ``model`` that require gradients, one optimizer step at a
    time, on batches already on the device.

    Args:
        model: the model, on ``device``.
        config: the fine-tuning settings (optimizer, precision, clipping, schedule).
        device: where the model lives.
        planned_steps: the schedule's length.
        warmup_steps: linear warmup steps.
    """

    def __init__(self, model: torch.nn.Module, config: FinetuneConfig, device: torch.device,
                 *, planned_steps: int, warmup_steps: int) -> None:
        super().__init__(model, config.precision, device)
        self.config = config
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = _adamw(self.params, config, device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, warmup=warmup_steps, total=planned_steps,
                                schedule=config.lr_schedule),
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        # Token-weighted sum of training losses since the last read, on the device.
        self._loss_sum = torch.zeros((), device=device)
        self._loss_weight = 0
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})

    def step(self, micro_batches: Sequence[Batch]) -> None:
        """One optimizer step over ``micro_batches`` (their gradients accumulated, each
        micro-batch's loss weighted by its share of the step's scored positions)."""
        self.model.train()
        scored = sum(b.scored for b in micro_batches)
        total = torch.zeros((), device=self.device)
        for batch in micro_batches:
            with self.autocast():
                loss = self.loss_sum(batch) / max(scored, 1)
            self.scaler.scale(loss).backward()
            total += loss.detach()
        if self.config.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm, foreach=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self._loss_sum += total * scored
        self._loss_weight += scored

    def read_train_loss(self) -> float:
        """Token-mean training loss since the last read (one host synchronisation)."""
        value = float(self._loss_sum) / max(self._loss_weight, 1)
        self._loss_sum.zero_()
        self._loss_weight = 0
        return value

    def snapshot(self) -> list[torch.Tensor]:
        """A copy of the trained parameters (kept on the device)."""
        return [p.detach().clone() for p in self.params]

    def restore(self, state: list[torch.Tensor]) -> None:
        """Put a :meth:`snapshot` back."""
        with torch.no_grad():
            torch._foreach_copy_(self.params, state)


class _NotPerPosition(Exception):
    """The output layer's input is not one hidden state per target position."""


def _output_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    try:
        head = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    return head if isinstance(head, torch.nn.Module) else None


def _is_encoder_decoder(model: torch.nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def check_finite(what: str, value: float, step: int) -> None:
    """Raise :class:`TrainingDiverged` for a non-finite loss."""
    if not math.isfinite(value):
        raise TrainingDiverged(f"training diverged: {what} loss {value} at step {step} "
                               "(lower `finetune.learning_rate`?)")


def _adamw(params: list[torch.nn.Parameter], config: FinetuneConfig,
           device: torch.device) -> torch.optim.Optimizer:
    kwargs = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if device.type in ("cuda", "cpu"):
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs)
        except (RuntimeError, TypeError):  # a dtype or device the fused kernel lacks
            pass
    return torch.optim.AdamW(params, foreach=True, **kwargs)
