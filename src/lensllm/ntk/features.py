"""The one entry point to NTK features: load a model, encode a probe set, measure the kernel's
spectrum and its cost; ``lensllm ntk`` and the ``lensllm select`` pipeline both call it.

Cost is counted one way for every caller (docs/design.md, section 5): one forward and one backward
pass through the whole model per probe token, ``flops = 6 * n_params * tokens``, where
``tokens`` counts the source tokens and, for an encoder-decoder, the scored target tokens
too. It is stored in the spectrum's ``meta`` (``flops``, ``tokens``, ``wall_time_s``) and,
by :func:`record_ntk`, as a ``kind="ntk"`` cost record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lensllm.ntk.spectrum import NTKSpectrum
from lensllm.ntk.stored import spectrum_to_record
from lensllm.store import BaseStore, CostRecord

__all__ = ["measure_ntk", "record_ntk"]


def measure_ntk(
    model_id: str,
    probe: Sequence[Mapping[str, str]],
    kind: str,
    *,
    params: str,
    dim: int | None,
    seed: int,
    eta: float | None,
    max_length: int,
    chunk_size: int | None = None,
    dtype: str = "float32",
    lora: Callable[[Any], Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    meta: Mapping[str, Any] | None = None,
    engine: str = "auto",
    precision: str = "auto",
    curvature: bool = False,
    device: str = "auto",
) -> NTKSpectrum:
    """NTK features of ``model_id`` on the probe examples, with their counted cost.

    Args:
        model_id: any id :func:`lensllm.finetune.models.load_model` accepts.
        probe: the probe examples (``n >= 2``; see :func:`lensllm.ntk.select_probe`).
        kind: the task kind (``"text"`` or ``"seq2seq"``).
        params: ``"lora"`` or ``"all"``.
        dim: projection dimension, None for the exact kernel.
        seed: projection and LoRA-initialisation seed.
        eta: learning rate of the fine-tuning runs (``t`` of ``F(t)`` is then in steps).
        max_length: tokens per probe sequence (per side for seq2seq).
        chunk_size: examples per pass (None: chosen from free memory).
        dtype: parameter dtype name (``float32``, ``float64``, ``bfloat16``).
        lora: ``lora(model) -> peft.LoraConfig`` for ``params="lora"`` (default: the
            library default of :func:`lensllm.ntk.default_lora_config`).
        progress: ``progress(examples_done, n)`` after each chunk.
        meta: metadata stored with the spectrum (``model_id``, ``probe_seed``...).
        engine: per-example gradient engine (see :func:`lensllm.ntk.empirical_ntk`).
        precision: precision of the passes (see :func:`lensllm.ntk.empirical_ntk`).
        curvature: also measure the Hessian diagnostics
            (:func:`lensllm.ntk.hessian_curvature`, defaults) into ``meta["curvature"]``.
        device: where the passes run, a ``finetune.device`` setting (``"auto"``: CUDA when
            present, else the CPU), as the fine-tuning runs; the kernel comes back on the
            host.

    Returns:
        The spectrum; ``meta`` gains ``wall_time_s`` (with the curvature's, when asked),
        ``tokens``, ``flops`` (the kernel's count) and ``device``.

    Raises:
        ConfigError: ``device`` names a device this machine lacks.

    The model is loaded with ``sdpa`` attention; the passes that need eager attention
    (``vmap``, the curvature's double backward) switch to it for their duration.
    """
    start = time.perf_counter()
    from lensllm.finetune.models import count_parameters
    from lensllm.ntk._kernel import compute_ntk_features

    model, batch, encdec, where = _load_probe(model_id, probe, kind, dtype=dtype,
                                              device=device, max_length=max_length)
    lora_config = lora(model) if (params == "lora" and lora is not None) else None
    spectrum = compute_ntk_features(
        model, batch, params=params, dim=dim, chunk_size=chunk_size, seed=seed, eta=eta,
        lora_config=lora_config, progress=progress, meta=meta, engine=engine,
        precision=precision)
    extra: dict[str, Any] = {}
    if curvature:
        from lensllm.ntk._curvature import hessian_curvature

        extra["curvature"] = hessian_curvature(model, batch, params=params,
                                               lora_config=lora_config, seed=seed).to_dict()
    tokens = int(batch["attention_mask"].sum())
    if encdec:
        tokens += int((batch["labels"] != -100).sum())
    flops = 6.0 * count_parameters(model) * tokens
    wall = time.perf_counter() - start
    return NTKSpectrum(spectrum.eigenvalues, spectrum.proj_sq, eta=spectrum.eta,
                       meta={**spectrum.meta, "wall_time_s": round(wall, 3), "tokens": tokens,
                             "flops": flops, "device": str(where), **extra})


def _load_probe(model_id: str, probe: Sequence[Mapping[str, str]], kind: str, *, dtype: str,
                device: str, max_length: int):
    """``(model, encoded probes, is encoder-decoder, device)``: the model loaded with
    ``sdpa`` attention (see :func:`_load_fused`) and put on the device (a missing device
    fails before the model is loaded), the probes encoded as the runs encode them."""
    import torch

    from lensllm.finetune.data import encode_examples
    from lensllm.finetune.engine import resolve_device
    from lensllm.finetune.models import is_encoder_decoder

    where = resolve_device(device)
    model, tokenizer = _load_fused(model_id, getattr(torch, dtype))
    model.to(where)
    encdec = is_encoder_decoder(model)
    batch = encode_examples(tokenizer, probe, kind, max_length=max_length,
                            is_encoder_decoder=encdec)
    return model, batch, encdec, where


def _load_fused(model_id: str, dtype: Any):
    """The model with ``sdpa`` attention, or ``eager`` for an architecture without it."""
    from lensllm.exceptions import ConfigError
    from lensllm.finetune.models import load_model

    try:
        return load_model(model_id, attn_implementation="sdpa", dtype=dtype)
    except ConfigError as exc:
        if "sdpa" not in str(exc).lower() and "attention" not in str(exc).lower():
            raise
        return load_model(model_id, attn_implementation="eager", dtype=dtype)


def record_ntk(store: BaseStore, spectrum: NTKSpectrum, *, dataset: str) -> None:
    """Store a measured spectrum and its cost (``kind="ntk"``) under ``dataset``."""
    meta = spectrum.meta
    store.record_ntk(spectrum_to_record(spectrum, dataset=dataset))
    store.record_cost(CostRecord(kind="ntk", model=str(meta["model_id"]), dataset=dataset,
                                 flops=float(meta["flops"]), wall_time=float(meta["wall_time_s"]),
                                 tokens=int(meta["tokens"]), created_at=time.time()))
