"""`[ntk] curvature = true`: Hessian diagnostics stored with the features, shown per candidate."""

from __future__ import annotations

import pytest
from select_tiny import write_select_config


def test_curvature_is_stored_and_shown_in_the_report(tmp_path):
    from lensllm.pipeline import load_select_config, run_select
    from lensllm.report.select_report import ranking_rows, write_select_report

    path = write_select_config(tmp_path, candidates=("tiny:llama", "tiny:opt"),
                               extra="curvature = true\n")
    outcome = run_select(load_select_config(path), threads=1)
    rows = {r["model"]: r for r in ranking_rows(outcome)}
    for model, spec in zip(outcome.view.models, outcome.view.ntk):
        curv = spec.meta["curvature"]
        assert curv["n_examples"] == 4 and curv["hvps"] == curv["lanczos_steps"] + curv["probes"]
        assert rows[model]["curvature"] == {"top_eigenvalue": pytest.approx(curv["top_eigenvalue"]),
                                            "trace": pytest.approx(curv["trace"])}
    page = write_select_report(outcome, tmp_path / "rep").read_text()
    assert "top Hessian eigenvalue" in page and "Hessian trace" in page
    top = outcome.view.ntk[0].meta["curvature"]["top_eigenvalue"]
    assert f"{top:.4g}" in page
    # a second run reuses the stored features, curvature included
    again = run_select(load_select_config(path), threads=1)
    assert again.view.ntk[0].meta["curvature"] == outcome.view.ntk[0].meta["curvature"]
