"""All NTK code: the empirical neural tangent kernel, its spectrum, F(t) and their cost.

The LensLLM law ``L(D) = B / (F(Theta, t) + D^beta) + E`` needs ``F(Theta, t)``, the squared
residual of the linearised model after ``t`` steps. This package measures ``Theta`` on a probe
set and returns its spectrum as a torch-free :class:`NTKSpectrum`:

>>> from lensllm.ntk import measure_ntk, select_probe             # doctest: +SKIP
>>> spec = measure_ntk("tiny:gpt2", select_probe(examples, 64, 0), "text", params="lora",
...                    dim=4096, seed=0, eta=2e-4, max_length=128)
>>> spec.ntk_loss([0, 100, 1000])                                # F(t) for the law

Two faces, like peft's lazy backends:

- torch-free, imported eagerly: :class:`NTKSpectrum` (:mod:`lensllm.ntk.spectrum`; ``F(t)``
  by the laws' one formula) and its store records (:mod:`lensllm.ntk.stored`);
- torch, imported on first use of a name: :func:`measure_ntk` (the entry point of
  ``lensllm ntk`` and the pipeline: load, encode, kernel, cost), :func:`select_probe`,
  per-sample gradients (:func:`per_sample_gradients`), the sketch (:class:`CountSketch`),
  ``Theta = G G^T`` (:func:`empirical_ntk`) and its eigendecomposition
  (:func:`spectrum_from_kernel`). Definitions and costs: ``docs/ntk.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from lensllm.ntk.spectrum import NTKSpectrum
from lensllm.ntk.stored import spectrum_from_record, spectrum_to_record

#: Torch-side public names and the private module defining each (imported on first use).
_LAZY = {
    "DEFAULT_CHUNK_SIZE": "_kernel", "DEFAULT_DIM": "_kernel", "EmpiricalNTK": "_kernel",
    "GradientChunk": "_kernel", "compute_ntk_features": "_kernel",
    "empirical_ntk": "_kernel", "per_sample_gradients": "_kernel",
    "spectrum_from_kernel": "_kernel", "make_output_fn": "_outputs",
    "prepare_batch": "_outputs", "PARAM_SUBSETS": "_params",
    "default_lora_config": "_params", "prepare_model": "_params",
    "trainable_parameters": "_params", "probe_indices": "_probe", "select_probe": "_probe",
    "CountSketch": "_projection", "measure_ntk": "features", "record_ntk": "features",
    "ENGINES": "_kernel", "PRECISIONS": "_batched", "Curvature": "_curvature",
    "hessian_curvature": "_curvature", "layer_of": "_curvature",
    "DEFAULT_CURVATURE_EXAMPLES": "_curvature", "DEFAULT_HUTCHINSON_PROBES": "_curvature",
    "DEFAULT_LANCZOS_STEPS": "_curvature",
}

__all__ = ["NTKSpectrum", "spectrum_from_record", "spectrum_to_record", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lensllm.ntk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lensllm.ntk.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
