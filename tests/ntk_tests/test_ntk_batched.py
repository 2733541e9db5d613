"""The batched engine (hooks on linear layers): same kernel as vmap, precision, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntk_tiny import build_tiny, make_batch

from lensllm.exceptions import ConfigError
from lensllm.ntk import empirical_ntk, prepare_model
from lensllm.ntk import _batched, _memory
from lensllm.ntk._batched import linear_taps, resolve_precision
from lensllm.ntk._params import trainable_parameters


def _rel(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


@pytest.mark.parametrize("arch", ["gpt2", "opt", "llama", "t5", "bart"])
def test_batched_sketch_equals_vmap_sketch(arch):
    model = build_tiny(arch, d=32, layers=2, dtype=torch.float64)
    batch = make_batch(arch, [7, 4, 6, 5, 8], seed=5)
    a = empirical_ntk(model, batch, dim=256, seed=3, engine="vmap", chunk_size=2)
    b = empirical_ntk(model, batch, dim=256, seed=3, engine="batched", chunk_size=3)
    assert (a.engine, b.engine) == ("vmap", "batched")
    assert a.n_params == b.n_params
    assert _rel(b.theta, a.theta) < 1e-7  # same sketch, same gradients: round-off only
    torch.testing.assert_close(b.outputs, a.outputs, rtol=1e-8, atol=1e-10)


def test_auto_engine_is_batched_for_lora_and_vmap_for_all_parameters():
    model = build_tiny("llama", dtype=torch.float64)
    batch = make_batch("llama", [5, 6, 4])
    assert empirical_ntk(model, batch, dim=64).engine == "batched"
    assert empirical_ntk(model, batch, params="all", dim=64).engine == "vmap"  # embeddings
    with pytest.raises(ConfigError, match="engine='batched' needs every"):
        empirical_ntk(model, batch, params="all", dim=64, engine="batched")
    with pytest.raises(ConfigError, match="`engine` must be one of"):
        empirical_ntk(model, batch, engine="jax")


def test_linear_taps_find_the_lora_layers_and_refuse_other_tensors():
    model = build_tiny("llama")
    peft_model = prepare_model(model, "lora")
    taps = linear_taps(peft_model, trainable_parameters(peft_model, "lora"))
    assert taps and all(isinstance(m, torch.nn.Linear) for m, _ in taps.values())
    assert linear_taps(model, trainable_parameters(model, "all")) is None


def test_precision_resolution():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu, torch.float32) is None  # bf16 only on CUDA
    assert resolve_precision("model", cpu, torch.float32) is None
    assert resolve_precision("bfloat16", cpu, torch.float32) is torch.bfloat16
    assert resolve_precision("float16", cpu, torch.float32) is torch.float16
    with pytest.raises(ConfigError, match="float64 model"):
        resolve_precision("bfloat16", cpu, torch.float64)
    with pytest.raises(ConfigError, match="`precision` must be one of"):
        resolve_precision("fp8", cpu, torch.float32)


def test_bfloat16_autocast_kernel_is_close_to_float32_and_accumulated_in_float64():
    model = build_tiny("llama", d=64, layers=2)
    batch = make_batch("llama", [20, 18, 22, 19, 21, 20], seed=1)
    f32 = empirical_ntk(model, batch, dim=None, precision="float32")
    bf16 = empirical_ntk(model, batch, dim=None, precision="bfloat16")
    assert (f32.precision, bf16.precision) == ("float32", "bfloat16")
    assert bf16.theta.dtype == torch.float64
    lam32 = np.linalg.eigvalsh(f32.theta.numpy())[::-1]
    lam16 = np.linalg.eigvalsh(bf16.theta.numpy())[::-1]
    # bfloat16 keeps 8 mantissa bits (~0.4% per rounding); the top eigenvalues agree to a
    # few percent, and the kernel is not the float32 one (autocast really ran)
    assert np.max(np.abs(lam16[:3] - lam32[:3]) / lam32[:3]) < 0.03
    assert _rel(bf16.theta, f32.theta) > 1e-6


def test_auto_chunk_size_follows_free_memory(monkeypatch):
    model = build_tiny("llama", d=32, layers=2)
    peft_model = prepare_model(model, "lora")
    batch = make_batch("llama", [9] * 40)
    from lensllm.ntk import prepare_batch

    prepared = prepare_batch(peft_model, batch)
    theta = trainable_parameters(peft_model, "lora")
    per = _memory.example_bytes(model.config, 9, 4, max(t.numel() for t in theta.values()))
    # per example: 2 layers x 9 tokens x (17*32 + 2.5*2 heads*9) x 4 bytes + logits + the
    # largest per-example gradient (lora_B of up_proj, 64 x 8) twice in float32
    expected = 2 * 9 * (17 * 32 + 2.5 * 2 * 9) * 4 + 9 * 64 * (4 + 12) + 2 * 4 * 64 * 8
    assert per == int(expected)
    monkeypatch.setattr(_memory, "free_memory_bytes", lambda device: int(2 * 5.5 * per))
    assert _memory.auto_chunk_size(peft_model, prepared, theta, None) == 5
    monkeypatch.setattr(_memory, "free_memory_bytes", lambda device: 10 * 2**30)
    assert _memory.auto_chunk_size(peft_model, prepared, theta, None) == _memory.CPU_MAX_CHUNK
    monkeypatch.setattr(_memory, "free_memory_bytes", lambda device: 1)
    assert _memory.auto_chunk_size(peft_model, prepared, theta, None) == 1


def test_out_of_memory_halves_the_chunk_and_gives_the_same_kernel(monkeypatch):
    model = build_tiny("llama", dtype=torch.float64)
    batch = make_batch("llama", [5, 6, 4, 7, 5, 6, 3, 4])
    ref = empirical_ntk(model, batch, dim=64, chunk_size=8)
    real = _batched._chunk_rows

    def flaky(module, prepared, *args):
        if prepared["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        return real(module, prepared, *args)

    monkeypatch.setattr(_batched, "_chunk_rows", flaky)
    got = empirical_ntk(model, batch, dim=64, chunk_size=8)
    assert got.chunk_size == 2  # 8 -> 4 -> 2
    torch.testing.assert_close(got.theta, ref.theta, rtol=1e-10, atol=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_defaults_bf16_batched_kernel_and_curvature_match_the_cpu():
    from lensllm.ntk import hessian_curvature

    batch = make_batch("llama", [20, 18, 22, 19, 21, 20], seed=1)
    cpu_model = build_tiny("llama", d=64, layers=2)
    gpu_model = build_tiny("llama", d=64, layers=2).to("cuda")
    cpu = empirical_ntk(cpu_model, batch, dim=256, precision="float32")
    gpu = empirical_ntk(gpu_model, batch, dim=256)  # auto: bf16 autocast, chunk from memory
    assert (gpu.engine, gpu.precision) == ("batched", "bfloat16") and gpu.chunk_size == 6
    lam_cpu = np.linalg.eigvalsh(cpu.theta.numpy())[::-1]
    lam_gpu = np.linalg.eigvalsh(gpu.theta.numpy())[::-1]
    assert np.max(np.abs(lam_gpu[:3] - lam_cpu[:3]) / lam_cpu[:3]) < 0.03
    a = hessian_curvature(cpu_model, batch, probes=4)
    b = hessian_curvature(gpu_model, batch, probes=4)
    assert b.top_eigenvalue == pytest.approx(a.top_eigenvalue, rel=1e-3)
