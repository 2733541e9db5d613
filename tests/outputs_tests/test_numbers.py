"""Losses as text: four decimals, significant digits where those would read 0.0000."""

from __future__ import annotations

import pytest

from lensllm.outputs.numbers import loss_text


@pytest.mark.parametrize(("x", "text"), [
    (1.2345678, "1.2346"), (0.01, "0.0100"), (0.0, "0.0000"), (12.5, "12.5000"),
    (0.000712345, "0.000712"), (1.23456e-05, "1.23e-05"), (0.0099999, "0.01"),
    (None, "-"), (float("nan"), "-"), (float("inf"), "inf"),
])
def test_losses_keep_three_significant_digits_below_a_hundredth(x, text):
    assert loss_text(x) == text


def test_two_small_losses_a_factor_apart_read_apart():
    # with .4f both read 0.0001 / 0.0007 or 0.0000; the reader must see the factor of seven
    assert loss_text(0.0001) != loss_text(0.0007)
    assert float(loss_text(0.000012)) == pytest.approx(0.000012)


def test_an_interval_is_both_ends_as_losses_or_a_dash():
    from lensllm.outputs.numbers import interval_text

    assert interval_text(0.5, 1.25) == "[0.5000, 1.2500]"
    assert interval_text(5.19e-08, 0.000678) == "[5.19e-08, 0.000678]"
    assert interval_text(None, None) == "-"
