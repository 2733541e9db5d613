"""Curvature diagnostics against the exact Hessian (torch.func.hessian, float64, tiny models)."""

from __future__ import annotations

import pytest
import torch
from ntk_tiny import build_tiny, make_batch

from lensllm.exceptions import InputError
from lensllm.ntk import prepare_batch, prepare_model
from lensllm.ntk._batched import attention_implementation
from lensllm.ntk._curvature import _Bound, hessian_curvature, layer_of
from lensllm.ntk._outputs import batched_outputs
from lensllm.ntk._params import trainable_parameters


def _exact_hessian(module, batch):
    """The full Hessian of mean_i loss_i over the trainable parameters, float64."""
    prepared = prepare_batch(module, batch)
    theta = trainable_parameters(module, "lora")
    names = list(theta)
    sizes = [theta[k].numel() for k in names]
    shapes = [theta[k].shape for k in names]
    flat0 = torch.cat([theta[k].reshape(-1) for k in names])

    def loss(flat):
        params = {k: t.reshape(s) for k, t, s in zip(names, torch.split(flat, sizes), shapes,
                                                      strict=True)}
        return -batched_outputs(_Bound(module, params), prepared).mean()

    with attention_implementation(module, "eager"):
        hess = torch.func.hessian(loss)(flat0)
    groups: dict[str, list[int]] = {}
    offset = 0
    for k in names:
        groups.setdefault(layer_of(k), []).extend(range(offset, offset + theta[k].numel()))
        offset += theta[k].numel()
    return hess, groups


def _case(arch):
    from peft import LoraConfig

    model = build_tiny(arch, d=8, layers=2, dtype=torch.float64)
    # rank 2 on every linear layer: 544 (Llama) / 512 (GPT-2) adapter parameters, so the
    # exact Hessian is cheap
    config = LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules="all-linear",
                        fan_in_fan_out=arch == "gpt2")
    peft_model = prepare_model(model, "lora", lora_config=config, seed=0)
    batch = make_batch(arch, [6, 5, 4], seed=2)
    hess, groups = _exact_hessian(peft_model, batch)
    return peft_model, batch, hess, groups


@pytest.fixture(scope="module")
def llama_case():
    return _case("llama")


@pytest.fixture(scope="module")
def gpt2_case():
    return _case("gpt2")


def test_layer_names():
    assert layer_of("base_model.model.model.layers.3.mlp.up_proj.lora_B.default.weight") == \
        "layers.3"
    assert layer_of("transformer.h.0.attn.c_attn.lora_A.default.weight") == "h.0"
    assert layer_of("decoder.block.1.layer.0.SelfAttention.q.weight") == "decoder.block.1"
    assert layer_of("model.embed_tokens.weight") == "other"


def test_top_eigenvalue_matches_the_exact_hessian(llama_case):
    module, batch, hess, _ = llama_case
    curv = hessian_curvature(module, batch, n_examples=None)
    exact = float(torch.linalg.eigvalsh(hess).max())
    assert abs(curv.top_eigenvalue - exact) <= 1e-3 * abs(exact)
    # 544 parameters <= DEFAULT_EXACT_TRACE_PARAMS: the traces take one product per parameter
    assert curv.trace_method == "exact" and curv.probes == 0
    assert curv.hvps == curv.lanczos_steps + hess.shape[0]


@pytest.mark.parametrize("case", ["llama_case", "gpt2_case"])
def test_layer_traces_at_default_settings_are_within_5_percent(case, request):
    module, batch, hess, groups = request.getfixturevalue(case)
    curv = hessian_curvature(module, batch, n_examples=None)
    assert set(curv.layer_trace) == set(groups)
    for layer, idx in groups.items():
        exact = float(hess.diagonal()[idx].sum())
        assert abs(curv.layer_trace[layer] - exact) <= 0.05 * abs(exact), (layer, exact, curv)
        assert curv.layer_trace_stderr[layer] == 0.0


def test_layer_traces_are_exact_when_the_krylov_space_is_complete(llama_case):
    module, batch, hess, groups = llama_case
    p = hess.shape[0]
    curv = hessian_curvature(module, batch, n_examples=None, steps=p + 5, probes=2,
                             exact_max=0)
    # the Krylov space may close early (repeated eigenvalues: the A-A block is zero at B = 0),
    # leaving a sliver to the two probes: exact to ~1e-5 rather than to round-off
    for layer, idx in groups.items():
        exact = float(hess.diagonal()[idx].sum())
        assert curv.layer_trace[layer] == pytest.approx(exact, rel=1e-4)
    assert curv.trace == pytest.approx(float(hess.diagonal().sum()), rel=1e-4)


def test_estimated_layer_traces_are_within_their_standard_errors(llama_case):
    """Above DEFAULT_EXACT_TRACE_PARAMS (forced here with exact_max=0) the traces are the
    Lanczos-deflated Hutchinson estimate: unbiased, with an honest standard error."""
    module, batch, hess, groups = llama_case
    curv = hessian_curvature(module, batch, n_examples=None, exact_max=0)
    assert curv.trace_method == "hutchinson" and curv.hvps == curv.lanczos_steps + curv.probes
    for layer, idx in groups.items():
        exact = float(hess.diagonal()[idx].sum())
        err = abs(curv.layer_trace[layer] - exact)
        assert err <= 4 * curv.layer_trace_stderr[layer] + 1e-9, (layer, exact, curv)


def test_n_examples_takes_the_first_probe_examples(llama_case):
    module, batch, _, _ = llama_case
    first_two = {k: v[:2] for k, v in batch.items()}
    a = hessian_curvature(module, batch, n_examples=2, probes=3)
    b = hessian_curvature(module, first_two, n_examples=None, probes=3)
    assert a.n_examples == 2
    assert a.top_eigenvalue == pytest.approx(b.top_eigenvalue, rel=1e-10)


def test_chunked_loss_gives_the_same_hessian(llama_case):
    module, batch, _, _ = llama_case
    a = hessian_curvature(module, batch, n_examples=None, probes=3, chunk_size=8)
    b = hessian_curvature(module, batch, n_examples=None, probes=3, chunk_size=1)
    assert a.top_eigenvalue == pytest.approx(b.top_eigenvalue, rel=1e-8)
    for layer in a.layer_trace:
        assert a.layer_trace[layer] == pytest.approx(b.layer_trace[layer], rel=1e-6, abs=1e-9)


def test_bad_settings_are_refused(llama_case):
    module, batch, _, _ = llama_case
    with pytest.raises(InputError, match="`steps` must be >= 1"):
        hessian_curvature(module, batch, steps=0)
    with pytest.raises(InputError, match="`probes` must be >= 0"):
        hessian_curvature(module, batch, probes=-1)
