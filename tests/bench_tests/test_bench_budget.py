"""The budget protocol (`lensllm.bench.budget.BudgetView`): a method sees and pays for only
the columns up to its budget, and its cost is computed from what it paid for."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from lensllm.bench import DEFAULT_RATIOS, BudgetView, load_table, run_bench
from lensllm.exceptions import InputError
from lensllm.selection import REGISTRY, get_selector

TABLE = load_table("gigaword")
TARGET = float(TABLE.sizes[-1])


@dataclass(frozen=True)
class Spectrum:
    eigenvalues: np.ndarray
    proj_sq: np.ndarray
    eta: float


def fake_spectra(n: int) -> list[Spectrum]:
    """One small synthetic NTK spectrum per model, so that `lensllm` runs too."""
    return [Spectrum(np.array([1.0, 0.1, 0.01]), np.array([5.0 + i, 3.0, 1.0]), 1e-3)
            for i in range(n)]


def garbled(table, max_data_num: float, seed: int = 0):
    """A copy of ``table`` whose columns above ``max_data_num`` (D* included) are random."""
    rng = np.random.default_rng(seed)
    losses = table.losses.copy()
    hidden = table.sizes > max_data_num
    losses[:, hidden] = rng.uniform(0.1, 9.0, size=(table.n_models, int(hidden.sum())))
    return replace(table, losses=losses)


def _outcome(result):
    sel = result.selection
    if sel is None:
        return (result.record.note,)
    arrays = [sel.score, sel.predicted, sel.lower, sel.upper]
    return (sel.selected, result.record.cost_fraction, result.paid.tobytes(),
            *[None if a is None else np.asarray(a).tobytes() for a in arrays])


@pytest.mark.parametrize("ratio", [8, 512])
def test_every_method_is_blind_to_columns_above_its_budget(ratio):
    """Every registered method gives the same selection, scores, predictions, intervals and
    cost on the table and on a copy whose hidden columns are garbage."""
    max_data = TARGET / ratio
    other = garbled(TABLE, max_data, seed=ratio)
    ntk = {TABLE.name: fake_spectra(TABLE.n_models)}
    options = {"rectified_fit": {"interval": "calibrated"}}
    a = run_bench([TABLE], list(REGISTRY), [ratio], ntk=ntk, options=options)
    b = run_bench([other], list(REGISTRY), [ratio], ntk=ntk, options=options)
    assert [r.record.method for r in a] == list(REGISTRY)
    ran = {r.record.method for r in a if r.selection is not None}
    assert {"ats", "subtuning", "rectified_fit", "vanilla_fit", "lensllm"} <= ran
    for ra, rb in zip(a, b):
        assert _outcome(ra) == _outcome(rb), ra.record.method


def test_view_holds_no_hidden_column():
    max_data = TARGET / 64
    sentinel = garbled(TABLE, max_data)
    hidden_values = set(sentinel.losses[:, TABLE.sizes > max_data].ravel().tolist())
    view = BudgetView(sentinel, max_data, TARGET)
    np.testing.assert_array_equal(view.sizes, TABLE.sizes[TABLE.sizes <= max_data])
    for name, value in vars(view).items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert not hidden_values & set(value.ravel().tolist()), name
            if value.ndim == 2:
                assert value.shape[1] == view.sizes.size, name
    assert not hidden_values & set(view.observe_all().ravel().tolist())


def test_view_arrays_are_copies():
    view = BudgetView(TABLE, TARGET / 8, TARGET)
    view.observe_all()[:] = -1.0
    assert np.all(view.observe_all() > 0)
    assert not np.shares_memory(view.zero_shot, TABLE.zero_shot)
    assert not np.shares_memory(view.n_params, TABLE.n_params)


@pytest.mark.parametrize("size", [TARGET / 8 * 2, TARGET, 300.0, 0.0])
def test_observe_refuses_sizes_beyond_the_budget_or_absent(size):
    view = BudgetView(TABLE, TARGET / 8, TARGET)
    with pytest.raises(InputError, match="not a visible column"):
        view.observe(0, size)
    assert not view.paid.any()


def test_budget_below_smallest_column_raises():
    with pytest.raises(InputError, match="below the smallest size"):
        BudgetView(TABLE, 100.0, TARGET)


def test_observe_records_payment_and_cost_by_hand():
    view = BudgetView(TABLE, TARGET / 8, TARGET)
    view.observe([0, 3], [200.0, 800.0])
    view.observe(0, 200.0)  # reusing a run costs nothing more
    expected = TABLE.n_params[0] * 200 + TABLE.n_params[3] * 800
    assert view.cost() == pytest.approx(expected, rel=1e-15)
    assert view.full_cost() == pytest.approx(TABLE.n_params.sum() * TARGET, rel=1e-15)
    assert view.paid.sum() == 2


@pytest.mark.parametrize("ratio", DEFAULT_RATIOS)
def test_subtuning_costs_exactly_one_over_ratio(ratio):
    (result,) = run_bench([TABLE], ["subtuning"], [ratio])
    assert result.record.cost_fraction == pytest.approx(1 / ratio, rel=1e-12)


@pytest.mark.parametrize("ratio", DEFAULT_RATIOS)
def test_ats_cost_is_the_p_plus_1_largest_sizes_of_each_model(ratio):
    """AtS pays, per model, for the ``p + 1`` largest affordable sizes (``p`` = points in its
    final line): cost = sum_m n_m * sum(top p_m + 1 sizes) / (sum_m n_m * D*)."""
    (result,) = run_bench([TABLE], ["ats"], [ratio])
    sizes = TABLE.sizes[TABLE.sizes <= TARGET / ratio]
    used = result.selection.info["points_used"]
    spent = sum(n * sizes[-(p + 1):].sum() for n, p in zip(TABLE.n_params, used))
    expected = spent / (TABLE.n_params.sum() * TARGET)
    assert result.record.cost_fraction == pytest.approx(expected, rel=1e-12)
    assert all(3 <= p <= sizes.size - 1 for p in used)


@pytest.mark.parametrize("method", ["zero_shot", "model_size"])
def test_free_methods_cost_nothing(method):
    (result,) = run_bench([TABLE], [method], [8])
    assert result.record.cost_fraction == 0.0


@pytest.mark.parametrize("method", ["rectified_fit", "vanilla_fit"])
def test_fitting_methods_pay_for_every_affordable_run(method):
    ratio = 16
    (result,) = run_bench([TABLE], [method], [ratio])
    sizes = TABLE.sizes[TABLE.sizes <= TARGET / ratio]
    assert result.record.cost_fraction == pytest.approx(sizes.sum() / TARGET, rel=1e-12)


def test_selectors_only_receive_a_budget_view(monkeypatch):
    """A selector sees the budget view, not the table (no attribute leads to hidden data)."""
    seen = []

    class Spy:
        def select(self, view):
            seen.append(view)
            return get_selector("zero_shot").select(view)

    monkeypatch.setattr("lensllm.bench.harness.get_selector", lambda name, **kw: Spy())
    run_bench([TABLE], ["zero_shot"], [8])
    (view,) = seen
    assert isinstance(view, BudgetView)
    assert not any(isinstance(v, type(TABLE)) for v in vars(view).values())
