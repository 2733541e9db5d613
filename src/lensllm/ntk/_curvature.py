"""Curvature of the fine-tuning loss on the probe set: per-layer Hessian traces, top eigenvalue.

LensLLM's PAC-Bayes bound ties the pre-power to power phase transition to the Hessian of the
fine-tuning loss, through a curvature term that sums Hessian terms over layers. This module
measures, for the differentiated parameters (the LoRA adapters by default, as for the
kernel) and the loss ``L = mean_i loss_i`` over probe examples (``loss_i`` the example's
mean token loss, ``= -f(x_i)``):

- the top eigenvalue of the Hessian ``H``, by Lanczos with full reorthogonalisation
  (``steps`` Hessian-vector products); the largest Ritz value converges fast to the
  largest eigenvalue;
- the trace of every layer's diagonal block ``H_ll`` (``tr(P_l H)``, ``P_l`` the 0/1
  selector of the layer's coordinates), by Hutchinson's estimator *deflated* by the Lanczos
  basis ``Q`` (the idea of Hutch++, Meyer et al. 2021, with a Krylov basis instead of a
  random range):

      tr(P_l H) = tr(P_l Q T Q^T) + tr(P_l X),   T = Q^T H Q,  X = H - Q T Q^T,

  the first term exact (``T`` is Lanczos' tridiagonal matrix), the second estimated with
  ``probes`` Rademacher vectors ``g``: ``mean_g (P_l g) . (X g)``. A Hessian whose trace is
  carried by a few large eigenvalues (the usual case) leaves little in ``X``, where plain
  Hutchinson would need hundreds of probes for a few percent. The standard error of each
  layer's estimate is returned with it.

Hessian-vector products are reverse-over-reverse through :mod:`torch.func`
(``vjp(grad(L))``), in the parameters' dtype (no autocast: second derivatives in bfloat16
are not worth having), with eager attention (fused attention kernels have no double
backward). Exactness is tested against ``torch.func.hessian`` in float64.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call, grad, vjp, vmap

from lensllm.exceptions import InputError
from lensllm.ntk._batched import attention_implementation
from lensllm.ntk._memory import auto_chunk_size
from lensllm.ntk._outputs import batched_outputs, prepare_batch
from lensllm.ntk._params import prepare_model, trainable_parameters

__all__ = [
    "DEFAULT_CURVATURE_EXAMPLES",
    "DEFAULT_EXACT_TRACE_PARAMS",
    "DEFAULT_HUTCHINSON_PROBES",
    "DEFAULT_LANCZOS_STEPS",
    "Curvature",
    "hessian_curvature",
    "layer_of",
]

#: Lanczos steps (Hessian-vector products) for the top eigenvalue and the deflation basis.
DEFAULT_LANCZOS_STEPS = 30
#: Rademacher probes of the deflated Hutchinson estimator.
DEFAULT_HUTCHINSON_PROBES = 30
#: Up to this many differentiated parameters the per-layer traces are exact (the diagonal of
#: ``H`` from one Hessian-vector product per parameter); above, they are estimated. Chosen by
#: cost: on the tiny test models (512-544 parameters) the exact diagonal takes about as long
#: as the 60 products of the estimate, and no model a user fine-tunes is this small.
DEFAULT_EXACT_TRACE_PARAMS = 1024
#: Coordinates per vmapped batch of the exact diagonal.
EXACT_TRACE_BATCH = 64
#: Probe examples the loss is taken over (the first ones of the probe set, which is nested).
DEFAULT_CURVATURE_EXAMPLES = 8
#: Memory of one example in the Hessian-vector products, in units of the activation estimate
#: of :func:`lensllm.ntk._memory.example_bytes` (measured: 775 MB per example on the 25M
#: Llama of the benchmark at 256 tokens, float32, against an estimate of 113 MB).
CURVATURE_ACTIVATION_FACTOR = 7.0

_LAYER = re.compile(r"(?:^|\.)(layers|layer|h|block|blocks)\.(\d+)\.")


def layer_of(name: str) -> str:
    """The layer a parameter belongs to, e.g. ``"layers.3"`` or ``"decoder.block.1"``;
    ``"other"`` for parameters outside the repeated blocks (embeddings, head)."""
    match = _LAYER.search(name)
    if match is None:
        return "other"
    side = next((s for s in ("encoder", "decoder") if f"{s}." in name[: match.start() + 1]), "")
    return f"{side + '.' if side else ''}{match.group(1)}.{match.group(2)}"


@dataclass(frozen=True)
class Curvature:
    """Hessian diagnostics of the fine-tuning loss on a probe set.

    Attributes:
        layer_trace: layer -> estimated ``tr(H_ll)`` (nats per squared parameter unit).
        layer_trace_stderr: layer -> standard error of that estimate (the deflated part's).
        top_eigenvalue: largest eigenvalue of ``H`` (largest Ritz value).
        n_examples: probe examples in the loss.
        n_params: differentiated parameters.
        lanczos_steps: Lanczos steps taken (fewer when the Krylov space closes).
        probes: Hutchinson probes (0 when the traces are exact).
        hvps: Hessian-vector products computed.
        trace_method: ``"exact"`` (diagonal of ``H``, standard errors 0) or
            ``"hutchinson"`` (Lanczos-deflated estimate).
        wall_time_s: seconds.
    """

    layer_trace: dict[str, float]
    layer_trace_stderr: dict[str, float]
    top_eigenvalue: float
    n_examples: int
    n_params: int
    lanczos_steps: int
    probes: int
    hvps: int
    wall_time_s: float
    trace_method: str = "hutchinson"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trace(self) -> float:
        """``tr(H)``: the sum of the layer traces."""
        return float(sum(self.layer_trace.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the features' ``meta["curvature"]``)."""
        return {
            "layer_trace": dict(self.layer_trace),
            "layer_trace_stderr": dict(self.layer_trace_stderr),
            "trace": self.trace,
            "top_eigenvalue": self.top_eigenvalue,
            "n_examples": self.n_examples,
            "n_params": self.n_params,
            "lanczos_steps": self.lanczos_steps,
            "probes": self.probes,
            "hvps": self.hvps,
            "wall_time_s": self.wall_time_s,
            "loss": "mean over probe examples of the per-example mean token loss",
            "trace_method": self.trace_method,
            "method": "Lanczos top eigenvalue; layer traces "
                      + ("exact (diagonal of H)" if self.trace_method == "exact"
                         else "by Lanczos-deflated Hutchinson"),
            **self.extra,
        }


def _hvp_operator(module, prepared, theta, chunk_size) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> H v`` on flat vectors for ``L = mean_i loss_i`` over the prepared examples."""
    names = list(theta)
    shapes = [theta[k].shape for k in names]
    sizes = [theta[k].numel() for k in names]
    n = prepared["input_ids"].shape[0]

    def chunk_grad_fn(part):
        def loss(params):
            return -batched_outputs(_Bound(module, params), part).sum() / n
        return grad(loss)

    parts = [{k: v[s : s + chunk_size] for k, v in prepared.items()}
             for s in range(0, n, chunk_size)]
    cached = [vjp(chunk_grad_fn(parts[0]), dict(theta))[1]] if len(parts) == 1 else None

    def hvp(flat: torch.Tensor) -> torch.Tensor:
        v = {k: t.reshape(s) for k, t, s in zip(names, torch.split(flat, sizes), shapes,
                                                 strict=True)}
        total = torch.zeros_like(flat)
        fns = cached or (vjp(chunk_grad_fn(p), dict(theta))[1] for p in parts)
        for fn in fns:
            out = fn(v)[0]
            total += torch.cat([out[k].reshape(-1) for k in names])
        return total

    return hvp


class _Bound(torch.nn.Module):
    """The module called with ``params`` substituted (``functional_call``), batched."""

    def __init__(self, module: torch.nn.Module, params: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self._module = (module,)
        self._params = params

    @property
    def config(self):
        return getattr(self._module[0], "config", None)

    def forward(self, **kwargs):
        return functional_call(self._module[0], dict(self._params), (), kwargs, strict=False)


def lanczos(hvp, p: int, steps: int, *, dtype, device, seed: int):
    """Lanczos with full reorthogonalisation from a seeded Gaussian start.

    Returns:
        ``(Q, T)``: orthonormal basis ``(p, k)`` and tridiagonal ``T = Q^T H Q`` ``(k, k)``.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(p, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    basis = [q / torch.linalg.norm(q)]
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(min(steps, p)):
        w = hvp(basis[j])
        alphas.append(float(w @ basis[j]))
        q_mat = torch.stack(basis, dim=1)
        for _ in range(2):  # full reorthogonalisation, twice for round-off
            w = w - q_mat @ (q_mat.T @ w)
        beta = float(torch.linalg.norm(w))
        scale = max(abs(a) for a in alphas) or 1.0
        if j == min(steps, p) - 1 or beta <= 1e-10 * scale:
            break
        betas.append(beta)
        basis.append(w / beta)
    k = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    off = torch.tensor(betas[: k - 1], dtype=torch.float64)
    t += torch.diag(off, 1) + torch.diag(off, -1)
    return torch.stack(basis[:k], dim=1), t


def _layer_traces(hvp, q_mat, t, groups, probes, seed):
    """Per-layer ``tr(P_l H)``: exact on the Lanczos space, Hutchinson on the rest."""
    qt = (q_mat.to(torch.float64) @ t.to(q_mat.device)).to(q_mat.dtype)  # t lives on the CPU
    diag_low_rank = (qt * q_mat).sum(dim=1)  # diag(Q T Q^T)
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    p = q_mat.shape[0]
    samples = torch.zeros(probes, len(groups), dtype=torch.float64)
    t_dev = t.to(device=q_mat.device, dtype=q_mat.dtype)
    for j in range(probes):
        g = (torch.randint(0, 2, (p,), generator=gen) * 2 - 1).to(q_mat.device, q_mat.dtype)
        xg = hvp(g) - q_mat @ (t_dev @ (q_mat.T @ g))
        contrib = g * xg
        for col, idx in enumerate(groups.values()):
            samples[j, col] = float(contrib[idx].sum())
    traces, errors = {}, {}
    for col, (layer, idx) in enumerate(groups.items()):
        est = float(diag_low_rank[idx].sum()) + float(samples[:, col].mean())
        traces[layer] = est
        errors[layer] = float(samples[:, col].std() / math.sqrt(probes)) if probes > 1 else 0.0
    return traces, errors


def _exact_layer_traces(hvp, p, groups, *, dtype, device, batch: int = EXACT_TRACE_BATCH):
    """Per-layer ``tr(P_l H)`` from the exact diagonal of ``H``: one Hessian-vector product
    per coordinate (``H e_i``, its ``i``-th entry), ``batch`` of them at a time under
    :func:`torch.func.vmap`. Standard errors are 0."""
    diag = torch.empty(p, dtype=dtype, device=device)
    batched = vmap(hvp)
    for start in range(0, p, batch):
        cols = torch.arange(start, min(start + batch, p), device=device)
        basis = torch.zeros(len(cols), p, dtype=dtype, device=device)
        basis[torch.arange(len(cols), device=device), cols] = 1
        diag[cols] = batched(basis)[torch.arange(len(cols), device=device), cols]
    traces = {layer: float(diag[idx].to(torch.float64).sum()) for layer, idx in groups.items()}
    return traces, dict.fromkeys(traces, 0.0)


def _check_at_least(**checks: tuple[int, int]) -> None:
    """``InputError`` naming the first setting below its lower bound."""
    for name, (value, low) in checks.items():
        if int(value) < low:
            raise InputError(f"`{name}` must be >= {low}, got {value}.")


def _layer_index(theta: Mapping[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Per layer, the positions of its parameters in the flattened parameter vector."""
    groups: dict[str, list[torch.Tensor]] = {}
    offset = 0
    for name, tensor in theta.items():
        groups.setdefault(layer_of(name), []).append(
            torch.arange(offset, offset + tensor.numel(), device=device))
        offset += tensor.numel()
    return {k: torch.cat(v) for k, v in groups.items()}


def hessian_curvature(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    *,
    params: str = "lora",
    lora_config: Any = None,
    n_examples: int | None = DEFAULT_CURVATURE_EXAMPLES,
    steps: int = DEFAULT_LANCZOS_STEPS,
    probes: int = DEFAULT_HUTCHINSON_PROBES,
    chunk_size: int | None = None,
    seed: int = 0,
    exact_max: int = DEFAULT_EXACT_TRACE_PARAMS,
) -> Curvature:
    """Per-layer Hessian traces and the top Hessian eigenvalue of the probe-set loss.

    Args:
        model: as for :func:`lensllm.ntk.empirical_ntk` (a plain model is LoRA-wrapped on a
            copy with the runs' default adapters, seeded by ``seed``).
        batch: the tokenised probe set; its first ``n_examples`` examples are used.
        params: ``"lora"`` (default) or ``"all"``.
        lora_config: LoRA config for wrapping a plain model.
        n_examples: examples in the loss (default 8; ``None``: all).
        steps: Lanczos steps (>= 1).
        probes: Hutchinson probes on the deflated remainder (>= 0).
        chunk_size: examples per forward (None: from free memory, planning
            :data:`CURVATURE_ACTIVATION_FACTOR` times a backward pass's activations per
            example). With one chunk the gradient graph is built once and reused by every
            Hessian-vector product; with several it is rebuilt per product (slower, less
            memory).
        seed: seed of the Lanczos start, the probes and a LoRA initialisation.
        exact_max: with at most this many differentiated parameters the layer traces are
            exact (one Hessian-vector product per parameter, batched with vmap; ``probes``
            unused), above it estimated with ``probes`` probes (0: always estimated).

    Returns:
        The diagnostics.

    Raises:
        InputError: ``steps < 1``, ``probes < 0``, ``n_examples < 1`` or ``chunk_size < 1``.
    """
    _check_at_least(steps=(steps, 1), probes=(probes, 0), chunk_size=(chunk_size or 1, 1),
                    n_examples=(n_examples or 1, 1))
    start = time.perf_counter()
    module = prepare_model(model, params, lora_config=lora_config, seed=seed)
    prepared = prepare_batch(module, batch)
    if n_examples is not None:
        prepared = {k: v[:n_examples] for k, v in prepared.items()}
    theta = trainable_parameters(module, params)
    first = next(iter(theta.values()))
    p = sum(t.numel() for t in theta.values())
    if chunk_size is None:
        chunk_size = auto_chunk_size(module, prepared, theta, None,
                                     activation_factor=CURVATURE_ACTIVATION_FACTOR)
    index = _layer_index(theta, first.device)
    was_training = module.training
    module.eval()
    calls = [0]
    try:
        with attention_implementation(module, "eager"):
            raw = _hvp_operator(module, prepared, theta, chunk_size)

            def hvp(v):
                calls[0] += 1
                return raw(v)

            q_mat, t = lanczos(hvp, p, steps, dtype=first.dtype, device=first.device, seed=seed)
            exact = p <= exact_max
            if exact:
                traces, errors = _exact_layer_traces(raw, p, index, dtype=first.dtype,
                                                     device=first.device)
                calls[0] += p
            else:
                traces, errors = _layer_traces(hvp, q_mat, t, index, probes, seed)
    finally:
        module.train(was_training)
    return _diagnostics(traces, errors, t, n=int(prepared["input_ids"].shape[0]), p=p,
                        probes=0 if exact else int(probes), calls=calls[0], start=start,
                        exact=exact)


def _diagnostics(traces, errors, t, *, n, p, probes, calls, start, exact) -> Curvature:
    """The :class:`Curvature` record, refusing non-finite values."""
    top = float(torch.linalg.eigvalsh(t).max())
    if not math.isfinite(top) or not all(math.isfinite(v) for v in traces.values()):
        raise InputError("the Hessian diagnostics are not finite (NaN/inf): check the model.")
    return Curvature(traces, errors, top, n, p, int(t.shape[0]), probes, calls,
                     round(time.perf_counter() - start, 3),
                     trace_method="exact" if exact else "hutchinson")
