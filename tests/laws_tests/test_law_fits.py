"""The laws: parameter recovery, limits, the fit contract, bounds and bootstrap intervals.

Every expected number comes from the generating parameters or a closed form, never from a
previous run of the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.optimize import check_grad

from lensllm.exceptions import FitError, InputError, NotFittedError
from lensllm.laws import (
    LensLaw,
    Param,
    PowerLaw,
    RectifiedLaw,
    lens_loss,
    power_loss,
    rectified_loss,
    transition_size,
)
from lensllm.laws.lens import ntk_loss

D = np.array([0, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400.0])


@dataclass(frozen=True)
class Spectrum:
    """The three attributes the lens law reads from an NTK spectrum."""

    eigenvalues: np.ndarray
    proj_sq: np.ndarray
    eta: float


SPECTRUM = Spectrum(eigenvalues=np.array([1.0, 0.1, 0.01]), proj_sq=np.array([20.0, 10.0, 5.0]),
                    eta=1e-3)


def f_closed_form(spectrum: Spectrum, t: float) -> float:
    """``F(t) = sum_k exp(-2 eta lambda_k t) proj_k``, written out."""
    return float(sum(p * np.exp(-2 * spectrum.eta * lam * t)
                     for lam, p in zip(spectrum.eigenvalues, spectrum.proj_sq)))


def noisy(loss: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return loss * np.exp(sigma * rng.standard_normal(loss.shape))


# --- recovery of known parameters ------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_law_recovers_parameters(seed):
    d = D[1:]
    truth = {"a": 30.0, "alpha": 0.35, "e": 1.2}
    law = PowerLaw().fit(d, noisy(power_loss(d, **truth), 1e-3, seed))
    p = law.fit_.params
    assert p["alpha"] == pytest.approx(truth["alpha"], rel=0.05)
    assert p["A"] == pytest.approx(truth["a"], rel=0.15)
    assert p["E"] == pytest.approx(truth["e"], abs=0.03)
    assert law.fit_.success


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rectified_law_recovers_parameters(seed):
    truth = {"b": 60.0, "d_l": 15.0, "beta": 0.45, "e": 1.1}
    law = RectifiedLaw().fit(D, noisy(rectified_loss(D, **truth), 1e-3, seed))
    p = law.fit_.params
    assert p["beta"] == pytest.approx(truth["beta"], rel=0.05)
    assert p["D_l"] == pytest.approx(truth["d_l"], rel=0.15)
    assert p["B"] == pytest.approx(truth["b"], rel=0.15)
    assert p["E"] == pytest.approx(truth["e"], abs=0.03)
    # The transition is where D**beta equals D_l.
    assert transition_size(p["D_l"], p["beta"]) == pytest.approx(
        truth["d_l"] ** (1 / truth["beta"]), rel=0.3)


def test_rectified_fit_exact_data_reaches_zero_residual():
    truth = {"b": 40.0, "d_l": 10.0, "beta": 0.5, "e": 1.0}
    law = RectifiedLaw().fit(D, rectified_loss(D, **truth))
    assert law.fit_.rmse < 1e-6
    np.testing.assert_allclose(law.predict(D), rectified_loss(D, **truth), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_lens_law_fit_t_recovers_b_beta_e_and_t(seed):
    t_true = 1000.0
    f_true = f_closed_form(SPECTRUM, t_true)
    truth = {"b": 80.0, "beta": 0.5, "e": 1.3}
    loss = noisy(lens_loss(D, f=f_true, **truth), 1e-4, seed)
    law = LensLaw(fit_t=True, t_bounds=(1.0, 1e6)).fit(D, loss, spectrum=SPECTRUM)
    p = law.fit_.params
    assert p["beta"] == pytest.approx(truth["beta"], rel=0.03)
    assert p["B"] == pytest.approx(truth["b"], rel=0.1)
    assert p["E"] == pytest.approx(truth["e"], abs=0.02)
    assert p["t"] == pytest.approx(t_true, rel=0.2)
    assert p["F"] == pytest.approx(f_closed_form(SPECTRUM, p["t"]), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_lens_law_fixed_t_recovers_b_beta_e(seed):
    t_true = 300.0
    f_true = f_closed_form(SPECTRUM, t_true)
    truth = {"b": 50.0, "beta": 0.6, "e": 0.9}
    loss = noisy(lens_loss(D, f=f_true, **truth), 1e-3, seed)
    law = LensLaw(fit_t=False).fit(D, loss, spectrum=SPECTRUM, t=t_true)
    p = law.fit_.params
    assert p["t"] == t_true
    assert p["F"] == pytest.approx(f_true, rel=1e-12)
    assert p["beta"] == pytest.approx(truth["beta"], rel=0.05)
    assert p["B"] == pytest.approx(truth["b"], rel=0.15)
    assert p["E"] == pytest.approx(truth["e"], abs=0.03)


def test_fit_depends_on_its_input():
    """Two different curves give two different fits (catches an objective ignoring data)."""
    a = RectifiedLaw().fit(D, rectified_loss(D, 40.0, 10.0, 0.5, 1.0)).fit_.params
    b = RectifiedLaw().fit(D, rectified_loss(D, 40.0, 10.0, 0.3, 1.0)).fit_.params
    assert a["beta"] == pytest.approx(0.5, rel=1e-3)
    assert b["beta"] == pytest.approx(0.3, rel=1e-3)


def test_fit_many_equals_fit_one_by_one():
    rng = np.random.default_rng(5)
    curves = np.array([rectified_loss(D, 30 + 20 * i, 5 + 5 * i, 0.3 + 0.1 * i, 1.0 + 0.1 * i)
                       for i in range(4)]) * np.exp(1e-3 * rng.standard_normal((4, D.size)))
    batch = RectifiedLaw().fit_many(D, curves)
    for i in range(4):
        single = RectifiedLaw().fit(D, curves[i]).fit_
        assert batch[i].rmse == pytest.approx(single.rmse, rel=1e-6)
        np.testing.assert_allclose(batch.predict([1e6])[i], single.predict([1e6]), rtol=1e-5)


# --- formulas, gradients and limits ------------------------------------------------------------


def test_ntk_loss_matches_closed_form():
    t = np.array([0.0, 10.0, 1000.0])
    f, t_df = ntk_loss(t, SPECTRUM.eigenvalues, SPECTRUM.proj_sq, SPECTRUM.eta)
    expected = [f_closed_form(SPECTRUM, x) for x in t]
    np.testing.assert_allclose(f, expected, rtol=1e-12)
    h = 1e-4
    num = [(f_closed_form(SPECTRUM, x * np.exp(h)) - f_closed_form(SPECTRUM, x * np.exp(-h)))
           / (2 * h) for x in t]
    np.testing.assert_allclose(t_df, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("law, theta, aux", [
    (PowerLaw(), np.array([0.4]), {}),
    (RectifiedLaw(), np.array([0.45, np.log(12.0)]), {}),
    (LensLaw(fit_t=True), np.array([0.5, np.log(700.0)]),
     {"eig": SPECTRUM.eigenvalues[None], "proj": SPECTRUM.proj_sq[None],
      "eta": np.array([SPECTRUM.eta])}),
])
def test_basis_jacobian_matches_finite_differences(law, theta, aux):
    d = D[1:] if isinstance(law, PowerLaw) else D
    for i in range(d.size):
        def f(th, i=i):
            return float(law.basis(d[None, :], th[None, :], aux)[0, i])

        def g(th, i=i):
            return law.basis_jac(d[None, :], th[None, :], aux)[0, i]

        scale = max(abs(f(theta)), 1e-12)
        assert check_grad(f, g, theta, epsilon=1e-7) / scale < 1e-4


def test_rectified_law_becomes_a_power_law_when_d_l_vanishes():
    """With ``D_l -> 0`` the rectified law is ``B * D**-beta + E``: fits to a power-law
    curve (D > 0) agree with the power law's parameters."""
    d = D[1:]
    assert rectified_loss(d, 30.0, 0.0, 0.35, 1.2) == pytest.approx(power_loss(d, 30.0, 0.35, 1.2))
    loss = power_loss(d, 30.0, 0.35, 1.2)
    rect = RectifiedLaw().fit(d, loss).fit_.params
    power = PowerLaw().fit(d, loss).fit_.params
    assert rect["D_l"] < 1e-3 * d[0] ** rect["beta"]
    assert rect["beta"] == pytest.approx(power["alpha"], rel=1e-3)
    assert rect["B"] == pytest.approx(power["A"], rel=1e-2)
    assert rect["E"] == pytest.approx(power["E"], abs=1e-3)


# --- the fit contract, bounds and errors ----------------------------------------------------


@pytest.mark.parametrize("law", [PowerLaw(), RectifiedLaw(), LensLaw()])
def test_predict_and_interval_before_fit_raise(law):
    with pytest.raises(NotFittedError, match="not fitted"):
        law.predict([1000.0])
    with pytest.raises(NotFittedError):
        law.interval([1000.0])


def test_not_fitted_error_is_a_value_and_attribute_error():
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize("lower, upper", [(1.0, 1.0), (2.0, 1.0)])
def test_param_bounds_with_lower_not_below_upper_raise(lower, upper):
    with pytest.raises(InputError, match="`beta` must satisfy lower < upper"):
        Param("beta", lower, upper)


@pytest.mark.parametrize("bounds", [(10.0, 10.0), (10.0, 1.0), (0.0, 10.0), (1.0, np.inf)])
def test_lens_t_bounds_invalid_raise(bounds):
    with pytest.raises(InputError, match="t_bounds"):
        LensLaw(t_bounds=bounds)


@pytest.mark.parametrize("kwargs, match", [({"n_starts": 0}, "n_starts"),
                                           ({"max_iter": 0}, "max_iter")])
def test_law_options_validated(kwargs, match):
    with pytest.raises(InputError, match=match):
        RectifiedLaw(**kwargs)


def test_fewer_points_than_parameters_raise():
    with pytest.raises(FitError, match="4 free parameters but only 3 points"):
        RectifiedLaw().fit(D[:3], rectified_loss(D[:3], 40.0, 10.0, 0.5, 1.0))


@pytest.mark.parametrize("bad, match", [(np.nan, "not finite"), (0.0, "must be > 0"),
                                        (-1.0, "must be > 0")])
def test_bad_losses_raise_naming_the_point(bad, match):
    loss = rectified_loss(D, 40.0, 10.0, 0.5, 1.0)
    loss[3] = bad
    with pytest.raises(InputError, match=f"D=800.*{match}"):
        RectifiedLaw().fit_many(D, loss[None, :], names=["m"])


def test_non_increasing_sizes_raise():
    d = D.copy()
    d[4] = d[3]
    with pytest.raises(InputError, match="strictly increasing"):
        RectifiedLaw().fit(d, rectified_loss(D, 40.0, 10.0, 0.5, 1.0))


def test_power_law_rejects_zero_size():
    with pytest.raises(InputError, match="> 0"):
        PowerLaw().fit(D, rectified_loss(D, 40.0, 10.0, 0.5, 1.0))


def test_lens_law_needs_a_spectrum_and_t_when_fixed():
    loss = lens_loss(D, 50.0, 5.0, 0.5, 1.0)
    with pytest.raises(InputError, match="spectra"):
        LensLaw().fit(D, loss)
    with pytest.raises(InputError, match="needs `t`"):
        LensLaw(fit_t=False).fit(D, loss, spectrum=SPECTRUM)


# --- bootstrap intervals --------------------------------------------------------------------


def test_bootstrap_interval_covers_new_measurements_at_its_level():
    """200 seeded noisy curves; a 90% prediction interval at an extrapolated size contains a
    fresh noisy measurement there for roughly 90% of them (>= 75% required)."""
    rng = np.random.default_rng(2024)
    n, sigma, d_new = 200, 0.01, 409600.0
    beta = rng.uniform(0.3, 0.6, n)
    d_l = rng.uniform(5.0, 30.0, n)
    b = rng.uniform(30.0, 80.0, n)
    e = rng.uniform(0.8, 1.5, n)
    clean = rectified_loss(D[None, :], b[:, None], d_l[:, None], beta[:, None], e[:, None])
    loss = clean * np.exp(sigma * rng.standard_normal(clean.shape))
    batch = RectifiedLaw().fit_many(D, loss)
    lo, hi = batch.interval([d_new], level=0.9)
    new = rectified_loss(d_new, b, d_l, beta, e) * np.exp(sigma * rng.standard_normal(n))
    covered = np.mean((lo[:, 0] <= new) & (new <= hi[:, 0]))
    assert covered >= 0.75
    assert np.all(lo[:, 0] < batch.predict([d_new])[:, 0])
    assert np.all(batch.predict([d_new])[:, 0] < hi[:, 0])


def test_interval_is_unbounded_when_points_equal_parameters():
    d = D[:4]
    law = RectifiedLaw().fit(d, rectified_loss(d, 40.0, 10.0, 0.5, 1.0) * [1, 1.01, 0.99, 1])
    lo, hi = law.interval([1e5], level=0.9)
    assert lo[0] == 0.0 and hi[0] == np.inf


def test_interval_level_is_validated():
    law = RectifiedLaw().fit(D, rectified_loss(D, 40.0, 10.0, 0.5, 1.0))
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(InputError, match="level"):
            law.interval([1e5], level=level)


def test_wider_level_gives_wider_interval():
    loss = noisy(rectified_loss(D, 40.0, 10.0, 0.5, 1.0), 0.01, 3)
    law = RectifiedLaw().fit(D, loss)
    lo50, hi50 = law.interval([1e5], level=0.5)
    lo95, hi95 = law.interval([1e5], level=0.95)
    assert lo95[0] <= lo50[0] < hi50[0] <= hi95[0]
