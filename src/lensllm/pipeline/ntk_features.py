"""NTK features of a candidate for ``lensllm select``: computed once, kept in the store.

The probe set is drawn (seeded) from the experiment's training pool, encoded exactly as the
fine-tuning runs encode it, and ``eta`` is the fine-tuning learning rate, so that the
LensLLM law's ``t`` is in optimizer steps. A stored spectrum is reused when the model,
dataset, probe settings, ``eta`` and the experiment's config hash all match.
"""

from __future__ import annotations

from typing import Any

from lensllm.ntk import NTKSpectrum, spectrum_from_record
from lensllm.store import BaseStore

__all__ = ["candidate_spectrum"]


def candidate_spectrum(model_id: str, prepared: Any, settings: Any, store: BaseStore,
                       *, threads: int | None = 1) -> NTKSpectrum:
    """The NTK spectrum of ``model_id`` on the experiment's probe set (from the store, or
    computed and stored with its cost).

    Args:
        model_id: the candidate.
        prepared: the prepared experiment (task, splits, fine-tuning settings).
        settings: :class:`lensllm.pipeline.config.NtkSettings`.
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
                and extra.get("config_hash") == prepared.config_hash
                and (not settings.curvature or "curvature" in extra)):
            return spectrum_from_record(rec)

    import torch

    from lensllm.finetune.data import split_indices
    from lensllm.finetune.lora import run_lora_config
    from lensllm.finetune.models import is_encoder_decoder
    from lensllm.ntk import measure_ntk, record_ntk, select_probe

    if threads is not None:
        torch.set_num_threads(threads)
    task = prepared.task
    split = split_indices(len(task), n_validation=config.data.validation_size,
                          n_test=config.data.test_size, seed=config.data.split_seed)
    pool = [task.examples[i] for i in split.train]
    spectrum = measure_ntk(
        model_id, select_probe(pool, settings.n, settings.seed), task.kind,
        params=params, dim=settings.dim or None, seed=settings.seed, eta=eta,
        max_length=config.finetune.max_length, chunk_size=settings.chunk_size,
        lora=lambda model: run_lora_config(config.finetune, is_encoder_decoder(model)),
        curvature=settings.curvature, device=config.finetune.device,
        meta={"model_id": model_id, "probe_seed": settings.seed,
              "config_hash": prepared.config_hash, "max_length": config.finetune.max_length})
    record_ntk(store, spectrum, dataset=dataset)
    return spectrum
