"""Chunk sizes chosen from free memory: how many probe examples to push through at once.

A chunk of ``k`` examples holds ``k`` examples' activations for the backward pass plus, for
one layer at a time, their per-example gradients. The activation estimate is the standard
one for a transformer layer (Korthikanti et al., 2022, "Reducing activation recomputation
in large transformer models"): about ``T * (34 h + 5 a T)`` bytes per layer for ``T`` tokens
of width ``h`` and ``a`` heads in 16-bit, i.e. ``T * (17 h + 2.5 a T)`` elements, scaled here
by the element size, plus the logits (kept in float32 for the log-softmax and its gradient).
Half of the free memory is planned for (the rest is headroom for the allocator and the
estimate's error); a CUDA out-of-memory error still halves the chunk and retries
(:func:`lensllm.ntk._batched.batched_sketch_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["CPU_MAX_CHUNK", "auto_chunk_size", "example_bytes", "free_memory_bytes"]

#: On a CPU, larger chunks do not run faster (no parallel units to fill); keep them small.
CPU_MAX_CHUNK = 8
#: Fraction of the free memory a chunk may plan to use.
MEMORY_FRACTION = 0.5


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of ``device`` in bytes (CUDA: ``mem_get_info``; CPU: ``MemAvailable``)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return 4 * 1024**3


def example_bytes(config, tokens: int, elt_bytes: int, max_layer_numel: int) -> int:
    """Estimated bytes one example adds to a batched forward and backward pass.

    Args:
        config: the transformers config (``hidden_size``/``n_embd``/``d_model``,
            ``num_hidden_layers``/``n_layer``/``num_layers``, heads, ``vocab_size``).
        tokens: tokens per example (source plus target for encoder-decoders).
        elt_bytes: bytes per activation element (2 under bf16/fp16 autocast).
        max_layer_numel: the largest differentiated tensor (its per-example gradient, float32,
            exists while that layer is reached by the backward pass).

    Returns:
        Bytes, an estimate.
    """
    def first(*names: str, default: int) -> int:
        for name in names:
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return default

    hidden = first("hidden_size", "n_embd", "d_model", default=1024)
    layers = first("num_hidden_layers", "n_layer", "num_layers", default=24)
    layers += first("num_decoder_layers", "decoder_layers", default=0)
    heads = first("num_attention_heads", "n_head", "num_heads", default=16)
    vocab = first("vocab_size", default=32000)
    per_layer = tokens * (17 * hidden + 2.5 * heads * tokens) * elt_bytes
    logits = tokens * vocab * (elt_bytes + 3 * 4)  # logits, float32 copy, log-softmax, grad
    return int(layers * per_layer + logits + 2 * 4 * max_layer_numel)


def auto_chunk_size(
    module: torch.nn.Module,
    prepared: Mapping[str, torch.Tensor],
    theta_params: Mapping[str, torch.Tensor],
    amp_dtype: torch.dtype | None,
    *,
    activation_factor: float = 1.0,
) -> int:
    """Examples per chunk: as many as half the free memory holds, at least 1, at most ``n``
    (at most :data:`CPU_MAX_CHUNK` on a CPU).

    Args:
        module: the model (its config and parameter dtype).
        prepared: the prepared probe batch (its token counts and device).
        theta_params: the differentiated tensors.
        amp_dtype: the autocast dtype, or None.
        activation_factor: multiplies the per-example estimate (the curvature's
            double-backward graph holds several times a backward pass's activations).

    Returns:
        The chunk size.
    """
    ids = prepared["input_ids"]
    n, tokens = int(ids.shape[0]), int(ids.shape[1])
    if "decoder_input_ids" in prepared:
        tokens += int(prepared["decoder_input_ids"].shape[1])
    elt = (torch.finfo(amp_dtype).bits if amp_dtype is not None
           else torch.finfo(next(iter(theta_params.values())).dtype).bits) // 8
    largest = max(t.numel() for t in theta_params.values())
    per_example = activation_factor * example_bytes(getattr(module, "config", None), tokens,
                                                    elt, largest)
    budget = MEMORY_FRACTION * free_memory_bytes(ids.device)
    cap = n if ids.device.type == "cuda" else min(n, CPU_MAX_CHUNK)
    return max(1, min(cap, int(budget // max(per_example, 1))))
