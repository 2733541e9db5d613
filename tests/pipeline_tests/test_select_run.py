"""`lensllm select` on tiny models: ranking, counted cost, store reuse, the report."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from lensllm.exceptions import InputError


def _store_rows(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT model, size, status FROM runs").fetchall()
    finally:
        con.close()


def test_every_candidate_ranked_by_predicted_loss(tiny_select):
    from select_tiny import CANDIDATES

    _, outcome = tiny_select
    view, sel = outcome.view, outcome.selection
    assert view.models == CANDIDATES
    assert not outcome.failed
    assert sel.selected == int(np.argmin(sel.predicted))
    assert np.all(sel.lower <= sel.predicted) and np.all(sel.predicted <= sel.upper)


def test_zero_shot_and_losses_come_from_the_store(tiny_select):
    from lensllm.store import open_store

    path, outcome = tiny_select
    view = outcome.view
    with open_store(path.parent / "select.sqlite") as store:
        runs = store.get_runs(status="finished")
    zs = {r.key.model: r.result.test_loss for r in runs if r.key.size == 0}
    assert view.zero_shot.tolist() == [zs[m] for m in view.models]
    for i, m in enumerate(view.models):
        sizes, losses = outcome.observed[i]
        for s, loss in zip(sizes, losses):
            (rec,) = [r for r in runs if r.key.model == m and r.key.size == int(s)]
            assert loss == rec.result.test_loss


def test_cost_is_the_counted_flops_of_the_paid_runs(tiny_select):
    from select_tiny import TARGET

    from lensllm.store import open_store

    path, outcome = tiny_select
    with open_store(path.parent / "select.sqlite") as store:
        runs = [r for r in store.get_runs(status="finished") if r.key.size > 0]
    # rectified_fit pays for every affordable run
    assert outcome.view.paid.all()
    assert outcome.view.cost() == pytest.approx(sum(r.result.flops for r in runs))
    # No run at D* in the store: the denominator is the recipe's estimate, between training
    # the guaranteed epochs and every planned epoch at D* (tokens per example of the
    # largest run; batch 8, 2 planned epochs, 1 guaranteed, at least 4 steps).
    assert outcome.view.full_cost_source == "estimated"
    low = high = 0.0
    for m in outcome.view.models:
        big = max((r for r in runs if r.key.model == m), key=lambda r: r.key.size)
        per_example = big.result.train_tokens / (big.result.steps * 8)  # sizes divide by 8
        low += 6 * big.result.n_params * per_example * TARGET * 1
        high += 8 * big.result.n_params * per_example * TARGET * 2
    assert low * 0.9 <= outcome.view.full_cost() <= high * 1.1
    assert 0 < outcome.cost_fraction < 1


def test_second_invocation_runs_nothing_new(tiny_select):
    from lensllm.pipeline import load_select_config, run_select

    path, first = tiny_select
    before = _store_rows(path.parent / "select.sqlite")
    again = run_select(load_select_config(path), threads=1)
    assert again.ran == 0
    assert _store_rows(path.parent / "select.sqlite") == before
    np.testing.assert_array_equal(again.selection.predicted, first.selection.predicted)


def test_ntk_features_stored_with_the_learning_rate(tiny_select):
    from lensllm.store import open_store

    path, outcome = tiny_select
    with open_store(path.parent / "select.sqlite") as store:
        feats = store.get_ntk()
    assert sorted(f.model for f in feats) == sorted(outcome.view.models)
    assert all(f.extra["eta"] == 3e-3 and f.n == 4 for f in feats)
    for spec in outcome.view.ntk:
        # F(0) = ||r0||^2 = sum of the squared per-example initial losses
        assert spec.ntk_loss(0.0) == pytest.approx(float(np.sum(spec.proj_sq)))


def test_law_fits_predict_at_the_target(tiny_select):
    _, outcome = tiny_select
    rect = outcome.laws["rectified"]
    # the rectified_fit selector and the report's rectified fit see the same points
    np.testing.assert_allclose(rect.predicted, outcome.selection.predicted, rtol=1e-6)
    for name in ("lens_fit_t", "lens_fixed_t"):
        assert np.all(np.isfinite(outcome.laws[name].predicted)), outcome.laws[name].notes


def test_sizes_outside_the_budget_are_refused(tiny_select):
    _, outcome = tiny_select
    with pytest.raises(InputError, match="not an affordable size"):
        outcome.view.observe(0, 64)


def test_report_is_self_contained(tiny_select, tmp_path):
    from lensllm.report.select_report import write_select_report

    _, outcome = tiny_select
    index = write_select_report(outcome, tmp_path / "rep")
    page = index.read_text()
    assert page.count('<img src="data:image/png;base64,') == 6
    for png in ("curves.png", "laws.png", "ranking.png", "cost.png", "planning.png",
                "runs.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:4] == b"\x89PNG"
    from lensllm.report.verdict import headline

    words = headline(outcome)  # the verdict, its first words in bold
    assert words.startswith(("Pick ", "No clear winner: "))
    assert ("<b>Pick " if words.startswith("Pick ") else "<b>No clear winner</b>") in page
    assert "tiny:gpt2" in page and "How far to trust this" in page
