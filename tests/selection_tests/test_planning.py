"""Data planning for candidates: curves, crossings, advice and data needed, on closed forms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lensllm.exceptions import InputError
from lensllm.laws import rectified_loss
from lensllm.laws.crossings import find_crossings, size_text
from lensllm.selection.planning import plan_candidates

SIZES = np.array([200, 400, 800, 1600, 3200, 6400, 12800, 25600.0])
TARGET = 51200.0
# A is lower at small D, B overtakes it (crossing inside D*/8 .. 8 D*).
TRUE = {"A": (40.0, 10.0, 0.5, 1.0), "B": (30.0, 3.0, 0.45, 0.95)}


def observed(params):
    return SIZES, rectified_loss(SIZES, *params)


def test_plan_of_noise_free_curves_matches_the_closed_forms():
    names = list(TRUE)
    zero = [rectified_loss(0.0, *TRUE[n]) for n in names]
    plan = plan_candidates(names, [observed(TRUE[n]) for n in names], zero, TARGET,
                           loss_goal=1.2)
    grid = np.array(plan["sizes"])
    assert grid[0] == pytest.approx(TARGET / 8) and grid[-1] == pytest.approx(TARGET * 8)
    for cand in plan["candidates"]:
        np.testing.assert_allclose(cand["predicted"], rectified_loss(grid, *TRUE[cand["model"]]),
                                   rtol=1e-4)
    exact = find_crossings(grid, np.array([rectified_loss(grid, *TRUE[n]) for n in names]))
    assert len(plan["crossings"]) == len(exact) == 1
    (c,) = plan["crossings"]
    assert (c["before"], c["after"]) == (names[exact[0].before], names[exact[0].after])
    assert c["size"] == pytest.approx(exact[0].size, rel=1e-3)
    lead_before = c["before"]
    assert plan["advice"].startswith(f"Below about {size_text(c['size'])} examples")
    assert f"choose {lead_before}" in plan["advice"] and plan["advice"].endswith(
        f"above, {c['after']}.")
    for rec in plan["data_needed"]:
        b, d_l, beta, e = TRUE[rec["model"]]
        assert rec["data_needed"] == pytest.approx((b / (1.2 - e) - d_l) ** (1 / beta),
                                                   rel=1e-3)
    json.dumps(plan, allow_nan=False)  # JSON-ready, no NaN or inf


def test_goal_below_a_floor_and_a_candidate_with_too_few_points():
    names = ["A", "B", "short"]
    obs = [observed(TRUE["A"]), observed(TRUE["B"]), (SIZES[:2], rectified_loss(SIZES[:2],
                                                                                 *TRUE["A"]))]
    plan = plan_candidates(names, obs, None, TARGET, loss_goal=0.97)  # E: 1.0 and 0.95
    assert [s["model"] for s in plan["skipped"]] == ["short"]
    need = {r["model"]: r for r in plan["data_needed"]}
    assert need["A"]["data_needed"] is None and need["A"]["note"].startswith("never")
    assert need["B"]["data_needed"] is not None


def test_bad_target():
    with pytest.raises(InputError, match="target > 0"):
        plan_candidates(["A"], [observed(TRUE["A"])], None, 0.0)


def test_pool_calibrates_and_exact_curves_need_no_warp():
    names = list(TRUE)
    pool_params = list(TRUE.values()) + [(50.0, 20.0, 0.4, 1.1), (35.0, 5.0, 0.5, 0.9),
                                         (45.0, 8.0, 0.3, 1.05)]
    pool = [(SIZES, rectified_loss(SIZES, *p), rectified_loss(0.0, *p)) for p in pool_params]
    zero = [rectified_loss(0.0, *TRUE[n]) for n in names]
    alone = plan_candidates(names, [observed(TRUE[n]) for n in names], zero, TARGET)
    # 2 x 4 back-tests < 10, and the sentence says what is needed
    assert alone["calibration"].startswith("none: the rectified law's back-tests need at "
                                           "least 6 points per candidate")
    assert "give 8;" in alone["calibration"]
    plan = plan_candidates(names, [observed(TRUE[n]) for n in names], zero, TARGET,
                           loss_goal=1.2, pool=pool)
    # 9 points each (with D = 0), 4 parameters: 4 back-tests per curve; D*/D_max = 2 keeps
    # the one-step ones only, too few, so every distance is pooled: 5 x 4.
    assert plan["calibration"].startswith("extrapolation warp kappa measured by 20 back-tests "
                                          "of 5 curves")
    grid = np.array(plan["sizes"])
    for cand in plan["candidates"]:
        np.testing.assert_allclose(cand["predicted"], rectified_loss(grid, *TRUE[cand["model"]]),
                                   rtol=1e-4)
    for rec in plan["data_needed"]:
        assert rec["data_needed"] == pytest.approx(rec["data_needed_law"], rel=1e-4)
    json.dumps(plan, allow_nan=False)
