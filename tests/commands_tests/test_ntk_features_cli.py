"""``fit --law lensllm --ntk`` and ``bench --ntk``: features matched to table rows by model id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli

from lensllm.laws import lens_loss
from lensllm.ntk.spectrum import NTKSpectrum

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "zoo"
SIZES = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400, 12800.0])


def _synthetic(tmp_path):
    """Three models with known spectra (one file each, ids with a path prefix) and exact
    LensLLM curves at t = 50 steps."""
    feats = tmp_path / "features"
    feats.mkdir()
    rows = ["config name," + ",".join(str(int(s)) for s in SIZES) + ",size"]
    truth = {}
    for i, (b, beta, e) in enumerate([(40.0, 0.5, 1.0), (60.0, 0.4, 1.2), (25.0, 0.35, 0.8)]):
        spec = NTKSpectrum([3.0 + i, 1.0, 0.2], [4.0, 2.0 + i, 1.0], eta=1e-2,
                           meta={"model_id": f"./runs/m{i}", "probe_seed": 0})
        spec.save(feats / f"m{i}.json")
        f = float(spec.ntk_loss([50.0])[0])
        rows.append(f"m{i}," + ",".join(repr(float(v)) for v in lens_loss(SIZES, b, f, beta, e))
                    + f",{(i + 1) * 10**8}")
        truth[f"m{i}"] = (b, f, beta, e)
    path = tmp_path / "lens.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, feats, truth


def test_fit_lensllm_law_with_features_predicts_noise_free_curves(tmp_path, capsys):
    table, feats, truth = _synthetic(tmp_path)
    status, out, err = run_cli(capsys, ["fit", "--table", str(table), "--law", "lensllm",
                                        "--ntk", str(feats), "--max-data", "1600", "--json"])
    assert status == 0, err
    records = json.loads(out)
    assert [r["model"] for r in records] == ["m0", "m1", "m2"]
    for r in records:
        b, f, beta, e = truth[r["model"]]
        assert r["law"] == "lensllm"
        assert r["predicted"] == pytest.approx(lens_loss(12800.0, b, f, beta, e), rel=1e-3)
        assert r["t"] == pytest.approx(50.0, rel=0.05)


def test_fit_lensllm_names_the_models_without_features(tmp_path, capsys):
    table, feats, _ = _synthetic(tmp_path)
    (feats / "m1.json").unlink()
    status, out, err = run_cli(capsys, ["fit", "--table", str(table), "--law", "lensllm",
                                        "--ntk", str(feats), "--max-data", "1600"])
    assert_one_line_error(status, out, err, ["no NTK features for 1 of 3", "m1"])


@pytest.mark.parametrize("argv, words", [
    (["--law", "lensllm"], ["--law lensllm needs --ntk"]),
    (["--law", "rectified", "--ntk", "x"], ["--ntk goes only with --law lensllm"]),
])
def test_fit_ntk_option_pairs_with_the_lensllm_law(argv, words, tmp_path, capsys):
    table, _, _ = _synthetic(tmp_path)
    status, out, err = run_cli(capsys, ["fit", "--table", str(table), "--max-data", "1600",
                                        *argv])
    assert_one_line_error(status, out, err, words)


def test_unreadable_features_are_one_line_errors(tmp_path, capsys):
    table, _, _ = _synthetic(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{\"a\": 1}")
    for path, word in ((bad, "neither an NTK spectrum"), (tmp_path / "none", "does not exist")):
        status, out, err = run_cli(capsys, ["fit", "--table", str(table), "--law", "lensllm",
                                            "--ntk", str(path), "--max-data", "1600"])
        assert_one_line_error(status, out, err, [word])


@pytest.mark.parametrize("copy_id", ["./runs/m1", "m1", "/elsewhere/m1"])
def test_two_files_claiming_one_model_are_an_error_naming_both(tmp_path, capsys, copy_id):
    """The duplicate check runs over the files, before the folder is reduced to one
    spectrum per model (which silently kept one of them)."""
    table, feats, _ = _synthetic(tmp_path)
    spec = NTKSpectrum.load(feats / "m1.json")
    NTKSpectrum(spec.eigenvalues * 2, spec.proj_sq, eta=spec.eta,
                meta={**spec.meta, "model_id": copy_id}).save(feats / "z_copy.json")
    status, out, err = run_cli(capsys, ["fit", "--table", str(table), "--law", "lensllm",
                                        "--ntk", str(feats), "--max-data", "1600"])
    assert_one_line_error(status, out, err, ["m1", "two spectra"])
    if copy_id == "./runs/m1":
        assert "m1.json" in err and "z_copy.json" in err


def test_bench_ntk_on_the_zoo_gives_the_zoo_benchmarks_lensllm_numbers(capsys):
    """The committed zoo benchmark ran the ``lensllm`` selector on the store's spectra of
    ``lensllm select``; ``bench --ntk`` with the same features must reproduce it."""
    bench = json.loads((ZOO / "bench.json").read_text())
    zoo = {r["budget_ratio"]: r for r in bench["records"] if r["method"] == "lensllm"}
    status, out, err = run_cli(capsys, [
        "bench", "--table", str(ZOO / "zoo_table.csv"), "--ntk", str(ZOO / "ntk_features.json"),
        "--methods", "lensllm", "--ratios", ",".join(str(r) for r in sorted(zoo)),
        "--target", str(bench["target"]), "--json"])
    assert status == 0, err
    records = json.loads(out)
    assert len(records) == len(zoo) >= 2
    for rec in records:
        ref = zoo[rec["budget_ratio"]]
        assert rec["selected"] == ref["selected"]
        assert rec["relacc"] == pytest.approx(ref["relacc"], rel=1e-9)
        assert rec["pearcorr"] == pytest.approx(ref["pearcorr"], rel=1e-6)
        assert rec["rmse"] == pytest.approx(ref["rmse"], rel=1e-6)


def test_bench_without_features_reports_lensllm_not_applicable(capsys):
    status, out, err = run_cli(capsys, [
        "bench", "--table", str(ZOO / "zoo_table.csv"), "--methods", "lensllm",
        "--ratios", "8", "--target", str(json.loads((ZOO / "bench.json").read_text())["target"]),
        "--json"])
    assert status == 0, err
    (rec,) = json.loads(out)
    assert rec["pearcorr"] is None
