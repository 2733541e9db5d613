"""Frozen records the store reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RUN_STATUSES",
    "RunKey",
    "LossPoint",
    "RunResult",
    "RunFailure",
    "RunRecord",
    "NtkFeatures",
    "CostRecord",
]

#: Life cycle of a run: created ``pending``; ``running`` while a process holds its lease;
#: ``finished`` once its result is stored (never run again); ``failed`` after an error
#: (kept failed, with its reason and the compute it spent, until a command is asked to
#: retry it: ``--retry-failed``).
RUN_STATUSES = ("pending", "running", "finished", "failed")


@dataclass(frozen=True)
class RunKey:
    """What makes a run unique: the store holds at most one run per key.

    Attributes:
        model: the model id (``tiny:gpt2``, a hub id, ``gguf:smollm2``...).
        dataset: the dataset name.
        size: the number of training examples (0 for the zero-shot evaluation).
        seed: the run seed (subset order, adapter init, batch order).
        config_hash: hash of every setting that changes the result (learning rate, data
            file content, splits...), see :meth:`lensllm.finetune.config.FinetuneConfig.hash`.
        fingerprint: what the model id pointed at when the run was planned (for a local
            path a hash of its config and weight files' names, sizes and modification
            times; for a hub id the resolved revision; empty for ``tiny:`` ids), see
            :func:`lensllm.finetune.models.model_fingerprint`: changed weights are new runs.
    """

    model: str
    dataset: str
    size: int
    seed: int
    config_hash: str
    fingerprint: str = ""


@dataclass(frozen=True)
class LossPoint:
    """One measured loss: mean token loss on ``split`` after ``step`` optimiser steps.

    Attributes:
        step: optimiser steps done when measured.
        split: ``"train"`` (mean over the steps since the last point), ``"validation"`` or
            ``"test"``.
        loss: mean token cross-entropy (nats).
        tokens: training tokens processed so far.
    """

    step: int
    split: str
    loss: float
    tokens: int = 0


@dataclass(frozen=True)
class RunResult:
    """What a finished fine-tuning run measured.

    Attributes:
        test_loss: mean token loss on the test split with the early-stopped weights.
        steps: optimiser steps taken.
        train_tokens: non-padding tokens in the training batches processed (for an
            encoder-decoder: source plus target tokens).
        eval_tokens: non-padding tokens in every evaluation pass (validation and test).
        flops: ``6 * n_params * train_tokens + 2 * n_params * eval_tokens``.
        wall_time: seconds, model loading included.
        learning_rate: the peak learning rate.
        early_stop_step: the step whose weights were kept (best validation loss); 0 for a
            zero-shot evaluation.
        n_params: every parameter of the model as trained (base weights, frozen or not,
            plus adapters), tied tensors once.
        n_trainable: the trained parameters among them.
        base_params: the base model's parameters (the table's ``size`` column).
        family: a family name (config key or ``model_type``).
        device: where it ran (``cpu``, ``cuda``...).
        loss_points: the loss curve.
        test_scored_tokens: scored token positions the test loss is the mean over (None
            for runs stored before schema version 2).
        test_bytes: UTF-8 bytes of the scored test text (whole causal texts, seq2seq
            targets, chat assistant turns), counted without the tokenizer (None before
            schema version 2).
        test_truncated: test examples whose scored text ``max_length`` cut (None before
            schema version 2); their cut bytes are still in ``test_bytes``.
    """

    test_loss: float
    steps: int
    train_tokens: int
    eval_tokens: int
    flops: float
    wall_time: float
    learning_rate: float
    early_stop_step: int
    n_params: int
    n_trainable: int
    base_params: int
    family: str
    device: str = "cpu"
    loss_points: tuple[LossPoint, ...] = ()
    test_scored_tokens: int | None = None
    test_bytes: int | None = None
    test_truncated: int | None = None

    @property
    def test_loss_per_byte(self) -> float | None:
        """The test loss in nats per byte of scored text (None without byte counts):
        ``test_loss * test_scored_tokens / test_bytes``."""
        if not self.test_bytes or self.test_scored_tokens is None:
            return None
        return self.test_loss * self.test_scored_tokens / self.test_bytes

    def loss(self, unit: str) -> float | None:
        """The test loss in ``unit``: ``"nats_per_token"`` (:attr:`test_loss`) or
        ``"nats_per_byte"`` (:attr:`test_loss_per_byte`, None without byte counts)."""
        if unit == "nats_per_token":
            return self.test_loss
        if unit == "nats_per_byte":
            return self.test_loss_per_byte
        raise ValueError(f"unit must be 'nats_per_token' or 'nats_per_byte', got {unit!r}")


@dataclass(frozen=True)
class RunFailure:
    """Why a run failed and what it had spent when it did.

    Attributes:
        message: the reason; its first line is what summaries show.
        flops: FLOPs spent before the failure (same definition as :class:`RunResult`).
        wall_time: seconds, model loading included.
        tokens: training plus evaluation tokens processed before the failure.
    """

    message: str
    flops: float = 0.0
    wall_time: float = 0.0
    tokens: int = 0

    @property
    def reason(self) -> str:
        """The first line of the message."""
        return (self.message.strip().splitlines() or [""])[0]


@dataclass(frozen=True)
class RunRecord:
    """A run as stored, with its result once finished.

    Attributes:
        run_id: the store's id.
        key: the run's unique key.
        status: one of :data:`RUN_STATUSES`.
        attempts: how many times it was claimed.
        owner: the process that holds or held it (``host:pid:token``).
        created_at, started_at, finished_at: Unix times (None until reached).
        config: the run settings as stored (JSON object).
        result: the measurements, None unless ``status == "finished"``.
        error: the last error message of a failed attempt.
    """

    run_id: int
    key: RunKey
    status: str
    attempts: int
    owner: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    config: dict[str, Any] = field(default_factory=dict)
    result: RunResult | None = None
    error: str | None = None


@dataclass(frozen=True)
class NtkFeatures:
    """The NTK spectrum of one model on one probe set (2n numbers plus settings).

    Attributes:
        model: model id.
        dataset: dataset name the probe set came from.
        probe_seed: seed that picked the probe examples.
        n: number of probe examples.
        d: projection dimension.
        params_subset: which parameters the gradients cover (``"lora"``, ``"all"``...).
        dtype: dtype of the gradients (``"float32"``...).
        eigenvalues: kernel eigenvalues, shape ``(n,)``.
        projections: ``(u_k^T r0)^2`` per eigenvector, shape ``(n,)``.
        extra: anything else worth keeping (timings, learning rate...), JSON-able.
        ntk_id: the store's id (None before it is stored).
        settings: a key of the other settings that change the features (learning rate,
            the runs' config, sequence length, adapters...; see
            :func:`lensllm.ntk.stored.spectrum_to_record`), part of the record's identity:
            spectra of two configs are two records, not one replacing the other.
    """

    model: str
    dataset: str
    probe_seed: int
    n: int
    d: int
    params_subset: str
    dtype: str
    eigenvalues: tuple[float, ...]
    projections: tuple[float, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    ntk_id: int | None = None
    settings: str = ""


@dataclass(frozen=True)
class CostRecord:
    """Compute spent on one measurement.

    Attributes:
        kind: ``"finetune"``, ``"zero_shot"``, ``"ntk"``...
        model: model id.
        dataset: dataset name.
        flops: floating point operations.
        wall_time: seconds.
        tokens: tokens processed.
        run_id: the run it belongs to, if any.
        created_at: Unix time.
    """

    kind: str
    model: str
    dataset: str
    flops: float
    wall_time: float
    tokens: int = 0
    run_id: int | None = None
    created_at: float = 0.0
