"""The data plan in `lensllm select`: JSON, text lines, the report section, `loss_goal`."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from lensllm.laws import RectifiedLaw
from select_tiny import write_select_config


def _with_goal(outcome, goal):
    sel = dataclasses.replace(outcome.config.selection, loss_goal=goal)
    return dataclasses.replace(outcome, config=dataclasses.replace(outcome.config, selection=sel))


def _closed_form_need(outcome, model, goal):
    """Data needed from the rectified law fitted here to the same points, in closed form."""
    i = outcome.view.models.index(model)
    sizes, losses = outcome.observed[i]
    d = np.concatenate([[0.0], sizes])
    y = np.concatenate([[outcome.view.zero_shot[i]], losses])
    p = RectifiedLaw().fit(d, y).fit_.params
    if goal <= p["E"]:
        return None
    return max((p["B"] / (goal - p["E"]) - p["D_l"]), 0.0) ** (1 / p["beta"])


def test_json_has_the_plan_and_the_data_needed(tiny_select):
    from lensllm.commands.select import print_outcome

    _, outcome = tiny_select
    best = outcome.selection.predicted[outcome.selection.selected]
    goal = float(best) * 0.98  # a little below the best predicted L(D*)
    out = io.StringIO()
    print_outcome(_with_goal(outcome, goal), as_json=True, stream=out)
    plan = json.loads(out.getvalue())["planning"]
    assert plan["loss_goal"] == goal and plan["target"] == outcome.config.target
    assert plan["sizes"][0] == pytest.approx(outcome.config.target / 8)
    names = [c["model"] for c in plan["candidates"]]
    assert sorted(names) == sorted(outcome.view.models)  # two candidates: both in the top 3
    assert plan["advice"] and all(seg["model"] in plan["advice"] for seg in plan["leaders"])
    for rec in plan["data_needed"]:
        expected = _closed_form_need(outcome, rec["model"], goal)
        if expected is None:
            assert rec["data_needed"] is None and "does not reach" in rec["note"]
        else:  # the selector's curve is this rectified law; read on a grid, interpolated
            assert rec["data_needed"] == pytest.approx(expected, rel=2e-3)


def test_text_prints_the_advice_and_the_need(tiny_select):
    from lensllm.commands.select import print_outcome

    _, outcome = tiny_select
    out = io.StringIO()
    print_outcome(_with_goal(outcome, 50.0), stream=out)
    text = out.getvalue()
    assert "data plan (top 2, rectified_fit (the selector's curves)): " in text
    assert text.count("to reach loss 50, ") == 2  # above every loss of the curves
    assert "already reached at" in text


def test_report_has_a_planning_section(tiny_select, tmp_path):
    from lensllm.report.select_report import write_select_report

    _, outcome = tiny_select
    page = write_select_report(_with_goal(outcome, 50.0), tmp_path / "rep").read_text()
    assert "<h2>Data planning</h2>" in page and "Data needed to reach a test loss of 50" in page


def test_loss_goal_must_be_positive(tmp_path):
    from lensllm.exceptions import ConfigError
    from lensllm.pipeline import load_select_config

    path = write_select_config(tmp_path)
    text = path.read_text().replace("[selection]", "[selection]\nloss_goal = -1", 1)
    path.write_text(text)
    with pytest.raises(ConfigError, match="selection.loss_goal"):
        load_select_config(path)


def test_plan_and_ranking_agree_at_d_star(tiny_select):
    """One prediction everywhere: the plan's curves and bands at D* are the ranking's
    predictions and intervals (the selector's distribution), and its leader there is the
    pick."""
    from lensllm.commands.select import print_outcome

    _, outcome = tiny_select
    out = io.StringIO()
    print_outcome(outcome, as_json=True, stream=out)
    rec = json.loads(out.getvalue())
    plan, ranking = rec["planning"], {r["model"]: r for r in rec["ranking"]}
    k = plan["sizes"].index(outcome.config.target)
    for cand in plan["candidates"]:
        row = ranking[cand["model"]]
        assert cand["predicted"][k] == pytest.approx(row["predicted"], rel=1e-12)
        assert cand["lower"][k] == pytest.approx(row["lower"], rel=1e-9, abs=1e-12)
        assert cand["upper"][k] == row["upper"] or \
            cand["upper"][k] == pytest.approx(row["upper"], rel=1e-9)
    lead = [s["model"] for s in plan["leaders"] if s["from"] <= outcome.config.target <= s["to"]]
    assert lead[0] == rec["selected"]


def test_json_has_p_best_summing_to_one_and_the_headline(tiny_select):
    from lensllm.commands.select import print_outcome
    from lensllm.selection.p_best import CLEAR_WINNER

    _, outcome = tiny_select
    out = io.StringIO()
    print_outcome(outcome, as_json=True, stream=out)
    rec = json.loads(out.getvalue())
    probs = [r["p_best"] for r in rec["ranking"]]
    assert len(probs) == outcome.view.n_models and sum(probs) == pytest.approx(1.0)
    assert rec["clear_winner_p_best"] == CLEAR_WINNER
    assert rec["predictive"]["note"] and rec["headline"]
    pick = next(r for r in rec["ranking"] if r["selected"])
    if rec["predictive"]["known"] and pick["p_best"] > CLEAR_WINNER:
        assert rec["headline"].startswith("Pick ") and f"{pick['p_best']:.2f}" in rec["headline"]
    else:
        assert rec["headline"].startswith("No clear winner: ")
