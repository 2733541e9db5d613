"""`lensllm fit-quality`: per-model RMSDs and a summary per law (JSON or text), the published
RMSDs beside ours on the bundled tables, NTK files for the lens law, one-line errors."""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import assert_one_line_error, run_cli
from lensllm.laws import lens_loss
from lensllm.ntk.spectrum import NTKSpectrum


def test_json_has_every_model_and_a_summary_per_law(capsys, tmp_path):
    status, out, _ = run_cli(capsys, ["fit-quality", "--table", "gigaword", "--json",
                                      "--out", str(tmp_path)])
    assert status == 0
    payload = json.loads(out)
    assert len(payload["models"]) == 30
    assert {s["law"] for s in payload["summary"]} == {"power", "rectified", "paper_power"}
    rect = next(s for s in payload["summary"] if s["law"] == "rectified")
    assert rect["above_published"] == 0 and rect["mean"] <= rect["published_mean"]
    assert "lens" in payload["notes"]["gigaword"]
    assert (tmp_path / "fit_quality_gigaword.png").stat().st_size > 0


def test_ntk_files_add_the_lens_law(capsys, tmp_path):
    sizes = np.geomspace(200, 25600, 8)
    lines = ["config name," + ",".join(str(int(s)) for s in sizes) + ",size"]
    files = []
    for i, (b, t) in enumerate([(30.0, 50.0), (10.0, 200.0)]):
        spec = NTKSpectrum(np.array([0.02, 0.005]), np.array([4.0, 2.0]), eta=0.1,
                           meta={"model_id": f"org/m{i}"})
        files.append(str(spec.save(tmp_path / f"m{i}.ntk.json")))
        loss = lens_loss(sizes, b, float(spec.ntk_loss(t)), 0.5, 1.0)
        lines.append(f"org/m{i}," + ",".join(repr(float(v)) for v in loss) + ",1000")
    table = tmp_path / "runs.csv"
    table.write_text("\n".join(lines) + "\n")
    status, out, _ = run_cli(capsys, ["fit-quality", "--table", str(table), "--laws",
                                      "rectified,lens", "--json", "--ntk", *files])
    assert status == 0
    records = json.loads(out)["models"]
    assert all(r["rmsd"]["lens"] < 1e-4 and not r["published"] for r in records)


def test_lens_without_ntk_is_one_line(capsys):
    status, out, err = run_cli(capsys, ["fit-quality", "--table", "flan", "--laws", "lens"])
    assert_one_line_error(status, out, err, ["lens", "NTK"])


def test_unknown_law_is_one_line(capsys):
    status, out, err = run_cli(capsys, ["fit-quality", "--laws", "cubic"])
    assert_one_line_error(status, out, err, ["--laws", "cubic"])
