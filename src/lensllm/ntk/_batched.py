"""Per-example gradients of linear layers from one batched forward and backward pass.

Every differentiated tensor of a LoRA model (``lora_A``, ``lora_B``) is the weight of a
``torch.nn.Linear``, and the per-example gradient of a linear layer ``y = x W^T + b`` is a
contraction of what the ordinary backward pass already has (the trick Opacus uses):

    dW_i = sum_t  (df_i/dy_{i,t})^T x_{i,t},      db_i = sum_t df_i/dy_{i,t}

with ``x_{i,t}`` the layer's input at token ``t`` of example ``i``. Examples never interact
(attention is masked per example, the model is in eval mode), so the backward of
``sum_i f_i`` gives ``df_i/dy_i`` for every example at once. This engine runs the model
*batched* (no ``vmap``), so it can use fused attention kernels (``sdpa``) and autocast; hooks
on the differentiated layers contract ``x`` and ``dy`` in float32 and add the CountSketch of
each layer's per-example gradient to the running rows as soon as the backward pass reaches
the layer, then drop it: at most one layer's per-example gradients of one chunk exist at a
time. The backward pass is asked for the gradient of the input embeddings and of the
differentiated tensors only, so autograd skips every other weight gradient.

Measured against the ``vmap`` engine in ``docs/ntk.md`` (Costs); ``engine="auto"`` picks this
one whenever every differentiated tensor is a linear layer's weight or bias.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch

from lensllm.exceptions import ConfigError
from lensllm.ntk._outputs import batched_outputs
from lensllm.ntk._projection import CountSketch

__all__ = [
    "PRECISIONS",
    "attention_implementation",
    "batched_sketch_rows",
    "linear_taps",
    "resolve_precision",
]

#: Values of ``precision=``: ``auto`` is bfloat16 autocast on a CUDA device that supports
#: it (float32 weights stay float32), else the model's own dtype.
PRECISIONS = ("auto", "model", "float32", "bfloat16", "float16")


def resolve_precision(precision: str, device: torch.device, param_dtype: torch.dtype):
    """The autocast dtype of the forward and backward pass, or ``None`` for none.

    Args:
        precision: one of :data:`PRECISIONS`. ``"model"`` and ``"float32"`` run in the
            parameters' dtype; ``"bfloat16"``/``"float16"`` autocast the matrix products (the
            per-example gradients are still contracted and accumulated in float32 / float64).
        device: the model's device.
        param_dtype: the dtype of the model's parameters.

    Returns:
        ``torch.bfloat16``, ``torch.float16`` or ``None``.

    Raises:
        ConfigError: unknown ``precision``, or a float64 model asked for a lower precision.
    """
    if precision not in PRECISIONS:
        raise ConfigError(
            f"`precision` must be one of {', '.join(PRECISIONS)}, got {precision!r}."
        )
    if precision == "auto":
        use_bf16 = (device.type == "cuda" and param_dtype == torch.float32
                    and torch.cuda.is_bf16_supported())
        return torch.bfloat16 if use_bf16 else None
    if precision in ("model", "float32"):
        return None
    if param_dtype == torch.float64:
        raise ConfigError(f"`precision`={precision!r} on a float64 model: use 'model'.")
    return getattr(torch, precision)


def linear_taps(
    module: torch.nn.Module, theta_params: Mapping[str, torch.Tensor]
) -> dict[str, tuple[torch.nn.Linear, str]] | None:
    """Map each differentiated tensor to its ``torch.nn.Linear`` and attribute.

    Returns:
        name -> (linear module, ``"weight"`` or ``"bias"``), or ``None`` when some tensor is
        not a linear layer's weight or bias (embeddings, norms, GPT-2's Conv1D): the batched
        engine cannot take it and :func:`torch.func.vmap` must.
    """
    taps: dict[str, tuple[torch.nn.Linear, str]] = {}
    for name in theta_params:
        path, _, attr = name.rpartition(".")
        try:
            owner = module.get_submodule(path) if path else module
        except AttributeError:
            return None
        if not isinstance(owner, torch.nn.Linear) or attr not in ("weight", "bias"):
            return None
        taps[name] = (owner, attr)
    return taps


class _RowSink:
    """Per-example rows of one chunk: CountSketch rows ``(chunk, dim)`` or exact gradients."""

    def __init__(self, n: int, sketch: CountSketch | None, device: torch.device) -> None:
        self.sketch = sketch
        self.rows = (torch.zeros(n, sketch.dim, dtype=torch.float64, device=device)
                     if sketch is not None else None)
        self.exact: dict[str, torch.Tensor] = {}

    def add(self, name: str, grad: torch.Tensor) -> None:
        if self.sketch is not None:
            self.sketch.accumulate(self.rows, name, grad)
        else:
            flat = grad.reshape(grad.shape[0], -1).to(torch.float64)
            self.exact[name] = self.exact[name] + flat if name in self.exact else flat

    def result(self, order: list[str], n: int, device: torch.device) -> torch.Tensor:
        if self.rows is not None:
            return self.rows
        return torch.cat([self.exact.get(k, torch.zeros(n, 0, device=device)) for k in order], 1)


def _layer_hooks(taps, sink: _RowSink, n: int):
    """Forward hooks that register, on each tapped layer's output, a gradient hook that
    contracts input and output gradient into per-example weight/bias gradients."""
    by_module: dict[int, list[tuple[str, str]]] = {}
    modules: dict[int, torch.nn.Linear] = {}
    for name, (mod, attr) in taps.items():
        by_module.setdefault(id(mod), []).append((name, attr))
        modules[id(mod)] = mod

    def forward_hook(mod, inputs, output):
        if not output.requires_grad:
            return
        x = inputs[0].detach()
        # (n, ..., features), or (n * tokens, features) where a model flattens its batch
        # example-major before a layer (OPT's MLP); anything else cannot be split by example
        if x.shape[0] % n or output.shape[0] != x.shape[0] or (x.shape[0] != n and x.ndim != 2):
            raise ConfigError(
                f"layer {type(mod).__name__} sees a leading dimension {x.shape[0]} for a chunk "
                f"of {n} examples (the model reshapes its batch); use engine='vmap'."
            )

        def on_grad(dy: torch.Tensor) -> None:
            dyf = dy.reshape(n, -1, dy.shape[-1]).float()
            for name, attr in by_module[id(mod)]:
                if attr == "weight":
                    xf = x.reshape(n, -1, x.shape[-1]).float()
                    sink.add(name, torch.einsum("nto,nti->noi", dyf, xf))
                else:
                    sink.add(name, dyf.sum(dim=1))

        output.register_hook(on_grad)

    return [m.register_forward_hook(forward_hook) for m in modules.values()]


@contextlib.contextmanager
def attention_implementation(module: torch.nn.Module, impl: str) -> Iterator[None]:
    """Run a transformers model with attention ``impl`` (``"sdpa"`` or ``"eager"``) inside
    the block, and restore its own afterwards. The batched engine asks for ``sdpa`` (no
    ``vmap`` there, so fused kernels are allowed); the curvature asks for ``eager`` (fused
    kernels have no double backward). A model without that choice is left as it is."""
    base = module.get_base_model() if callable(getattr(module, "get_base_model", None)) else module
    before = getattr(getattr(base, "config", None), "_attn_implementation", None)
    switch = before in ("eager", "sdpa") and before != impl and callable(
        getattr(base, "set_attn_implementation", None))
    if switch:
        try:
            base.set_attn_implementation(impl)
        except (ValueError, ImportError):  # the architecture has no such path: keep its own
            switch = False
    try:
        yield
    finally:
        if switch:
            base.set_attn_implementation(before)


def _chunk_rows(module, prepared, taps, names, sink, amp_dtype):
    """One chunk: batched forward, backward to the input embeddings, rows from the hooks."""
    n = prepared["input_ids"].shape[0]
    entries: list[torch.Tensor] = []

    def embed_hook(_mod, _inputs, output):
        if not output.requires_grad:
            output = output.detach().requires_grad_()
        entries.append(output)
        return output

    handles = _layer_hooks(taps, sink, n)
    try:
        embeddings = module.get_input_embeddings()
    except (AttributeError, NotImplementedError):  # not a transformers model: the tapped
        embeddings = None  # tensors alone then define the paths the backward pass takes
    if embeddings is not None:
        handles.append(embeddings.register_forward_hook(embed_hook))
    device = prepared["input_ids"].device
    try:
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16,
                            enabled=amp_dtype is not None):
            outputs = batched_outputs(module, prepared)
        # every tapped layer must lie on a requested path: the input embeddings (no weight
        # gradient is computed) plus the tapped tensors that require grad (LoRA's: tiny)
        wanted = entries + [p for m, a in taps.values() if (p := getattr(m, a)).requires_grad]
        torch.autograd.grad(outputs.sum(), wanted, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    return sink.result(names, n, device), outputs.detach()


def batched_sketch_rows(
    module: torch.nn.Module,
    prepared: Mapping[str, torch.Tensor],
    taps: Mapping[str, tuple[torch.nn.Linear, str]],
    sketch: CountSketch | None,
    *,
    chunk_size: int,
    amp_dtype: torch.dtype | None,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(start, rows, outputs)`` per chunk of examples with the batched engine.

    ``rows`` are the sketched per-example gradients ``(chunk, dim)`` in float64 (or the exact
    gradients, ``(chunk, p)`` in the order of ``taps``, when ``sketch`` is None) and
    ``outputs`` are ``f(x)``. On a CUDA out-of-memory error the chunk is halved and retried.

    Args:
        module: the model to differentiate (eval mode), with eager or sdpa attention.
        prepared: the output of :func:`lensllm.ntk.prepare_batch`.
        taps: from :func:`linear_taps`.
        sketch: the projection, or None for exact rows.
        chunk_size: examples per batched pass.
        amp_dtype: autocast dtype (from :func:`resolve_precision`) or None.
    """
    names = list(taps)
    n_total = prepared["input_ids"].shape[0]
    start = 0
    with attention_implementation(module, "sdpa"):
        while start < n_total:
            stop = min(start + chunk_size, n_total)
            part = {k: v[start:stop] for k, v in prepared.items()}
            sink = _RowSink(stop - start, sketch, part["input_ids"].device)
            try:
                rows, outputs = _chunk_rows(module, part, taps, names, sink, amp_dtype)
            except torch.OutOfMemoryError:
                if chunk_size == 1:
                    raise
                del sink
                torch.cuda.empty_cache()
                chunk_size = max(1, chunk_size // 2)
                continue
            yield start, rows, outputs
            start = stop
