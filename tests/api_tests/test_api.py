"""The Python API: the same numbers as the commands, typed results, a light import."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lensllm
from lensllm.bench import BudgetView, load_table
from lensllm.cli import main
from lensllm.exceptions import InputError
from lensllm.laws import RectifiedLaw, rectified_loss
from lensllm.laws.service import fit_points, parameter_errors
from lensllm.selection.fits import RectifiedFit


def _cli(capsys, argv):
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv, kwargs", [
    (["--table", "gigaword", "--law", "rectified", "--max-data", "25600"],
     dict(data="gigaword", law="rectified", max_data=25600)),
    (["--table", "flan", "--law", "power", "--max-data", "51200", "--interval", "bootstrap",
      "--loss-goal", "1.7"],
     dict(data="flan", law="power", max_data=51200, interval="bootstrap", loss_goal=1.7)),
])
def test_fit_gives_the_numbers_of_the_command(capsys, argv, kwargs):
    out = _cli(capsys, ["fit", *argv, "--json"])
    result = lensllm.fit(kwargs.pop("data"), **kwargs)
    assert result.to_json() == out
    assert json.loads(out) == json.loads(result.to_json())


def test_bench_gives_the_records_of_the_command(capsys):
    out = _cli(capsys, ["bench", "--table", "gigaword", "--methods", "ats,rectified_fit",
                        "--ratios", "8,64", "--json"])
    result = lensllm.bench("gigaword", methods=["ats", "rectified_fit"], ratios=[8, 64])
    assert result.to_json() == out


def test_fit_and_the_selector_give_identical_numbers_for_the_same_points():
    """One service: `lensllm fit` and the rectified_fit selector (as `lensllm select` runs
    it, with the default interval policy) agree on L(D*) and its interval."""
    table = load_table("gigaword")
    target = float(table.sizes[-1])
    fit = lensllm.fit(table, law="rectified", max_data=25600)
    sel = RectifiedFit(**RectifiedFit.report_options).select(
        BudgetView(table, 25600, target))
    np.testing.assert_array_equal(sel.predicted, fit.prediction.predicted)
    np.testing.assert_array_equal(sel.lower, fit.prediction.lower)
    np.testing.assert_array_equal(sel.upper, fit.prediction.upper)
    assert fit.prediction.interval == "calibrated"


def test_fit_takes_curves_and_a_data_frame():
    pd = pytest.importorskip("pandas")
    sizes = [0, 100, 200, 400, 800, 1600]
    curves = {m: {d: float(rectified_loss(d, b, 10.0, 0.5, 1.0)) for d in sizes}
              for m, b in (("a", 40.0), ("b", 60.0))}
    from_curves = lensllm.fit(curves, target=6400, interval="bootstrap")
    frame = pd.DataFrame({str(d): [curves[m][d] for m in curves] for d in sizes},
                         index=pd.Index(list(curves), name="model"))
    frame["size"] = [1, 2]
    from_frame = lensllm.fit(frame, target=6400, interval="bootstrap")
    np.testing.assert_allclose(from_curves.prediction.predicted,
                               [40 / 90 + 1, 60 / 90 + 1], rtol=1e-5)
    np.testing.assert_array_equal(from_curves.prediction.predicted,
                                  from_frame.prediction.predicted)
    out = from_curves.to_frame()
    assert list(out.index) == ["a", "b"] and "beta_stderr" in out.columns


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="`law`"):
        lensllm.fit("gigaword", law="nope")
    with pytest.raises(InputError, match="`interval`"):
        lensllm.fit("gigaword", interval="raw")
    with pytest.raises(InputError, match="same sizes"):
        lensllm.fit({"a": {100: 2.0, 200: 1.9}, "b": {100: 2.1, 400: 1.8}})
    with pytest.raises(InputError, match="`models`"):
        lensllm.plan("gigaword", models=["no-such-model"])


def test_standard_errors_match_the_spread_of_refits_on_new_noise():
    """The bootstrap standard error of beta is the spread of beta over fits of fresh noisy
    copies of one curve (a Monte-Carlo check, independent of the bootstrap)."""
    d = np.array([0, 100, 200, 400, 800, 1600, 3200, 6400, 12800.0])
    clean = rectified_loss(d, 40.0, 10.0, 0.5, 1.0)
    rng = np.random.default_rng(0)
    noisy = clean * np.exp(0.01 * rng.standard_normal((400, d.size)))
    batch = RectifiedLaw().fit_many(d, noisy)
    spread = np.std(batch.params["beta"], ddof=1)
    stderr = parameter_errors(fit_points(RectifiedLaw(), d[1:], noisy[:40, 1:],
                                         noisy[:40, 0]))["beta"]
    assert 0.6 < np.median(stderr) / spread < 1.6


def test_import_is_light_and_torch_free():
    code = ("import sys, lensllm; light = 'numpy' not in sys.modules; "
            "r = lensllm.fit('gigaword', max_data=25600, interval='bootstrap'); "
            "lensllm.plan('gigaword', max_data=25600, models=['t5-base']); "
            "print(light, 'torch' in sys.modules, sorted(lensllm.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split(" ", 2)
    assert out[0] == "True" and out[1] == "False"
    for name in ("fit", "plan", "select", "bench", "FitResult", "SelectResult"):
        assert f"'{name}'" in out[2]


def test_bench_is_both_the_package_and_the_call():
    from lensllm.bench import load_table as from_package

    assert lensllm.bench.load_table is from_package
    assert lensllm.bench("gigaword", methods=["zero_shot"], ratios=[8]).records[0][
        "method"] == "zero_shot"
