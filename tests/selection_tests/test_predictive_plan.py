"""The data plan read from the selector's predictive distribution: one story with the
ranking at D*."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.bench import load_table
from lensllm.bench.budget import BudgetView
from lensllm.pipeline.predictive import calibrated_curve
from lensllm.selection import get_selector
from lensllm.selection.predictive import calibrate
from lensllm.selection.predictive_plan import first_reach, plan_from_predictive, short


def test_first_reach_is_exact_on_a_power_law():
    grid = np.geomspace(1, 1e6, 50)
    values = np.vstack([grid ** -0.5, 2 * grid ** -0.5])
    need = first_reach(grid, values, 0.01)  # d^-0.5 = 0.01 at 1e4; 2 d^-0.5 at 4e4
    assert need == pytest.approx([1e4, 4e4], rel=1e-9)
    assert first_reach(grid, values, 5.0)[0] == grid[0]  # already reached
    assert np.isinf(first_reach(grid, values, 1e-9)).all()


def test_plan_and_ranking_agree_at_d_star():
    table = load_table("flan")
    target = float(table.sizes[-1])
    view = BudgetView(table, target / 8, target)
    sel = get_selector("rectified_fit").select(view)
    pred = calibrate(sel, view, lambda: get_selector("rectified_fit"),
                     lambda b, t: BudgetView(table, b, t))
    # as `select` puts it on the selection: the curves moved to the calibrated prediction
    largest = np.full(table.n_models, float(view.sizes[-1]))
    curve = calibrated_curve(sel, pred, largest, target)
    top = [int(i) for i in sel.ranking()[:3]]
    plan = plan_from_predictive([table.models[i] for i in top],
                                lambda d: curve(d)[top], pred.subset(top), largest[top], target,
                                law="rectified_fit", loss_goal=1.0)
    k = plan["sizes"].index(target)
    lo, hi = pred.interval(0.9)
    # over the paid sizes the curves are the selector's; at D* the calibrated median
    np.testing.assert_allclose(curve(view.sizes), sel.curve(view.sizes), rtol=1e-12)
    assert not np.allclose(pred.predicted, sel.predicted, rtol=1e-3)
    for j, i in enumerate(top):
        cand = plan["candidates"][j]
        assert cand["predicted"][k] == pytest.approx(np.exp(np.median(pred.replicates[i])),
                                                     rel=1e-9)
        assert cand["lower"][k] == pytest.approx(lo[i], rel=1e-6)  # same draws, float noise
        assert cand["upper"][k] == pytest.approx(hi[i], rel=1e-6)
    at_target = [s for s in plan["leaders"] if s["from"] <= target <= s["to"]]
    assert at_target[0]["model"] == table.models[sel.selected]
    assert "/" not in plan["advice"]  # short names only (no paths, no hub owners)
    assert len(plan["data_needed"]) == 3


def test_short_names():
    assert short("/home/u/.cache/models--a--b/snapshots/abc/") == "abc"
    assert short("facebook/opt-1.3b") == "opt-1.3b"
