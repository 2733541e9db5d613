"""The CountSketch projection: unbiased, seeded, and accurate at d = 4096 on a 1M+ model."""

from __future__ import annotations

import pytest
import torch
from ntk_tiny import make_batch

from lensllm.exceptions import InputError
from lensllm.ntk import CountSketch, compute_ntk_features, per_sample_gradients


def test_sketch_is_seeded_and_linear():
    grads = {"a": torch.randn(3, 5, 7), "b": torch.randn(3, 11)}
    s1 = CountSketch(32, seed=4).project(grads)
    s2 = CountSketch(32, seed=4).project(grads)
    s3 = CountSketch(32, seed=5).project(grads)
    assert s1.shape == (3, 32)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    assert not torch.allclose(s1, s3)
    sketch = CountSketch(32, seed=4)
    doubled = sketch.project({k: 2 * v for k, v in grads.items()})
    torch.testing.assert_close(doubled, 2 * s1)
    # chunk by chunk == all at once
    rows = [sketch.project({k: v[i : i + 1] for k, v in grads.items()}) for i in range(3)]
    torch.testing.assert_close(torch.cat(rows), s1)


def test_sketch_preserves_norm_when_dim_exceeds_coordinates_without_collisions():
    # With one coordinate and any dim, the sketch is +-g: norms are exact.
    g = {"w": torch.tensor([[3.0]])}
    assert float(CountSketch(8, seed=1).project(g).norm()) == pytest.approx(3.0)


def test_sketch_inner_products_are_unbiased():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 400, generator=gen, dtype=torch.float64)
    x[1] += 0.5 * x[0]
    exact = float(x[0] @ x[1])
    estimates = []
    for seed in range(400):
        s = CountSketch(16, seed=seed).project({"w": x})
        estimates.append(float(s[0] @ s[1]))
    est = torch.tensor(estimates, dtype=torch.float64)
    stderr = float(est.std() / len(estimates) ** 0.5)
    assert abs(float(est.mean()) - exact) < 4 * stderr


def test_sketch_keeps_only_small_hashes():
    sketch = CountSketch(64, seed=0)
    sketch.project({"w": torch.randn(2, 1000)})
    buckets, signs = next(iter(sketch._cache.values()))
    assert buckets.dtype == torch.int32 and signs.dtype == torch.int8
    assert buckets.numel() == 1000 and int(buckets.max()) < 64


def test_bad_dim_is_rejected():
    with pytest.raises(InputError, match="`dim`"):
        CountSketch(0)


def _small_gpt2_with_over_a_million_parameters():
    import transformers as tf

    cfg = tf.GPT2Config(vocab_size=64, n_embd=128, n_layer=6, n_head=4, n_positions=32,
                        bos_token_id=2, eos_token_id=2)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    return tf.GPT2LMHeadModel(cfg).eval()


def test_projected_kernel_within_ten_percent_at_4096_dims():
    model = _small_gpt2_with_over_a_million_parameters()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params >= 1_000_000
    batch = make_batch("gpt2", [12, 9, 16, 10, 14, 8, 11, 13, 16, 7, 12, 15], seed=2)
    exact_rows, sketched_rows = [], []
    sketch = CountSketch(4096, seed=0)
    for chunk in per_sample_gradients(model, batch, params="all", chunk_size=4):
        exact_rows.append(torch.cat([g.reshape(g.shape[0], -1) for g in chunk.grads.values()], 1))
        sketched_rows.append(sketch.project(chunk.grads, out_dtype=torch.float64))
    g_exact = torch.cat(exact_rows).double()
    assert g_exact.shape == (12, n_params)
    theta = g_exact @ g_exact.T
    g_sk = torch.cat(sketched_rows)
    theta_sk = g_sk @ g_sk.T
    rel = float(torch.linalg.norm(theta_sk - theta) / torch.linalg.norm(theta))
    assert rel <= 0.10, rel
    # the end-to-end path uses the same sketch (same seed): same kernel
    spec = compute_ntk_features(model, batch, params="all", dim=4096, seed=0, chunk_size=6)
    ev_sk = torch.linalg.eigvalsh(theta_sk).flip(0).numpy()
    assert spec.meta["n_params"] == n_params
    assert spec.meta["projection"] == "countsketch"
    assert abs(spec.eigenvalues - ev_sk).max() <= 1e-6 * ev_sk.max()
