"""`lensllm bench --grid / --max-params` on the command line: records carry `options` and
`max_params`, `--out` writes a heatmap per grid, bad input is one stderr line, status 2."""

from __future__ import annotations

import json

import pytest

from cli_helpers import assert_one_line_error, run_cli


def test_grid_json_records_carry_their_options(capsys):
    status, out, _ = run_cli(capsys, ["bench", "--table", "flan", "--methods", "ats",
                                      "--ratios", "8,512", "--grid", "k=3,5",
                                      "--grid", "delta=1,5", "--json"])
    assert status == 0
    records = json.loads(out)
    assert len(records) == 2 * 2 * 2
    assert {json.dumps(r["options"], sort_keys=True) for r in records} == {
        '{"delta": 1.0, "k": 3}', '{"delta": 1.0, "k": 5}', '{"delta": 5.0, "k": 3}',
        '{"delta": 5.0, "k": 5}'}
    assert all("max_params" not in r for r in records)


def test_max_params_json_records_carry_the_constraint(capsys):
    status, out, _ = run_cli(capsys, ["bench", "--table", "gigaword", "--methods",
                                      "model_size", "--ratios", "8",
                                      "--max-params", "7e8,7e9", "--json"])
    assert status == 0
    records = {r["max_params"]: r for r in json.loads(out)}
    assert set(records) == {7e8, 7e9} and all("options" not in r for r in records.values())
    # model_size picks the largest admissible model
    assert records[7e8]["selected"] != records[7e9]["selected"]


def test_grid_text_rows_and_out_heatmaps(capsys, tmp_path):
    status, out, _ = run_cli(capsys, ["bench", "--table", "gigaword", "--methods", "ats",
                                      "--ratios", "8,16", "--grid", "delta=1,5",
                                      "--out", str(tmp_path)])
    assert status == 0
    assert "ats delta=1" in out and "ats delta=5" in out
    for name in ("heatmap_gigaword_ats_pearcorr.png", "heatmap_gigaword_ats_relacc.png",
                 "summary.md", "bench.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(json.loads((tmp_path / "bench.json").read_text())) == 4


@pytest.mark.parametrize("argv, words", [
    (["--grid", "k"], ["NAME=V1,V2"]),
    (["--grid", "growth=1,2"], ["growth", "not an option", "ats"]),
    (["--grid", "k=0"], ["k=0", "must be >= 2"]),
    (["--max-params", "1e3"], ["max_params", "keeps 0 model", "flan"]),
    (["--max-params", "x"], ["--max-params", "'x'"]),
])
def test_bad_study_options_give_one_line(capsys, tmp_path, argv, words):
    out_dir = tmp_path / "out"
    status, out, err = run_cli(capsys, ["bench", "--table", "flan", "--methods", "ats",
                                        "--out", str(out_dir)] + argv)
    assert_one_line_error(status, out, err, words)
    assert not out_dir.exists()  # nothing half-written
