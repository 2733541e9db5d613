"""Which parameters the kernel differentiates: LoRA adapters (default) or all of them."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch

from lensllm.exceptions import ConfigError

__all__ = [
    "DEFAULT_LORA_ALPHA",
    "DEFAULT_LORA_RANK",
    "PARAM_SUBSETS",
    "default_lora_config",
    "prepare_model",
    "trainable_parameters",
]

#: The parameter subsets ``params=`` accepts.
PARAM_SUBSETS = ("lora", "all")
#: LoRA rank used when the model is not already a peft model.
DEFAULT_LORA_RANK = 8
#: LoRA alpha (scale alpha / rank = 2) used when the model is not already a peft model.
DEFAULT_LORA_ALPHA = 16


def _is_peft_model(model: torch.nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is part of the finetune extra
        return False
    return isinstance(model, PeftModel)


def default_lora_config(model: torch.nn.Module) -> Any:
    """The LoRA config used for ``params="lora"`` when the model has no adapters yet.

    Rank :data:`DEFAULT_LORA_RANK`, alpha :data:`DEFAULT_LORA_ALPHA`, no dropout, no bias,
    and peft's default target modules for the architecture: the attention query/value
    projections (``c_attn`` for GPT-2, ``q_proj``/``v_proj`` for OPT, Llama, BART and most
    decoders, ``q``/``v`` for T5).

    Raises:
        ConfigError: peft has no default targets for this architecture (pass a peft model,
            or ``params="all"``).
    """
    from peft import LoraConfig
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if not targets:
        raise ConfigError(
            f"`params`='lora': peft has no default LoRA target modules for model type "
            f"{model_type!r}; wrap the model with peft yourself or use params='all'."
        )
    return LoraConfig(
        r=DEFAULT_LORA_RANK,
        lora_alpha=DEFAULT_LORA_ALPHA,
        lora_dropout=0.0,
        bias="none",
        target_modules=list(targets),
        fan_in_fan_out=model_type == "gpt2",  # GPT-2 stores its projections as Conv1D
    )


def prepare_model(
    model: torch.nn.Module, params: str, *, lora_config: Any = None, seed: int = 0
) -> torch.nn.Module:
    """Return the module whose trainable parameters define the kernel.

    - ``params="all"``: the model itself; every parameter is differentiated.
    - ``params="lora"``: the model if it is already a ``peft.PeftModel`` (its trainable
      adapters are used), else a LoRA-wrapped *deep copy* (the caller's model is never
      modified). LoRA initialises ``B = 0``, so at the start of fine-tuning only the ``B``
      matrices have non-zero gradients; the kernel is that of the LoRA parameterisation.
      The random ``A`` matrices are drawn from ``seed``.

    Args:
        model: a transformers model or a peft model.
        params: ``"lora"`` or ``"all"``.
        lora_config: a ``peft.LoraConfig``; default :func:`default_lora_config`.
        seed: seed of the LoRA initialisation.

    Returns:
        The module to differentiate.

    Raises:
        ConfigError: unknown ``params``, or no LoRA targets for this architecture.
    """
    if params not in PARAM_SUBSETS:
        raise ConfigError(f"`params` must be one of {', '.join(PARAM_SUBSETS)}, got {params!r}.")
    if params == "all" or _is_peft_model(model):
        return model
    from peft import get_peft_model

    config = lora_config if lora_config is not None else default_lora_config(model)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # peft reads a transformers attribute deprecated in v5; not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        torch.manual_seed(seed)
        wrapped = get_peft_model(copy.deepcopy(model), config)
    return wrapped.train(model.training)  # peft may switch to train mode (dropout)


def trainable_parameters(module: torch.nn.Module, params: str) -> dict[str, torch.Tensor]:
    """The parameters to differentiate, by name (tied tensors appear once).

    Args:
        module: the output of :func:`prepare_model`.
        params: ``"lora"`` (parameters with ``requires_grad``) or ``"all"``.

    Returns:
        name -> detached parameter tensor.

    Raises:
        ConfigError: the subset is empty.
    """
    named = module.named_parameters()
    chosen = {
        name: p.detach() for name, p in named if params == "all" or p.requires_grad
    }
    if not chosen:
        raise ConfigError(
            f"`params`={params!r}: the model has no trainable parameters to differentiate."
        )
    return chosen
