"""Which parameters the kernel differentiates: LoRA adapters (default) or all of them."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch

from lensllm.exceptions import ConfigError
from lensllm.finetune import lora as _lora

__all__ = [
    "PARAM_SUBSETS",
    "default_lora_config",
    "prepare_model",
    "trainable_parameters",
]

#: The parameter subsets ``params=`` accepts.
PARAM_SUBSETS = ("lora", "all")


def _is_peft_model(model: torch.nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is part of the finetune extra
        return False
    return isinstance(model, PeftModel)


def default_lora_config(model: torch.nn.Module) -> Any:
    """The LoRA config used for ``params="lora"`` when the model has no adapters yet.

    The adapters a fine-tuning run trains by default (the ``lora_*`` defaults of
    :class:`~lensllm.finetune.config.FinetuneConfig`: rank 8, alpha 16, no dropout, every
    linear layer but the head, ``"all-linear"``), built by
    :func:`lensllm.finetune.lora.lora_config`, the one LoRA builder; GPT-2's ``Conv1D``
    projections get ``fan_in_fan_out``. So the kernel is taken over the parameters a run
    trains.
    """
    from lensllm.finetune.config import FinetuneConfig

    run = FinetuneConfig()
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return _lora.lora_config(r=run.lora_r, alpha=run.lora_alpha, dropout=run.lora_dropout,
                             targets=run.lora_target_modules, model_type=model_type)


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
        ConfigError: unknown ``params``, or peft cannot adapt this model.
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
        warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
        torch.manual_seed(seed)
        try:
            wrapped = get_peft_model(copy.deepcopy(model), config)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"`params`='lora': cannot add LoRA adapters to "
                f"{type(model).__name__}: {exc}; wrap the model with peft yourself or use "
                f"params='all'."
            ) from None
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
