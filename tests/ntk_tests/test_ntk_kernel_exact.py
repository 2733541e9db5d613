"""Exactness of the empirical NTK: full Jacobians, padding invariance, F(t) against expm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntk_tiny import ENC_DEC, build_tiny, make_batch, reference_outputs
from scipy.linalg import expm

from lensllm.ntk import compute_ntk_features, empirical_ntk, prepare_model


def _jacobian_kernel(module, batch, names):
    """Theta from the full Jacobian of the batched outputs (torch.autograd.functional)."""
    named = dict(module.named_parameters())
    base = {k: v.detach() for k, v in named.items()}
    shapes = [base[k].shape for k in names]
    sizes = [base[k].numel() for k in names]
    flat0 = torch.cat([base[k].reshape(-1) for k in names])

    def outputs(flat):
        params = dict(base)
        for name, piece, shape in zip(names, torch.split(flat, sizes), shapes, strict=True):
            params[name] = piece.reshape(shape)
        return reference_outputs(module, batch, params)

    jac = torch.autograd.functional.jacobian(outputs, flat0)  # (n, p)
    return jac @ jac.T, -outputs(flat0).detach()


def _rel(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


@pytest.mark.parametrize("arch", ["gpt2", "t5"])
def test_all_params_kernel_equals_full_jacobian_kernel(arch):
    model = build_tiny(arch, dtype=torch.float64)
    batch = make_batch(arch, [7, 4, 6, 5])
    ntk = empirical_ntk(model, batch, params="all", dim=None, chunk_size=3)
    names = [n for n, _ in model.named_parameters()]
    theta_ref, r0_ref = _jacobian_kernel(model, batch, names)
    assert ntk.n_params == sum(p.numel() for p in model.parameters())
    assert _rel(ntk.theta, theta_ref) < 1e-5
    torch.testing.assert_close(ntk.residual, r0_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("engine", ["vmap", "batched"])
@pytest.mark.parametrize("arch", ["llama", "bart"])
def test_lora_kernel_equals_full_jacobian_kernel(arch, engine):
    model = build_tiny(arch, dtype=torch.float64)
    peft_model = prepare_model(model, "lora", seed=1)
    assert not peft_model.training  # the reference forward must not use dropout
    with torch.no_grad():  # non-zero B so that lora_A gradients are exercised too
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.1)
    batch = make_batch(arch, [6, 3, 5])
    ntk = empirical_ntk(peft_model, batch, params="lora", dim=None, engine=engine)
    assert ntk.engine == engine
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any("lora_B" in n for n in names)
    theta_ref, r0_ref = _jacobian_kernel(peft_model, batch, names)
    assert _rel(ntk.theta, theta_ref) < 1e-5
    # the batched engine runs sdpa attention, the reference eager: round-off of ~1e-9
    rtol = 1e-10 if engine == "vmap" else 1e-8
    torch.testing.assert_close(ntk.residual, r0_ref, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("arch", ["gpt2", "opt", "llama", "t5", "bart"])
def test_padding_an_example_does_not_change_the_kernel(arch):
    model = build_tiny(arch, dtype=torch.float64)
    lengths = [6, 4, 5]
    short = make_batch(arch, lengths, seed=3)
    padded = make_batch(arch, lengths, width=13, seed=3)  # same tokens, 7+ more pad columns
    if ENC_DEC[arch]:
        # also pad the target side
        extra = torch.full((3, 4), -100, dtype=torch.long)
        padded["labels"] = torch.cat([padded["labels"], extra], dim=1)
    assert padded["input_ids"].shape[1] > short["input_ids"].shape[1]
    a = empirical_ntk(model, short, params="all", dim=None)
    b = empirical_ntk(model, padded, params="all", dim=None)
    assert _rel(b.theta, a.theta) < 1e-5
    # some eager attentions take the softmax in float32: round-off ~1e-10 differs by width
    torch.testing.assert_close(b.residual, a.residual, rtol=1e-8, atol=1e-10)


def test_left_padding_is_moved_right_and_gives_the_same_kernel():
    model = build_tiny("opt", dtype=torch.float64)  # OPT derives positions from the mask
    right = make_batch("opt", [6, 3, 5], seed=4)
    left = {}
    for key in ("input_ids", "attention_mask", "labels"):
        rows = []
        for i in range(3):
            row, m = right[key][i], right["attention_mask"][i].bool()
            rows.append(torch.cat([row[~m], row[m]]))
        left[key] = torch.stack(rows)
    a = empirical_ntk(model, right, params="all", dim=None)
    b = empirical_ntk(model, left, params="all", dim=None)
    assert _rel(b.theta, a.theta) < 1e-10


def test_chunk_size_does_not_change_the_kernel():
    model = build_tiny("gpt2", dtype=torch.float64)
    batch = make_batch("gpt2", [5, 6, 4, 7, 3])
    a = empirical_ntk(model, batch, params="all", dim=None, chunk_size=1)
    b = empirical_ntk(model, batch, params="all", dim=None, chunk_size=4)
    torch.testing.assert_close(a.theta, b.theta, rtol=1e-12, atol=1e-14)


def test_ntk_loss_equals_matrix_exponential_of_the_model_kernel():
    model = build_tiny("llama", dtype=torch.float64)
    batch = make_batch("llama", [6, 5, 7, 4, 6, 5], seed=7)
    eta = 0.05
    spec = compute_ntk_features(model, batch, params="all", dim=None, eta=eta)
    ntk = empirical_ntk(model, batch, params="all", dim=None)
    theta = ntk.theta.numpy()
    r0 = -reference_outputs(model, batch).detach().numpy()  # independent forward pass
    lam_max = float(np.linalg.eigvalsh(theta).max())
    ts = np.concatenate([[0.0], np.logspace(-1, np.log10(30.0 / (eta * lam_max)), 20)])
    expected = np.array([np.sum((expm(-eta * theta * t) @ r0) ** 2) for t in ts])
    got = spec.ntk_loss(ts)
    np.testing.assert_allclose(got, expected, rtol=1e-8)
    assert expected[-1] < 0.5 * expected[0]  # the range of t covers real decay
    np.testing.assert_allclose(spec.residual_sq, np.sum(r0**2), rtol=1e-10)
