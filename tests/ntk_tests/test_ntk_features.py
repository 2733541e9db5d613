"""NTK features end to end on tiny GPT-2, OPT, Llama, T5 and BART; probe sets; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntk_tiny import build_tiny, make_batch, reference_outputs

from lensllm.exceptions import ConfigError, InputError
from lensllm.finetune.lora import DEFAULT_LORA_RANK
from lensllm.ntk import (
    NTKSpectrum,
    compute_ntk_features,
    empirical_ntk,
    probe_indices,
    select_probe,
)


@pytest.mark.parametrize("arch", ["gpt2", "opt", "llama", "t5", "bart"])
def test_lora_features_for_each_architecture(arch, tmp_path):
    model = build_tiny(arch)
    batch = make_batch(arch, [7, 4, 6, 5], seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    spec = compute_ntk_features(
        model, batch, dim=64, chunk_size=3, eta=1e-3, progress=lambda d, n: seen.append((d, n)),
        meta={"model_id": f"tiny-{arch}", "probe_seed": 0},
    )
    assert seen == [(3, 4), (4, 4)]
    assert spec.n == 4
    assert np.all(spec.eigenvalues >= 0) and spec.eigenvalues.max() > 0
    assert np.all(np.diff(spec.eigenvalues) <= 0)  # descending
    # LoRA starts with B = 0, so the wrapped model's outputs are the plain model's: the
    # residual energy is the squared per-example loss of an ordinary batched forward.
    r0 = -reference_outputs(model, batch).detach().numpy()
    np.testing.assert_allclose(spec.residual_sq, np.sum(r0.astype(np.float64) ** 2), rtol=1e-5)
    # the caller's model was not modified (LoRA wraps a copy)
    assert not any("lora" in name for name, _ in model.named_modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    meta = spec.meta
    assert meta["params"] == "lora" and meta["dim"] == 64 and meta["n"] == 4
    assert meta["dtype"] == "float32" and meta["model_id"] == f"tiny-{arch}"
    assert meta["probe_seed"] == 0 and meta["lensllm_version"]
    assert 0 < meta["n_params"] < sum(p.numel() for p in model.parameters())
    back = NTKSpectrum.load(spec.save(tmp_path / "f.json"))
    np.testing.assert_array_equal(back.eigenvalues, spec.eigenvalues)
    assert back.eta == 1e-3 and back.meta["params"] == "lora"


def test_lora_kernel_only_sees_b_matrices_at_initialisation():
    model = build_tiny("gpt2", dtype=torch.float64)
    batch = make_batch("gpt2", [5, 6, 4])
    ntk = empirical_ntk(model, batch, params="lora", dim=None)
    # rank-8 A (r x in) and B (out x r) on every linear layer (the runs' all-linear): c_attn
    # (d -> 3d), attn.c_proj (d -> d), mlp.c_fc (d -> 4d), mlp.c_proj (4d -> d); only the
    # B entries carry gradient, but all adapter parameters are counted
    d = model.config.n_embd
    layers = model.config.n_layer
    assert ntk.n_params == layers * DEFAULT_LORA_RANK * (4 * d + 2 * d + 5 * d + 5 * d)
    assert torch.all(torch.linalg.eigvalsh(ntk.theta) > -1e-12)


def test_float64_and_seed_determinism():
    model = build_tiny("opt")
    batch = make_batch("opt", [5, 6, 4, 7])
    a = compute_ntk_features(model, batch, dim=32, seed=3)
    b = compute_ntk_features(model, batch, dim=32, seed=3)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    np.testing.assert_array_equal(a.proj_sq, b.proj_sq)


def test_probe_sets_are_seeded_and_nested():
    examples = [f"ex{i}" for i in range(50)]
    p32 = select_probe(examples, 32, seed=5)
    p16 = select_probe(examples, 16, seed=5)
    assert p16 == p32[:16]
    assert len(set(p32)) == 32
    assert select_probe(examples, 16, seed=5) == p16
    assert select_probe(examples, 16, seed=6) != p16
    assert sorted(probe_indices(10, 10, 0).tolist()) == list(range(10))


@pytest.mark.parametrize(("n", "total", "match"), [(1, 10, "`n` must be >= 2"),
                                                   (11, 10, "larger than the 10")])
def test_bad_probe_sizes(n, total, match):
    with pytest.raises(InputError, match=match):
        select_probe(list(range(total)), n, seed=0)


def test_bad_arguments_are_reported():
    model = build_tiny("gpt2")
    batch = make_batch("gpt2", [5, 6])
    with pytest.raises(ConfigError, match="`params`"):
        compute_ntk_features(model, batch, params="some")
    with pytest.raises(InputError, match="`chunk_size`"):
        compute_ntk_features(model, batch, chunk_size=0)
    with pytest.raises(InputError, match="`dim`"):
        compute_ntk_features(model, batch, dim=0)
    one = {k: v[:1] for k, v in batch.items()}
    with pytest.raises(InputError, match="at least 2"):
        compute_ntk_features(model, one)
    with pytest.raises(InputError, match="`labels`"):
        compute_ntk_features(model, {"input_ids": batch["input_ids"]})
    with pytest.raises(InputError, match="`input_ids` must be a 2-D integer"):
        compute_ntk_features(model, {**batch, "input_ids": batch["input_ids"].float()})
    unscored = dict(batch)
    unscored["labels"] = batch["labels"].clone()
    unscored["labels"][1] = -100
    with pytest.raises(InputError, match=r"example\(s\) \[1\]"):
        compute_ntk_features(model, unscored)


def test_no_lora_targets_for_a_model_without_linear_layers():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Embedding(2, 2)
            self.config = type("C", (), {"model_type": "odd", "is_encoder_decoder": False})()

    with pytest.raises(ConfigError, match="cannot add LoRA adapters to Odd"):
        compute_ntk_features(Odd(), make_batch("gpt2", [3, 3]))


def test_sdpa_model_gives_the_eager_kernel_with_either_engine():
    import transformers as tf

    from lensllm.ntk import per_sample_gradients

    cfg = tf.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, bos_token_id=2,
                        eos_token_id=2)
    model = tf.GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa").eval()
    batch = make_batch("gpt2", [4, 5])
    # the bare per-example gradients need eager attention and say how to get it
    with pytest.raises(ConfigError, match="attn_implementation='eager'"):
        next(per_sample_gradients(model, batch))
    # the kernel switches the model to eager for the vmap passes and back afterwards
    vmapped = empirical_ntk(model, batch, dim=None, engine="vmap")
    assert model.config._attn_implementation == "sdpa"
    batched = empirical_ntk(model, batch, dim=None, engine="batched")
    model.set_attn_implementation("eager")
    eager = empirical_ntk(model, batch, dim=None, engine="vmap")
    assert vmapped.engine == eager.engine == "vmap" and batched.engine == "batched"
    torch.testing.assert_close(vmapped.theta, eager.theta, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(batched.theta, eager.theta, rtol=1e-4, atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_cuda_kernel_matches_cpu_kernel(arch):
    model = build_tiny(arch, dtype=torch.float64)
    batch = make_batch(arch, [6, 4, 5], seed=2)
    cpu = empirical_ntk(model, batch, params="all", dim=64, seed=1)
    gpu = empirical_ntk(model.to("cuda"), batch, params="all", dim=64, seed=1)
    assert gpu.theta.device.type == "cpu"
    # eager attention takes its softmax in float32 even for float64 models: ~1e-7 round-off
    torch.testing.assert_close(gpu.theta, cpu.theta, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(gpu.residual, cpu.residual, rtol=1e-6, atol=1e-12)


def test_default_lora_adapters_are_the_runs_default_adapters():
    from lensllm.finetune.config import FinetuneConfig
    from lensllm.ntk import default_lora_config

    run = FinetuneConfig()
    cfg = default_lora_config(build_tiny("llama"))
    assert cfg.target_modules == run.lora_target_modules == "all-linear"
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (
        run.lora_r, run.lora_alpha, run.lora_dropout)
