"""The per-example output f(x) and the batch layout the kernel needs.

``f(x)`` is the example's *mean token log-likelihood of its target*:

- causal LM: labels follow the Hugging Face convention (``labels`` aligned with
  ``input_ids``, the model predicts ``labels[t + 1]`` from positions ``<= t``, -100 marks a
  position that is not scored, such as a prompt or padding), so
  ``f(x) = mean_{t: labels[t+1] != -100} log p(labels[t+1] | x_{<=t})``;
- seq2seq: ``f(x) = mean_{t: labels[t] != -100} log p(labels[t] | source, labels_{<t})``
  with the decoder inputs built by the model's own right shift of the labels.

Padding never changes ``f``: padded positions carry label -100, keys are masked in attention,
and padding is moved to the right, where causal attention cannot see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch.func import functional_call

from lensllm.exceptions import InputError
from lensllm.finetune.models import is_encoder_decoder

__all__ = ["batched_outputs", "make_output_fn", "prepare_batch"]

IGNORE_INDEX = -100


def _base_model(module: torch.nn.Module) -> torch.nn.Module:
    get_base = getattr(module, "get_base_model", None)
    return get_base() if callable(get_base) else module


def _right_pad(mask: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Move each row's unmasked entries to the front (stable), so padding is on the right."""
    order = torch.sort((mask == 0).to(torch.int8), dim=1, stable=True).indices
    return tuple(torch.gather(t, 1, order) for t in (mask, *tensors))


def prepare_batch(
    module: torch.nn.Module, batch: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Check a tokenised batch and lay it out for the per-example output function.

    Args:
        module: the model (used for its device, dtype and architecture).
        batch: ``input_ids`` ``(n, seq_len)`` (int), ``labels`` ``(n, seq_len)`` for causal LMs
            or ``(n, target_len)`` for seq2seq (int, -100 = not scored), and optionally
            ``attention_mask`` ``(n, seq_len)`` (1 = token, 0 = padding; default all ones).
            Left padding is accepted and moved to the right.

    Returns:
        Causal: ``input_ids``, ``attention_mask``, ``labels``. Seq2seq: ``input_ids``,
        ``attention_mask`` as an additive float mask ``(n, 1, 1, seq_len)`` (a prepared mask
        is passed through by transformers, which keeps ``vmap`` away from its data-dependent
        mask helpers), ``decoder_input_ids`` and ``labels``. All on the model's device.

    Raises:
        InputError: a missing key, wrong dtype or shape, or an example with no scored token;
            the message names the key or the example index.
    """
    for key in ("input_ids", "labels"):
        if key not in batch:
            raise InputError(f"the probe batch needs `{key}`; got keys {sorted(batch)}.")
    param = next(module.parameters())
    device, dtype = param.device, param.dtype
    input_ids = torch.as_tensor(batch["input_ids"])
    labels = torch.as_tensor(batch["labels"])
    mask = batch.get("attention_mask")
    mask = torch.ones_like(input_ids) if mask is None else torch.as_tensor(mask)
    for key, t in (("input_ids", input_ids), ("labels", labels), ("attention_mask", mask)):
        if t.dtype.is_floating_point or t.dtype.is_complex or t.ndim != 2:
            raise InputError(
                f"`{key}` must be a 2-D integer tensor (n_examples, length), got dtype "
                f"{t.dtype} and shape {tuple(t.shape)}."
            )
    if mask.shape != input_ids.shape:
        raise InputError(
            f"`attention_mask` has shape {tuple(mask.shape)}, `input_ids` {tuple(input_ids.shape)}."
        )
    n = input_ids.shape[0]
    if labels.shape[0] != n:
        raise InputError(f"`labels` has {labels.shape[0]} rows, `input_ids` {n}.")
    enc_dec = is_encoder_decoder(module)
    if not enc_dec and labels.shape != input_ids.shape:
        raise InputError(
            f"causal LM: `labels` must have the shape of `input_ids` {tuple(input_ids.shape)}, "
            f"got {tuple(labels.shape)}."
        )
    if enc_dec:
        mask, input_ids = _right_pad(mask, input_ids)
        scored = labels != IGNORE_INDEX
    else:
        labels = torch.where(mask.bool(), labels, torch.full_like(labels, IGNORE_INDEX))
        mask, input_ids, labels = _right_pad(mask, input_ids, labels)
        scored = labels[:, 1:] != IGNORE_INDEX
    empty = torch.nonzero(scored.sum(dim=1) == 0).flatten().tolist()
    if empty:
        raise InputError(
            f"probe example(s) {empty[:10]} have no scored target token (all labels are -100 "
            f"or the text is a single token); f(x) is undefined for them."
        )
    out = {"input_ids": input_ids.to(device), "labels": labels.to(device)}
    if enc_dec:
        base = _base_model(module)
        decoder_input_ids = base.prepare_decoder_input_ids_from_labels(labels=labels.to(device))
        additive = (1.0 - mask.to(dtype)) * torch.finfo(dtype).min
        out["attention_mask"] = additive[:, None, None, :].to(device)
        out["decoder_input_ids"] = decoder_input_ids
    else:
        out["attention_mask"] = mask.to(device)
    return out


def _mean_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over scored positions of log p(label); ``logits`` (length, vocab), ``labels`` (length,)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    scored = labels != IGNORE_INDEX
    token_logp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (token_logp * scored).sum() / scored.sum()


def make_output_fn(
    module: torch.nn.Module, buffers: Mapping[str, torch.Tensor], keys: tuple[str, ...]
) -> Callable[..., torch.Tensor]:
    """Build ``f(params, *example) -> scalar``, the output of one unbatched example.

    The function is written for :func:`torch.func.grad` and :func:`torch.func.vmap`:
    ``params`` is a dict of the differentiated tensors (the rest of the module's parameters
    and its buffers are taken from the module), each example tensor has no batch dimension.

    Args:
        module: the (possibly peft-wrapped) model, in eval mode.
        buffers: the module's buffers, passed to ``functional_call``.
        keys: the batch keys in the order the example tensors are passed (from
            :func:`prepare_batch`).

    Returns:
        The output function.
    """
    enc_dec = is_encoder_decoder(module)

    def output(params: dict[str, torch.Tensor], *example: torch.Tensor) -> torch.Tensor:
        ex = dict(zip(keys, example, strict=True))
        labels = ex.pop("labels")
        kwargs = {k: v.unsqueeze(0) for k, v in ex.items()}
        kwargs["use_cache"] = False
        logits = functional_call(module, (params, buffers), (), kwargs, strict=False).logits[0]
        if enc_dec:
            return _mean_log_likelihood(logits, labels)
        return _mean_log_likelihood(logits[:-1], labels[1:])

    return output


def batched_outputs(module: torch.nn.Module, prepared: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``f(x_i)`` of every example of a prepared batch from one ordinary batched forward.

    The same quantity as :func:`make_output_fn` (mean target token log-likelihood), for the
    engines that do not ``vmap`` over examples (:mod:`lensllm.ntk._batched`, the curvature
    diagnostics). Examples never interact: attention is masked per example and the model is
    in eval mode, so ``d f_i / d activations of example j`` is zero for ``i != j``.

    Args:
        module: the (possibly peft-wrapped) model.
        prepared: the output of :func:`prepare_batch`.

    Returns:
        ``f``, float32 (or float64 for a float64 model), shape ``(n,)``.
    """
    kwargs = {k: v for k, v in prepared.items() if k != "labels"}
    kwargs["use_cache"] = False
    labels = prepared["labels"]
    logits = module(**kwargs).logits
    if not is_encoder_decoder(module):
        logits, labels = logits[:, :-1], labels[:, 1:]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    token_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
        ignore_index=IGNORE_INDEX, reduction="none",
    ).reshape(labels.shape)
    scored = (labels != IGNORE_INDEX).to(token_loss.dtype)
    return -(token_loss * scored).sum(dim=1) / scored.sum(dim=1)
