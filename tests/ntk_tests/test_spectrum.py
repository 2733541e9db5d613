"""Tests of :mod:`lensllm.ntk.spectrum`: F(t) against scipy's matrix exponential, validation, JSON."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import expm

from lensllm.exceptions import InputError, LensLLMError
from lensllm.ntk.spectrum import EIGENVALUE_RTOL, NTKSpectrum


def _random_kernel(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, 3 * n)) * rng.uniform(0.1, 3.0, size=(1, 3 * n))
    theta = g @ g.T / (3 * n)
    r0 = rng.uniform(0.5, 4.0, size=n)
    return theta, r0


def _spectrum_of(theta: np.ndarray, r0: np.ndarray, eta: float | None) -> NTKSpectrum:
    lam, u = np.linalg.eigh(theta)
    return NTKSpectrum(lam, (u.T @ r0) ** 2, eta=eta)


@pytest.mark.parametrize("seed", [0, 1])
def test_ntk_loss_matches_matrix_exponential(seed: int) -> None:
    theta, r0 = _random_kernel(12, seed)
    eta = 0.03
    spec = _spectrum_of(theta, r0, eta)
    ts = np.concatenate([[0.0], np.logspace(-2, 2.5, 25)])
    got = spec.ntk_loss(ts)
    expected = np.array([np.sum((expm(-eta * theta * t) @ r0) ** 2) for t in ts])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=0)


def test_ntk_loss_with_rank_deficient_kernel_keeps_null_space_energy() -> None:
    rng = np.random.default_rng(3)
    g = rng.normal(size=(6, 2))  # rank 2
    theta = g @ g.T
    r0 = rng.normal(size=6)
    spec = _spectrum_of(theta, r0, eta=1.0)
    lam, u = np.linalg.eigh(theta)
    null = u[:, lam < 1e-9]
    big_t = 1e4
    np.testing.assert_allclose(spec.ntk_loss(big_t), np.sum((null.T @ r0) ** 2), rtol=1e-6)
    np.testing.assert_allclose(
        spec.ntk_loss(big_t), np.sum((expm(-theta * big_t) @ r0) ** 2), rtol=1e-6
    )


def test_ntk_loss_shapes_and_basic_properties() -> None:
    spec = NTKSpectrum(np.array([2.0, 0.5, 0.0]), np.array([1.0, 3.0, 0.25]), eta=0.1)
    assert spec.ntk_loss(0.0).shape == ()
    assert float(spec.ntk_loss(0.0)) == pytest.approx(4.25)
    assert spec.residual_sq == pytest.approx(4.25)
    grid = np.arange(12.0).reshape(3, 4)
    values = spec.ntk_loss(grid)
    assert values.shape == (3, 4)
    flat = values.ravel()
    assert np.all(np.diff(flat) <= 0)  # non-increasing in t
    # eta only enters through eta * t
    np.testing.assert_allclose(spec.ntk_loss(grid, eta=0.2), spec.ntk_loss(2 * grid))
    # huge t: no overflow, no NaN, only the null-space energy is left
    assert float(spec.ntk_loss(1e300)) == pytest.approx(0.25)
    assert spec.n == 3


def test_ntk_loss_needs_eta() -> None:
    spec = NTKSpectrum(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    with pytest.raises(InputError, match="`eta`"):
        spec.ntk_loss(1.0)
    assert float(spec.ntk_loss(0.5, eta=1.0)) == pytest.approx(np.exp(-1.0) + np.exp(-2.0))
    assert spec.with_eta(1.0).meta["eta"] == 1.0


@pytest.mark.parametrize("eta", [0.0, -1.0, float("nan"), float("inf"), "fast"])
def test_bad_eta_is_rejected(eta: object) -> None:
    with pytest.raises(InputError, match="`eta`"):
        NTKSpectrum(np.array([1.0]), np.array([1.0]), eta=eta)  # type: ignore[arg-type]
    spec = NTKSpectrum(np.array([1.0]), np.array([1.0]))
    with pytest.raises(InputError, match="`eta`"):
        spec.ntk_loss(1.0, eta=eta)  # type: ignore[arg-type]


@pytest.mark.parametrize("t", [-1.0, float("nan"), [0.0, float("inf")], "soon"])
def test_bad_t_is_rejected(t: object) -> None:
    spec = NTKSpectrum(np.array([1.0]), np.array([1.0]), eta=1.0)
    with pytest.raises(InputError, match="`t`"):
        spec.ntk_loss(t)


def test_round_off_negative_eigenvalues_are_clipped_but_real_ones_raise() -> None:
    tiny = -0.5 * EIGENVALUE_RTOL * 10.0
    spec = NTKSpectrum(np.array([10.0, tiny]), np.array([1.0, 1.0]))
    assert spec.eigenvalues.min() == 0.0
    with pytest.raises(InputError, match="positive semi-definite"):
        NTKSpectrum(np.array([10.0, -1e-3]), np.array([1.0, 1.0]))


@pytest.mark.parametrize(
    ("lam", "proj", "match"),
    [
        ([1.0, np.nan], [1.0, 1.0], "`eigenvalues` must be finite"),
        ([1.0, 1.0], [1.0, np.inf], "`proj_sq` must be finite"),
        ([1.0, 1.0], [1.0], "same shape"),
        ([], [], "non-empty"),
        ([[1.0]], [[1.0]], "1-D"),
        ([1.0], [-0.5], "`proj_sq` must be >= 0"),
    ],
)
def test_bad_arrays_are_rejected(lam: list, proj: list, match: str) -> None:
    with pytest.raises(InputError, match=match):
        NTKSpectrum(np.array(lam, dtype=float), np.array(proj, dtype=float))


def test_spectrum_is_immutable_and_copies_inputs() -> None:
    lam = np.array([1.0, 2.0])
    spec = NTKSpectrum(lam, np.array([1.0, 1.0]))
    lam[0] = 100.0
    assert spec.eigenvalues[0] == 1.0
    with pytest.raises(ValueError):
        spec.eigenvalues[0] = 5.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.eta = 1.0  # type: ignore[misc]


def test_json_round_trip_is_exact(tmp_path) -> None:
    theta, r0 = _random_kernel(7, 5)
    lam, u = np.linalg.eigh(theta)
    meta = {"model_id": "tiny:gpt2", "probe_seed": 3, "n": 7, "dim": 4096,
            "params": "lora", "dtype": "float32"}
    spec = NTKSpectrum(lam.clip(0), (u.T @ r0) ** 2, eta=2e-4, meta=meta)
    path = spec.save(tmp_path / "sub" / "features.json")
    back = NTKSpectrum.load(path)
    np.testing.assert_array_equal(back.eigenvalues, spec.eigenvalues)
    np.testing.assert_array_equal(back.proj_sq, spec.proj_sq)
    assert back.eta == 2e-4
    for key, value in meta.items():
        assert back.meta[key] == value
    raw = json.loads(path.read_text())
    assert raw["format"] == "lensllm.ntk_spectrum"
    assert raw["meta"]["lensllm_version"]
    assert raw["meta"]["eta"] == 2e-4
    np.testing.assert_array_equal(back.ntk_loss([0.0, 10.0]), spec.ntk_loss([0.0, 10.0]))


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(InputError, match="nope.json"):
        NTKSpectrum.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json.*not valid JSON"):
        NTKSpectrum.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="other.json.*not an NTK spectrum"):
        NTKSpectrum.load(other)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "lensllm.ntk_spectrum", "format_version": 99,
                                 "eigenvalues": [1.0], "proj_sq": [1.0]}))
    with pytest.raises(LensLLMError, match="format_version"):
        NTKSpectrum.load(newer)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "lensllm.ntk_spectrum", "format_version": 1,
                                  "eigenvalues": [1.0, -5.0], "proj_sq": [1.0, 1.0]}))
    with pytest.raises(InputError, match="broken.json.*semi-definite"):
        NTKSpectrum.load(broken)


def test_unserialisable_meta_is_reported() -> None:
    spec = NTKSpectrum(np.array([1.0]), np.array([1.0]), meta={"model": object()})
    with pytest.raises(InputError, match="meta"):
        spec.to_json()


def test_spectrum_module_does_not_import_torch() -> None:
    code = (
        "import sys; import lensllm.ntk.spectrum as s; import lensllm.ntk.stored; "
        "import lensllm.laws; s.NTKSpectrum([1.0], [1.0], eta=1.0).ntk_loss([0.0, 1.0]); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_store_round_trip() -> None:
    from lensllm.ntk.stored import spectrum_from_record, spectrum_to_record
    from lensllm.store import open_store

    meta = {"model_id": "tiny:gpt2", "probe_seed": 2, "n": 2, "dim": None, "params": "all",
            "dtype": "float64", "n_params": 1000}
    spec = NTKSpectrum(np.array([3.0, 1.0]), np.array([0.5, 0.25]), eta=1e-3, meta=meta)
    with open_store(":memory:") as store:
        store.record_ntk(spectrum_to_record(spec, dataset="toy"))
        (rec,) = store.get_ntk(model="tiny:gpt2")
    assert rec.d == 0 and rec.params_subset == "all" and rec.dataset == "toy"
    back = spectrum_from_record(rec)
    np.testing.assert_array_equal(back.eigenvalues, spec.eigenvalues)
    np.testing.assert_array_equal(back.proj_sq, spec.proj_sq)
    assert back.eta == 1e-3 and back.meta["dim"] is None and back.meta["n_params"] == 1000
    with pytest.raises(InputError, match="model_id"):
        spectrum_to_record(NTKSpectrum(np.array([1.0]), np.array([1.0])), dataset="toy")
