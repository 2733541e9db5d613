"""The one LoRA config builder, shared by fine-tuning runs and NTK features.

A run and the NTK features of that run must wrap the model in the same adapters, or the
kernel is taken over parameters the run never trains. Every ``peft.LoraConfig`` in lensllm is
built here: :func:`lora_config` from explicit settings, :func:`run_lora_config` from a run's
:class:`~lensllm.finetune.config.FinetuneConfig`, and :func:`add_lora` wraps a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lensllm.exceptions import ConfigError

__all__ = ["DEFAULT_LORA_ALPHA", "DEFAULT_LORA_RANK", "add_lora", "default_lora_targets",
           "lora_config", "run_lora_config"]

#: LoRA rank when none is given (``lensllm ntk`` and NTK features of a plain model).
DEFAULT_LORA_RANK = 8
#: LoRA alpha when none is given (scale alpha / rank = 2).
DEFAULT_LORA_ALPHA = 16


def default_lora_targets(model_type: str | None) -> list[str]:
    """peft's default target modules for an architecture (attention query/value projections).

    Raises:
        ConfigError: peft has no default for ``model_type``.
    """
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if not targets:
        raise ConfigError(
            f"`params`='lora': peft has no default LoRA target modules for model type "
            f"{model_type!r}; wrap the model with peft yourself or use params='all'."
        )
    return list(targets)


def lora_config(*, r: int = DEFAULT_LORA_RANK, alpha: float = DEFAULT_LORA_ALPHA,
                dropout: float = 0.0, targets: str | Sequence[str] | None = None,
                encoder_decoder: bool | None = None, model_type: str | None = None) -> Any:
    """A ``peft.LoraConfig``.

    Args:
        r, alpha, dropout: rank, scale numerator and dropout of the adapters.
        targets: module names, ``"all-linear"``, or None: peft's default for ``model_type``
            when it is given (resolved here, so the config records it), else left to peft.
        encoder_decoder: sets peft's task type (seq2seq or causal LM) when given.
        model_type: the transformers ``model_type``; GPT-2 stores its projections as
            ``Conv1D`` and gets ``fan_in_fan_out``.
    """
    from peft import LoraConfig, TaskType

    if targets is None and model_type is not None:
        targets = default_lora_targets(model_type)
    if isinstance(targets, (tuple, set)):
        targets = sorted(targets) if isinstance(targets, set) else list(targets)
    extra: dict[str, Any] = {}
    if encoder_decoder is not None:
        extra["task_type"] = TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM
    if model_type is not None:
        extra["fan_in_fan_out"] = model_type == "gpt2"
        extra["bias"] = "none"
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                      **extra)


def run_lora_config(config: Any, encoder_decoder: bool) -> Any:
    """The LoRA config of a fine-tuning run (:class:`FinetuneConfig` ``lora_*`` settings)."""
    return lora_config(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                       targets=config.lora_target_modules, encoder_decoder=encoder_decoder)


def add_lora(model: Any, config: Any, encoder_decoder: bool) -> Any:
    """``model`` wrapped in the adapters of a run's config.

    Raises:
        ConfigError: peft cannot add the adapters (unknown target modules...).
    """
    from peft import get_peft_model

    try:
        return get_peft_model(model, run_lora_config(config, encoder_decoder))
    except ValueError as exc:
        raise ConfigError(f"cannot add LoRA adapters: {exc}") from None
