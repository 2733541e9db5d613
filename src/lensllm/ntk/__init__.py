"""Empirical neural tangent kernel features of Hugging Face models (needs torch).

The LensLLM law ``L(D) = B / (F(Theta, t) + D^beta) + E`` needs ``F(Theta, t)``, the squared
residual of the linearised model after ``t`` steps. This package measures ``Theta`` on a probe
set and returns its spectrum as a torch-free :class:`lensllm.spectrum.NTKSpectrum`:

>>> from lensllm.ntk import compute_ntk_features          # doctest: +SKIP
>>> spec = compute_ntk_features(model, batch, params="lora", dim=4096, eta=2e-4)
>>> spec.ntk_loss([0, 100, 1000])                          # F(t) for the law

Steps (definitions and costs in ``docs/ntk.md``): draw a seeded probe set
(:func:`select_probe`), compute per-sample gradients of ``f(x)`` (mean target token
log-likelihood) with ``torch.func`` in chunks (:func:`per_sample_gradients`), sketch each chunk
to ``dim`` dimensions (:class:`CountSketch`), form ``Theta = G G^T`` (:func:`empirical_ntk`) and
eigendecompose it (:func:`spectrum_from_kernel`).
"""

from __future__ import annotations

from lensllm.ntk._kernel import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DIM,
    EmpiricalNTK,
    GradientChunk,
    compute_ntk_features,
    empirical_ntk,
    per_sample_gradients,
    spectrum_from_kernel,
)
from lensllm.ntk._outputs import make_output_fn, prepare_batch
from lensllm.ntk._params import (
    DEFAULT_LORA_ALPHA,
    DEFAULT_LORA_RANK,
    PARAM_SUBSETS,
    default_lora_config,
    prepare_model,
    trainable_parameters,
)
from lensllm.ntk._probe import probe_indices, select_probe
from lensllm.ntk._projection import CountSketch
from lensllm.spectrum import NTKSpectrum

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DIM",
    "DEFAULT_LORA_ALPHA",
    "DEFAULT_LORA_RANK",
    "PARAM_SUBSETS",
    "CountSketch",
    "EmpiricalNTK",
    "GradientChunk",
    "NTKSpectrum",
    "compute_ntk_features",
    "default_lora_config",
    "empirical_ntk",
    "make_output_fn",
    "per_sample_gradients",
    "prepare_batch",
    "prepare_model",
    "probe_indices",
    "select_probe",
    "spectrum_from_kernel",
    "trainable_parameters",
]
