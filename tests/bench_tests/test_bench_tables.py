"""The bench works unchanged on other tables in the same format: other row counts, model
names and sizes. Expected metrics are computed here from the table with numpy."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from lensllm.bench import DEFAULT_RATIOS, load_table
from lensllm.cli import main
from lensllm.laws import rectified_loss
from lensllm.selection import REGISTRY

SIZES = 50 * 3 ** np.arange(8)  # 50, 150, ..., 109350: not doublings, not the paper's sizes
NAMES = ["acme/tiny-7m", "acme/tiny-30m", "zeta-base", "zeta-large", "q9", "blue whale 2",
         "moss-1.3b"]
N_PARAMS = np.array([7e6, 3e7, 1.1e8, 3.4e8, 9e8, 2.7e9, 1.3e9])
# Rectified-law curves (noise-free), chosen so that the ranking changes with D.
B = np.array([30.0, 45.0, 60.0, 80.0, 70.0, 90.0, 55.0])
D_L = np.array([4.0, 8.0, 15.0, 25.0, 10.0, 40.0, 12.0])
BETA = np.array([0.30, 0.35, 0.40, 0.45, 0.38, 0.50, 0.33])
E = np.array([1.6, 1.4, 1.3, 1.1, 1.25, 1.0, 1.35])


def losses(d):
    return rectified_loss(np.asarray(d, float)[None, :], B[:, None], D_L[:, None],
                          BETA[:, None], E[:, None])


def write_table(path, *, zero_column=True, family=True):
    head = ["config name"] + (["0"] if zero_column else []) + [str(s) for s in SIZES] + ["size"]
    head += ["family"] if family else []
    full = losses(np.concatenate([[0], SIZES]))
    lines = [",".join(head)]
    for i, name in enumerate(NAMES):
        cells = [f'"{name}"'] + [repr(float(v)) for v in (full[i] if zero_column else full[i, 1:])]
        cells += [str(int(N_PARAMS[i]))] + (["fam"] if family else [])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def relacc(selected, truth):
    return float((truth.max() - truth[selected]) / (truth.max() - truth.min()))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = write_table(tmp_path_factory.mktemp("tables") / "acme_runs.csv")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["bench", "--json", "--table", str(path)]) == 0
    return json.loads(buf.getvalue())


def test_table_loads_with_its_own_names_and_sizes(tmp_path):
    table = load_table(write_table(tmp_path / "acme_runs.csv"))
    assert table.name == "acme_runs" and table.models == tuple(NAMES)
    np.testing.assert_array_equal(table.sizes, SIZES)
    np.testing.assert_allclose(table.zero_shot, B / D_L + E)


def test_one_record_per_ratio_and_method(records):
    assert len(records) == len(DEFAULT_RATIOS) * len(REGISTRY)
    for r in records:
        assert r["dataset"] == "acme_runs"
        assert r["max_data_num"] * r["budget_ratio"] == pytest.approx(SIZES[-1])


def test_zero_shot_and_model_size_match_hand_computation(records):
    truth = losses(SIZES)[:, -1]
    zs = losses([0])[:, 0]
    for r in (r for r in records if r["method"] == "zero_shot"):
        assert r["pearcorr"] == pytest.approx(corr(zs, truth), abs=1e-12)
        assert r["relacc"] == pytest.approx(relacc(int(np.argmin(zs)), truth), abs=1e-12)
        assert r["selected"] == NAMES[int(np.argmin(zs))]
    for r in (r for r in records if r["method"] == "model_size"):
        assert r["pearcorr"] == pytest.approx(corr(np.log(N_PARAMS), truth), abs=1e-12)
        assert r["selected"] == "blue whale 2"


def test_subtuning_uses_largest_affordable_column(records):
    truth = losses(SIZES)[:, -1]
    for r in (r for r in records if r["method"] == "subtuning"):
        col = int(np.flatnonzero(SIZES <= SIZES[-1] / r["budget_ratio"])[-1])
        score = losses(SIZES)[:, col]
        assert r["pearcorr"] == pytest.approx(corr(score, truth), abs=1e-12)
        assert r["selected"] == NAMES[int(np.argmin(score))]
        n_pay = (N_PARAMS * SIZES[col]).sum()
        assert r["cost_fraction"] == pytest.approx(n_pay / (N_PARAMS.sum() * SIZES[-1]))


def test_rectified_fit_recovers_noise_free_curves(records):
    """The table is generated from the rectified law: with >= 4 points (column 0 included)
    the fit extrapolates to D* almost exactly; with fewer it is reported not applicable."""
    for r in (r for r in records if r["method"] == "rectified_fit"):
        n_points = 1 + int((SIZES <= SIZES[-1] / r["budget_ratio"]).sum())
        if n_points < 4:
            assert r["pearcorr"] is None and "not applicable" in r["note"]
            continue
        assert r["rmse"] < 1e-3, r
        assert r["relacc"] == 1.0 and r["pearcorr"] > 0.999


def test_methods_that_cannot_run_say_so(records):
    lens = [r for r in records if r["method"] == "lensllm"]
    assert all(r["selected"] is None and "not applicable" in r["note"] for r in lens)
    for r in (r for r in records if r["method"] == "ats"):
        visible = int((SIZES <= SIZES[-1] / r["budget_ratio"]).sum())
        assert (r["selected"] is None) == (visible < 3)  # AtS needs k = 3 sizes


def test_table_without_zero_shot_or_family_column(tmp_path, capsys):
    path = write_table(tmp_path / "plain.csv", zero_column=False, family=False)
    assert main(["bench", "--json", "--table", str(path), "--ratios", "8",
                 "--methods", "zero_shot,rectified_fit,subtuning"]) == 0
    recs = {r["method"]: r for r in json.loads(capsys.readouterr().out)}
    assert "not applicable" in recs["zero_shot"]["note"]
    assert recs["rectified_fit"]["relacc"] == 1.0
    assert recs["subtuning"]["selected"] is not None


def test_text_output_names_the_methods_and_metrics(tmp_path, capsys):
    path = write_table(tmp_path / "acme_runs.csv")
    assert main(["bench", "--table", str(path), "--ratios", "8,64"]) == 0
    out = capsys.readouterr().out
    for word in ("=== acme_runs ===", "PearCorr (%)", "RelAcc (%)", "cost", "1/8", "1/64",
                 "rectified_fit", "not applicable"):
        assert word in out
