"""Per-sample gradients, the empirical NTK and its spectrum."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import grad_and_value, vmap

from lensllm._version import __version__
from lensllm.exceptions import ConfigError, InputError
from lensllm.ntk._batched import (
    attention_implementation,
    batched_sketch_rows,
    linear_taps,
    resolve_precision,
)
from lensllm.ntk._memory import auto_chunk_size
from lensllm.ntk._outputs import make_output_fn, prepare_batch
from lensllm.ntk._params import prepare_model, trainable_parameters
from lensllm.ntk._projection import CountSketch
from lensllm.ntk.spectrum import NTKSpectrum

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DIM",
    "ENGINES",
    "EmpiricalNTK",
    "GradientChunk",
    "compute_ntk_features",
    "empirical_ntk",
    "per_sample_gradients",
    "spectrum_from_kernel",
]

#: Default projection dimension d.
DEFAULT_DIM = 4096
#: Chunk size of the ``vmap`` engine on a CPU (``chunk_size=None`` picks one from free
#: memory; see :mod:`lensllm.ntk._memory`).
DEFAULT_CHUNK_SIZE = 8
#: Per-example gradient engines: ``batched`` (one batched pass, hooks on linear layers; see
#: :mod:`lensllm.ntk._batched`), ``vmap`` (``torch.func``, any parameter), ``auto`` (batched
#: whenever every differentiated tensor belongs to a linear layer).
ENGINES = ("auto", "batched", "vmap")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GradientChunk:
    """Per-example gradients and outputs of consecutive probe examples.

    Attributes:
        start: index of the first example of the chunk in the probe batch.
        grads: parameter name -> gradient of ``f``, shape ``(chunk, *param_shape)``.
        outputs: ``f(x)`` of each example (mean target token log-likelihood), shape ``(chunk,)``.
    """

    start: int
    grads: dict[str, torch.Tensor]
    outputs: torch.Tensor


@dataclass(frozen=True)
class EmpiricalNTK:
    """The empirical NTK of a probe set.

    Attributes:
        theta: ``G G^T``, float64, shape ``(n_probe, n_probe)``.
        outputs: ``f0(x_i)``, float64, shape ``(n_probe,)``.
        residual: ``r0 = Y - f0 = -f0`` (``Y = 0``), the per-example mean token loss at the
            start, float64, shape ``(n_probe,)``.
        n_params: number of differentiated parameters ``p``.
        dim: projection dimension, or ``None`` for the exact kernel.
        dtype: dtype of the differentiated parameters, e.g. ``"float32"``.
        engine: the per-example gradient engine used (``"batched"`` or ``"vmap"``).
        precision: dtype of the forward/backward matrix products (``"bfloat16"`` under
            autocast, else the parameters' dtype); the kernel is accumulated in float64.
        chunk_size: examples per pass (the last one after any out-of-memory halving).
    """

    theta: torch.Tensor
    outputs: torch.Tensor
    residual: torch.Tensor
    n_params: int
    dim: int | None
    dtype: str
    engine: str = "vmap"
    precision: str = ""
    chunk_size: int = 0


def _check_chunk_size(chunk_size: int) -> int:
    if int(chunk_size) < 1:
        raise InputError(f"`chunk_size` must be >= 1, got {chunk_size}.")
    return int(chunk_size)


def _check_attention(module: torch.nn.Module) -> None:
    attn = getattr(getattr(module, "config", None), "_attn_implementation", None)
    if attn not in (None, "eager"):
        raise ConfigError(
            f"the model uses attn_implementation={attn!r}; per-example gradients need "
            f"'eager' attention (torch.func.vmap cannot trace the {attn} mask helpers): load "
            f"it with attn_implementation='eager' (lensllm.finetune.models.load_model does)."
        )


def _model_setup(module: torch.nn.Module, params: str, batch: Mapping[str, torch.Tensor]):
    _check_attention(module)
    prepared = prepare_batch(module, batch)
    keys = tuple(prepared)
    theta_params = trainable_parameters(module, params)
    buffers = {name: b for name, b in module.named_buffers()}
    output_fn = make_output_fn(module, buffers, keys)
    return prepared, keys, theta_params, output_fn


def per_sample_gradients(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    *,
    params: str = "all",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[GradientChunk]:
    """Yield the gradients of ``f(x)`` for each example, ``chunk_size`` examples at a time.

    Uses ``torch.func``: ``vmap(grad_and_value(f))`` over the examples of a chunk, with
    ``f(params, example)`` a ``functional_call`` of the model on one unbatched example. Peak
    memory is about ``chunk_size`` copies of the differentiated parameters plus one chunk of
    activations, whatever the number of examples. The model runs in eval mode (no dropout);
    its training flag is restored afterwards.

    Args:
        model: a transformers causal LM or encoder-decoder (or a peft model around one), loaded
            with ``attn_implementation="eager"`` (``sdpa`` with a mask breaks ``vmap``).
            Not wrapped here: for LoRA pass a peft model (see :func:`prepare_model`).
        batch: see :func:`lensllm.ntk.prepare_batch`.
        params: ``"all"`` (every parameter) or ``"lora"`` (parameters with ``requires_grad``).
        chunk_size: examples per ``vmap`` call.

    Yields:
        :class:`GradientChunk` in example order.

    Raises:
        ConfigError: the model does not use eager attention.
        InputError: a bad batch or ``chunk_size``.
    """
    chunk_size = _check_chunk_size(chunk_size)
    prepared, keys, theta_params, output_fn = _model_setup(model, params, batch)
    n = prepared["input_ids"].shape[0]
    per_example = vmap(grad_and_value(output_fn), in_dims=(None,) + (0,) * len(keys))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            example = tuple(prepared[k][start:stop] for k in keys)
            grads, values = per_example(theta_params, *example)
            yield GradientChunk(start, grads, values.detach())
    finally:
        model.train(was_training)


def _vmap_rows(module, batch, params, sketch, chunk_size, amp_dtype):
    """``(start, rows, outputs)`` per chunk from :func:`per_sample_gradients`, with the
    model switched to eager attention for the passes (``vmap`` cannot trace the fused
    kernels' mask helpers) and back to its own afterwards."""
    device = next(module.parameters()).device
    with attention_implementation(module, "eager"), torch.autocast(
            device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
        for chunk in per_sample_gradients(module, batch, params=params, chunk_size=chunk_size):
            if sketch is None:
                rows = torch.cat([g.reshape(g.shape[0], -1) for g in chunk.grads.values()], 1)
            else:
                rows = sketch.project(chunk.grads, out_dtype=torch.float64)
            yield chunk.start, rows, chunk.outputs


def _plan(module, batch, params, engine, precision, chunk_size):
    """Resolve the engine, the autocast dtype and the chunk size for a probe batch."""
    if engine not in ENGINES:
        raise ConfigError(f"`engine` must be one of {', '.join(ENGINES)}, got {engine!r}.")
    prepared = prepare_batch(module, batch)
    theta_params = trainable_parameters(module, params)
    first = next(iter(theta_params.values()))
    amp_dtype = resolve_precision(precision, first.device, first.dtype)
    taps = linear_taps(module, theta_params) if engine != "vmap" else None
    if engine == "batched" and taps is None:
        raise ConfigError(
            "engine='batched' needs every differentiated tensor to be a torch.nn.Linear "
            "weight or bias (LoRA adapters are); use engine='vmap' or 'auto'."
        )
    if chunk_size is None:
        chunk_size = auto_chunk_size(module, prepared, theta_params, amp_dtype)
    n_params = sum(t.numel() for t in theta_params.values())
    dtype = str(first.dtype).removeprefix("torch.")
    precision_name = str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else dtype
    return prepared, taps, amp_dtype, _check_chunk_size(chunk_size), n_params, dtype, \
        precision_name


def empirical_ntk(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    *,
    params: str = "lora",
    dim: int | None = DEFAULT_DIM,
    chunk_size: int | None = None,
    seed: int = 0,
    lora_config: Any = None,
    progress: Progress | None = None,
    engine: str = "auto",
    precision: str = "auto",
) -> EmpiricalNTK:
    """The empirical NTK ``Theta = G G^T`` of a probe batch, projected or exact.

    ``G`` has one row per probe example: the gradient of ``f(x)`` with respect to the
    differentiated parameters, sketched to ``dim`` dimensions by a seeded
    :class:`CountSketch` chunk by chunk (``dim=None``: kept exact, ``p`` columns; for small
    models and tests). ``Theta`` is accumulated in float64 whatever the precision of the
    forward and backward passes.

    Args:
        model: a transformers model loaded with ``attn_implementation="eager"``, or a peft
            model; with ``params="lora"`` a plain model is LoRA-wrapped (a copy, see
            :func:`lensllm.ntk.prepare_model`).
        batch: tokenised probe examples (see :func:`lensllm.ntk.prepare_batch`), ``n >= 2``.
        params: ``"lora"`` (default) or ``"all"``.
        dim: projection dimension ``d``, or ``None`` for no projection.
        chunk_size: examples per pass; ``None`` (default) picks it from free memory
            (:func:`lensllm.ntk._memory.auto_chunk_size`).
        seed: seed of the projection and of a LoRA initialisation.
        lora_config: a ``peft.LoraConfig`` for the wrapping (default: the runs' adapters,
            rank 8 on every linear layer).
        progress: called as ``progress(examples_done, n)`` after each chunk.
        engine: one of :data:`ENGINES` (default ``"auto"``).
        precision: ``"auto"`` (bfloat16 autocast on CUDA, else the model's dtype),
            ``"model"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    Returns:
        The kernel, the outputs and the residual, with the engine, precision and chunk used.

    Raises:
        InputError: bad batch, ``n < 2``, ``dim < 1`` or ``chunk_size < 1``.
        ConfigError: bad ``params``, ``engine`` or ``precision``, no LoRA targets, or
            attention other than eager.
    """
    if chunk_size is not None:
        chunk_size = _check_chunk_size(chunk_size)
    if dim is not None and int(dim) < 1:
        raise InputError(f"the projection dimension `dim` must be >= 1 or None, got {dim}.")
    module = prepare_model(model, params, lora_config=lora_config, seed=seed)
    n = int(torch.as_tensor(batch["input_ids"]).shape[0]) if "input_ids" in batch else 0
    if n < 2:
        raise InputError(f"the probe set needs at least 2 examples (`n` >= 2), got {n}.")
    prepared, taps, amp_dtype, chunk_size, n_params, dtype, precision_name = _plan(
        module, batch, params, engine, precision, chunk_size)
    first = next(module.parameters())
    sketch = CountSketch(dim, seed=seed, device=first.device) if dim is not None else None
    was_training = module.training
    module.eval()
    rows: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    try:
        if taps is not None:
            chunks = batched_sketch_rows(module, prepared, taps, sketch, chunk_size=chunk_size,
                                         amp_dtype=amp_dtype)
        else:
            chunks = _vmap_rows(module, batch, params, sketch, chunk_size, amp_dtype)
        for _, chunk_rows, chunk_outputs in chunks:
            rows.append(chunk_rows.to(torch.float64))
            outputs.append(chunk_outputs)
            if progress is not None:
                progress(sum(o.shape[0] for o in outputs), n)
    finally:
        module.train(was_training)
    used_chunk = max(o.shape[0] for o in outputs)
    return _kernel_from_rows(rows, outputs, n_params, dim, dtype,
                             "batched" if taps is not None else "vmap", precision_name,
                             used_chunk)


def _kernel_from_rows(rows, outputs, n_params, dim, dtype, engine, precision, chunk_size):
    g = torch.cat(rows).to(torch.float64)
    theta = g @ g.T
    theta = 0.5 * (theta + theta.T)  # exact symmetry for eigh
    f0 = torch.cat(outputs).to(torch.float64)
    if not torch.isfinite(theta).all() or not torch.isfinite(f0).all():
        raise InputError(
            "the kernel or the outputs are not finite (NaN/inf): check the model's weights and "
            "dtype (bfloat16/float16 gradients can overflow; use float32)."
        )
    return EmpiricalNTK(theta.cpu(), f0.cpu(), (-f0).cpu(), n_params, dim, dtype, engine,
                        precision, chunk_size)


def spectrum_from_kernel(
    theta: np.ndarray | torch.Tensor,
    residual: np.ndarray | torch.Tensor,
    *,
    eta: float | None = None,
    meta: Mapping[str, Any] | None = None,
) -> NTKSpectrum:
    """Eigendecompose ``Theta`` and project the residual: the 2n numbers the law needs.

    Args:
        theta: symmetric PSD kernel, shape ``(n, n)``.
        residual: ``r0``, shape ``(n,)``.
        eta: learning rate of the run, if known.
        meta: metadata to store.

    Returns:
        The spectrum, eigenvalues in descending order with ``proj_sq = (U^T r0)^2``.

    Raises:
        InputError: shapes that do not match.
    """
    th = np.asarray(theta.detach().cpu() if isinstance(theta, torch.Tensor) else theta,
                    dtype=np.float64)
    r0 = np.asarray(
        residual.detach().cpu() if isinstance(residual, torch.Tensor) else residual,
        dtype=np.float64,
    )
    if th.ndim != 2 or th.shape[0] != th.shape[1] or r0.shape != (th.shape[0],):
        raise InputError(
            f"`theta` must be (n, n) and `residual` (n,), got {th.shape} and {r0.shape}."
        )
    lam, u = np.linalg.eigh(0.5 * (th + th.T))
    lam, u = lam[::-1], u[:, ::-1]
    return NTKSpectrum(lam, (u.T @ r0) ** 2, eta=eta, meta=dict(meta or {}))


def compute_ntk_features(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    *,
    params: str = "lora",
    dim: int | None = DEFAULT_DIM,
    chunk_size: int | None = None,
    seed: int = 0,
    eta: float | None = None,
    lora_config: Any = None,
    progress: Progress | None = None,
    meta: Mapping[str, Any] | None = None,
    engine: str = "auto",
    precision: str = "auto",
) -> NTKSpectrum:
    """NTK features of a model on a probe batch: the eigenvalues of ``Theta`` and ``(U^T r0)^2``.

    This is :func:`empirical_ntk` followed by :func:`spectrum_from_kernel`. The result's
    :meth:`~lensllm.ntk.spectrum.NTKSpectrum.ntk_loss` gives ``F(t)`` for the LensLLM law.

    Args:
        model: see :func:`empirical_ntk`.
        batch: see :func:`empirical_ntk`.
        params: ``"lora"`` (default) or ``"all"``.
        dim: projection dimension (default 4096), ``None`` for the exact kernel.
        chunk_size: examples per pass (default: from free memory).
        seed: projection and LoRA-initialisation seed.
        eta: learning rate of the fine-tuning run, stored with the features.
        lora_config: LoRA config for wrapping a plain model.
        progress: ``progress(examples_done, n)`` after each chunk.
        meta: extra metadata (``model_id``, ``probe_seed``, ...); ``n``, ``dim``, ``params``,
            ``dtype``, ``n_params``, ``projection``, ``projection_seed``, ``output``,
            ``engine``, ``precision``, ``chunk_size`` and ``lensllm_version`` are filled in.
        engine: see :func:`empirical_ntk`.
        precision: see :func:`empirical_ntk`.

    Returns:
        The spectrum, shape ``(n,)`` arrays, with metadata.
    """
    ntk = empirical_ntk(
        model, batch, params=params, dim=dim, chunk_size=chunk_size, seed=seed,
        lora_config=lora_config, progress=progress, engine=engine, precision=precision,
    )
    info: dict[str, Any] = dict(meta or {})
    info.update(
        n=int(ntk.theta.shape[0]),
        dim=dim,
        params=params,
        dtype=ntk.dtype,
        n_params=int(ntk.n_params),
        projection="countsketch" if dim is not None else None,
        projection_seed=int(seed),
        output="mean target token log-likelihood; r0 = per-example mean token loss",
        initial_loss_mean=float(ntk.residual.mean()),
        engine=ntk.engine,
        precision=ntk.precision,
        chunk_size=ntk.chunk_size,
        lensllm_version=__version__,
    )
    return spectrum_from_kernel(ntk.theta, ntk.residual, eta=eta, meta=info)
