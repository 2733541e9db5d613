"""Losses the fits are exact for, and nothing else: inside ``LOSS_RANGE`` every law's fit
is scale invariant (the law is linear in its scale parameters and fitted in log space, so
losses times c give predictions times c), outside it a loss is refused by name, never
fitted into overflow warnings and a "success" on nonsense."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lensllm.bench import load_table
from lensllm.exceptions import InputError, TableError
from lensllm.laws import LOSS_RANGE, get_law


def _curves():
    table = load_table("gigaword")
    keep = table.sizes <= 25600
    d = np.concatenate([[0.0], table.sizes[keep]])
    return d, np.column_stack([table.zero_shot, table.losses[:, keep]])


@pytest.mark.parametrize("law_name", ["rectified", "power"])
def test_fits_are_scale_invariant_across_the_accepted_range(law_name):
    d, losses = _curves()
    if law_name == "power":  # infinite at D = 0
        d, losses = d[1:], losses[:, 1:]
    low, high = LOSS_RANGE
    factors = [low / losses.min(), 1e-3, 1e3, high / losses.max()]
    reference = get_law(law_name).fit_many(d, losses).predict([409600.0])[:, 0]
    for c in factors:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no numpy warning anywhere in the range
            fit = get_law(law_name).fit_many(d, losses * c)
        assert fit.success.all()
        np.testing.assert_allclose(fit.predict([409600.0])[:, 0] / c, reference, rtol=1e-6)


@pytest.mark.parametrize("value", [LOSS_RANGE[0] / 2, 1e-300, 5e-324, LOSS_RANGE[1] * 2])
def test_a_loss_outside_the_range_is_refused_by_the_fit(value):
    d, losses = _curves()
    losses = losses.copy()
    losses[1, 3] = value
    with pytest.raises(InputError, match=r"curve #1: loss at D=800 .*outside"):
        get_law("rectified").fit_many(d, losses)


@pytest.mark.parametrize("cell", ["1e-300", "9e-7", "5e-324"])
def test_a_table_loss_below_the_range_names_its_line_and_column(tmp_path, cell):
    path = tmp_path / "t.csv"
    path.write_text(f"config name,0,200,400,size\na,3,2,{cell},100\nb,3,2.2,1.6,200\n")
    with pytest.raises(TableError, match=r"line 2 \(model 'a'\), column '400': loss must be "
                                         r">= 1e-06"):
        load_table(path)
