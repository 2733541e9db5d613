"""`lensllm fit` on the command line: records, and bad input as one stderr line, status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lensllm.bench import load_table
from cli_helpers import run_cli
from lensllm.laws import rectified_loss


def test_more_parameters_than_points_names_the_option(capsys):
    status, out, err = run_cli(capsys, ["fit", "--table", "gigaword", "--law", "rectified",
                                        "--max-data", "400"])
    assert status == 2 and out == ""
    (line,) = err.splitlines()
    assert "--max-data 400" in line and "3 points" in line and "4 free parameters" in line
    assert "Traceback" not in err


def test_power_law_with_too_few_points(capsys):
    status, _out, err = run_cli(capsys, ["fit", "--table", "flan", "--law", "power",
                                        "--max-data", "400"])
    assert status == 2
    (line,) = err.splitlines()
    assert "--max-data 400" in line and "3 free parameters" in line


@pytest.mark.parametrize("argv, words", [
    (["--max-data", "0"], ["--max-data", "> 0"]),
    (["--max-data", "25600", "--target", "-1"], ["--target", "> 0"]),
    (["--max-data", "25600", "--law", "lens"], ["--law", "invalid choice"]),
])
def test_bad_options(argv, words, capsys):
    base = ["fit", "--table", "gigaword"] + ([] if "--law" in argv else ["--law", "rectified"])
    status, _out, err = run_cli(capsys, base + argv)
    assert status == 2
    (line,) = err.splitlines()
    for word in words:
        assert word in line


def test_bad_table_names_row_and_column(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    path.write_text("config name,0,200,400,800,size\na,3,2.5,2.2,2.0,10\nb,3,2.6,inf,2.1,20\n")
    status, _out, err = run_cli(capsys, ["fit", "--table", str(path), "--law", "rectified",
                                         "--max-data", "800"])
    assert status == 2
    (line,) = err.splitlines()
    assert "line 3" in line and "'b'" in line and "column '400'" in line


def test_fit_json_predicts_noise_free_curves(tmp_path, capsys):
    sizes = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400, 12800.0])
    params = [(40.0, 10.0, 0.5, 1.0), (60.0, 30.0, 0.4, 1.2), (25.0, 3.0, 0.35, 0.8)]
    rows = ["config name," + ",".join(str(int(s)) for s in sizes) + ",size"]
    for i, p in enumerate(params):
        rows.append(f"m{i}," + ",".join(repr(float(v)) for v in rectified_loss(sizes, *p))
                    + f",{(i + 1) * 10**8}")
    path = tmp_path / "synthetic.csv"
    path.write_text("\n".join(rows) + "\n")
    status, out, err = run_cli(capsys, ["fit", "--table", str(path), "--law", "rectified",
                                        "--max-data", "1600", "--json"])
    assert status == 0, err
    records = json.loads(out)
    assert [r["model"] for r in records] == ["m0", "m1", "m2"]
    for r, (b, d_l, beta, e) in zip(records, params):
        assert r["target"] == 12800
        assert r["beta"] == pytest.approx(beta, rel=1e-3)
        assert r["predicted"] == pytest.approx(rectified_loss(12800.0, b, d_l, beta, e),
                                               rel=1e-4)
        assert r["true"] == pytest.approx(rectified_loss(12800.0, b, d_l, beta, e))
        assert r["lower"] <= r["predicted"] <= r["upper"]
        assert r["success"]


def test_fit_text_output_lists_every_model(capsys):
    status, out, _ = run_cli(capsys, ["fit", "--table", "gigaword", "--law", "rectified",
                                      "--max-data", "25600"])
    assert status == 0
    table = load_table("gigaword")
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["model", "B", "D_l", "beta", "E"]
    assert len(lines) == 2 + table.n_models
    assert all(line.startswith(m) for line, m in zip(lines[1:], table.models))
    assert lines[-1].startswith("intervals: calibrated; extrapolation warp kappa measured")
