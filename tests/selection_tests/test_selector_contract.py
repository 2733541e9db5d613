"""One contract over every registered selector (``selection.REGISTRY``): on a small
synthetic table each returns a valid :class:`Selection` or raises :class:`NotApplicable`."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.bench import BudgetView, LossTable
from lensllm.laws import rectified_loss
from lensllm.selection import REGISTRY, BaseSelector, NotApplicable, Selection, get_selector

SIZES = np.array([100.0, 200, 400, 800, 1600, 3200, 6400, 12800])


def small_table(with_zero_shot: bool = True) -> LossTable:
    rng = np.random.default_rng(7)
    n = 5
    b, d_l = rng.uniform(30, 80, n), rng.uniform(5, 30, n)
    beta, e = rng.uniform(0.3, 0.6, n), rng.uniform(0.9, 1.6, n)
    full = rectified_loss(np.concatenate([[0.0], SIZES])[None, :], b[:, None], d_l[:, None],
                          beta[:, None], e[:, None])
    full *= np.exp(0.005 * rng.standard_normal(full.shape))
    return LossTable(name="contract", models=tuple(f"m{i}" for i in range(n)), sizes=SIZES,
                     losses=full[:, 1:], zero_shot=full[:, 0] if with_zero_shot else None,
                     n_params=np.array([1e8, 3e8, 7e8, 1.3e9, 2.7e9]), family=("",) * n)


@pytest.mark.parametrize("name", list(REGISTRY))
@pytest.mark.parametrize("max_data", [800.0, 12800.0 / 2, 200.0])
@pytest.mark.parametrize("with_zero_shot", [True, False])
def test_selector_contract(name, max_data, with_zero_shot):
    table = small_table(with_zero_shot)
    selector = get_selector(name)
    assert isinstance(selector, BaseSelector)
    assert selector.name == name and selector.summary
    view = BudgetView(table, max_data, float(SIZES[-1]))
    try:
        sel = selector.select(view)
    except NotApplicable as exc:
        assert str(exc)  # says why
        return
    assert isinstance(sel, Selection)
    assert sel.score.shape == (table.n_models,) and np.all(np.isfinite(sel.score))
    assert isinstance(sel.selected, int) and 0 <= sel.selected < table.n_models
    if sel.predicted is not None:
        assert sel.predicted.shape == (table.n_models,)
        assert np.all(np.isfinite(sel.predicted)) and np.all(sel.predicted > 0)
    if sel.lower is not None:
        assert np.all(sel.lower <= sel.upper)
    assert view.cost() <= view.full_cost()


def test_lensllm_is_not_applicable_on_a_plain_table():
    view = BudgetView(small_table(), 6400.0, float(SIZES[-1]))
    with pytest.raises(NotApplicable, match="NTK"):
        get_selector("lensllm").select(view)
    assert not view.paid.any()


def test_registry_has_the_published_methods():
    assert {"zero_shot", "model_size", "subtuning", "vanilla_fit", "rectified_fit", "ats",
            "lensllm"} <= set(REGISTRY)
