"""The engine's rectified fits are as good as a multi-start general-purpose optimiser's.

On every row of both bundled tables and at every budget ratio 8 to 512 (the points the bench
fits: column ``0`` as ``D = 0`` plus every size column up to ``D* / ratio``), the log-space
residual of ``RectifiedLaw().fit_many`` is no worse than the best of a grid of
``scipy.optimize.minimize`` (L-BFGS-B) starts in the same coordinates and bounds (relative
tolerance 1e-6). The baseline is the test helper ``scipy_reference.py`` beside this file (the speed
benchmark times the engine against it too).
"""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.bench import load_table
from lensllm.laws import RectifiedLaw

import scipy_reference as baseline

RTOL = 1e-6


@pytest.fixture(scope="module", params=["gigaword", "flan"])
def fits(request):
    table = load_table(request.param)
    out = []
    for ratio, sizes, losses in baseline.budget_curves(table):
        out.append((ratio, sizes, losses, RectifiedLaw().fit_many(sizes, losses)))
    return table, out


def test_engine_residual_no_worse_than_multistart_scipy(fits):
    table, per_ratio = fits
    worse = []
    for ratio, sizes, losses, batch in per_ratio:
        for i in range(losses.shape[0]):
            _, sse, n_starts = baseline.fit_curve(sizes, losses[i], baseline.STARTS_TEST)
            if batch.sse[i] > sse * (1 + RTOL):
                worse.append(f"{table.name} 1/{ratio} {table.models[i]}: engine "
                             f"{batch.sse[i]:.10g} > scipy {sse:.10g}")
    assert n_starts == 4
    assert not worse, "\n".join(worse)


def test_scipy_cannot_improve_the_engine_answer_locally(fits):
    """L-BFGS-B started at the engine's optimum finds nothing lower: the engine converged."""
    table, per_ratio = fits
    for ratio, sizes, losses, batch in per_ratio:
        for i in range(losses.shape[0]):
            _, sse = baseline.polish(sizes, losses[i], batch.raw.phi[i])
            assert batch.sse[i] <= sse * (1 + RTOL) + 1e-14, (table.name, ratio, i)


def test_engine_sse_is_the_log_space_residual_of_its_parameters(fits):
    """The reported residual is recomputed from the user-facing parameters."""
    _, per_ratio = fits
    for _, sizes, losses, batch in per_ratio:
        p = batch.params
        model = p["B"][:, None] / (p["D_l"][:, None] + sizes[None, :] ** p["beta"][:, None]) \
            + p["E"][:, None]
        np.testing.assert_allclose(batch.sse, ((np.log(losses) - np.log(model)) ** 2).sum(1),
                                   rtol=1e-8, atol=1e-14)
        lower, upper = np.array(baseline.bounds(losses[0])).T
        assert np.all(p["beta"] >= lower[0]) and np.all(p["beta"] <= upper[0])
        assert np.all(p["E"] >= 0) and np.all(p["E"] <= losses.min(axis=1) * (1 + 1e-12))
