"""`lensllm fit --loss-goal`: the data each model needs, in JSON and text, "never" plainly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from lensllm.laws import rectified_loss

SIZES = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400, 12800.0])
PARAMS = [(40.0, 10.0, 0.5, 1.0), (60.0, 30.0, 0.4, 1.2), (25.0, 3.0, 0.35, 0.8)]


@pytest.fixture()
def synthetic_table(tmp_path):
    rows = ["config name," + ",".join(str(int(s)) for s in SIZES) + ",size"]
    for i, p in enumerate(PARAMS):
        rows.append(f"m{i}," + ",".join(repr(float(v)) for v in rectified_loss(SIZES, *p))
                    + f",{(i + 1) * 10**8}")
    path = tmp_path / "synthetic.csv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_loss_goal_json_is_the_closed_form_and_never_below_the_floor(synthetic_table, capsys):
    goal = 1.1  # above the floors of m0 (1.0) and m2 (0.8), below m1's (1.2)
    status, out, err = run_cli(capsys, ["fit", "--table", synthetic_table, "--law", "rectified",
                                        "--max-data", "3200", "--loss-goal", str(goal),
                                        "--json"])
    assert status == 0, err
    records = json.loads(out)
    for r, (b, d_l, beta, e) in zip(records, PARAMS):
        assert r["loss_goal"] == goal
        if goal > e:
            expected = (b / (goal - e) - d_l) ** (1 / beta)
            assert r["data_needed"] == pytest.approx(expected, rel=1e-3)
            assert r["data_needed_lower"] <= r["data_needed"] <= r["data_needed_upper"]
            assert r["note"] is None
        else:
            assert r["data_needed"] is None
            assert r["data_needed_lower"] is None and r["data_needed_upper"] is None
            assert r["note"].startswith("never") and "E = 1.2" in r["note"]


def test_loss_goal_text_has_the_columns_and_the_note(synthetic_table, capsys):
    status, out, _ = run_cli(capsys, ["fit", "--table", synthetic_table, "--law", "rectified",
                                      "--max-data", "3200", "--loss-goal", "1.1"])
    assert status == 0
    lines = out.splitlines()
    assert "D to reach 1.1" in lines[0] and "90% interval" in lines[0]
    assert lines[2].startswith("m1") and lines[2].split()[-2:] == ["never", "-"]
    assert any(line.startswith("m1: never") for line in lines[4:])


def test_loss_goal_on_a_bundled_table(capsys):
    status, out, err = run_cli(capsys, ["fit", "--table", "flan", "--law", "power",
                                        "--max-data", "204800", "--loss-goal", "1.8",
                                        "--json"])
    assert status == 0, err
    records = json.loads(out)
    assert len(records) == 30
    for r in records:
        if r["data_needed"] is not None:
            assert r["data_needed_lower"] <= r["data_needed"]
            assert r["data_needed_upper"] is None or r["data_needed"] <= r["data_needed_upper"]


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_loss_goal(value, capsys):
    status, out, err = run_cli(capsys, ["fit", "--table", "flan", "--law", "rectified",
                                        "--max-data", "204800", "--loss-goal", value])
    assert_one_line_error(status, out, err, ["--loss-goal", "> 0"])


def test_calibrated_intervals_against_the_bootstrap_alone(capsys):
    common = ["fit", "--table", "flan", "--law", "rectified", "--max-data", "204800",
              "--loss-goal", "1.6", "--json"]
    status, out, err = run_cli(capsys, common)
    assert status == 0, err
    cal = json.loads(out)
    status, out, err = run_cli(capsys, common + ["--interval", "bootstrap"])
    assert status == 0, err
    boot = json.loads(out)
    for c, b in zip(cal, boot):
        assert c["interval"] == "calibrated" and b["interval"] == "bootstrap"
        # the law's own answers do not depend on the interval
        assert c["predicted_law"] == pytest.approx(b["predicted"], rel=1e-12)
        assert c["data_needed_law"] == pytest.approx(b["data_needed"], rel=1e-12)
        assert c["lower"] <= c["predicted"] <= (c["upper"] or np.inf)
        assert c["data_needed_lower"] <= c["data_needed"] <= (c["data_needed_upper"] or np.inf)
    # FLAN steepens beyond 204,800: the median warp asks for less data than the law
    assert np.median([c["data_needed"] / c["data_needed_law"] for c in cal]) < 1


def test_too_few_points_for_a_calibration_say_so(synthetic_table, capsys):
    status, out, _ = run_cli(capsys, ["fit", "--table", synthetic_table, "--law", "rectified",
                                      "--max-data", "3200"])
    assert status == 0
    assert out.splitlines()[-1].startswith("intervals: bootstrap alone")
    assert "too few points" in out.splitlines()[-1]
