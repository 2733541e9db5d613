"""NTK features of a candidate for ``lensllm select``: computed once, kept in the store.

The probe set is drawn (seeded) from the experiment's training pool, encoded exactly as the
fine-tuning runs encode it, and ``eta`` is the fine-tuning learning rate, so that the
LensLLM law's ``t`` is in optimizer steps. A stored spectrum is reused when the model,
dataset, probe settings, ``eta`` and the experiment's config hash all match.
"""

from __future__ import annotations

import time
from typing import Any

from lensllm.spectrum import NTKSpectrum
from lensllm.store import BaseStore, CostRecord

__all__ = ["candidate_spectrum"]


def candidate_spectrum(model_id: str, prepared: Any, settings: Any, store: BaseStore,
                       *, threads: int | None = 1) -> NTKSpectrum:
    """The NTK spectrum of ``model_id`` on the experiment's probe set (from the store, or
    computed and stored with its cost).

    Args:
        model_id: the candidate.
        prepared: the prepared experiment (task, splits, fine-tuning settings).
        settings: :class:`lensllm.selectrun.config.NtkSettings`.
        store: the store.
        threads: torch threads.
    """
    config = prepared.config
    dataset = config.data.name
    eta = float(config.finetune.learning_rate)
    dim = settings.dim or 0
    params = settings.params
    if params == "auto":  # the kernel of the parameters the runs train
        params = "lora" if config.finetune.method == "lora" else "all"
    for rec in store.get_ntk(model=model_id, dataset=dataset):
        extra = rec.extra or {}
        if (rec.probe_seed == settings.seed and rec.n == settings.n and rec.d == dim
                and rec.params_subset == params and extra.get("eta") == eta
                and extra.get("config_hash") == prepared.config_hash):
            return NTKSpectrum.from_store_features(rec)

    import torch

    from lensllm.finetune.data import encode_examples, split_indices
    from lensllm.finetune.models import count_parameters, is_encoder_decoder, load_model
    from lensllm.finetune.train import lora_config
    from lensllm.ntk import compute_ntk_features, select_probe

    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    task = prepared.task
    split = split_indices(len(task), n_validation=config.data.validation_size,
                          n_test=config.data.test_size, seed=config.data.split_seed)
    pool = [task.examples[i] for i in split.train]
    probe = select_probe(pool, min(settings.n, len(pool)), settings.seed)
    model, tokenizer = load_model(model_id, attn_implementation="eager")
    encdec = is_encoder_decoder(model)
    batch = encode_examples(tokenizer, probe, task.kind, max_length=config.finetune.max_length,
                            is_encoder_decoder=encdec)
    spectrum = compute_ntk_features(
        model, batch, params=params, dim=settings.dim or None,
        lora_config=lora_config(config.finetune, encdec) if params == "lora" else None,
        chunk_size=settings.chunk_size, seed=settings.seed, eta=eta,
        meta={"model_id": model_id, "probe_seed": settings.seed,
              "config_hash": prepared.config_hash, "max_length": config.finetune.max_length})
    wall = time.perf_counter() - start
    tokens = int(batch["attention_mask"].sum())
    flops = 6.0 * count_parameters(model) * tokens  # a forward and a backward per example
    spectrum = NTKSpectrum(spectrum.eigenvalues, spectrum.proj_sq, eta=spectrum.eta,
                           meta={**spectrum.meta, "wall_time_s": round(wall, 3),
                                 "tokens": tokens, "flops": flops})
    store.record_ntk(spectrum.to_store_features(dataset=dataset))
    store.record_cost(CostRecord(kind="ntk", model=model_id, dataset=dataset, flops=flops,
                                 wall_time=wall, tokens=tokens, created_at=time.time()))
    return spectrum
