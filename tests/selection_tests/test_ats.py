"""AtS on a curve with exactly ``k`` affordable sizes: the line goes through all of them and
nothing is tested (the original code's behaviour, which the published ablation depends on)."""

from __future__ import annotations

import numpy as np

from lensllm.selection.ats import ats_curve


def test_ats_with_k_sizes_fits_all_points_and_fetches_each_once():
    sizes = np.array([200.0, 400.0, 800.0, 1600.0, 3200.0])
    rng = np.random.default_rng(0)
    loss = 3.0 * sizes ** -0.2 * np.exp(rng.normal(0, 0.01, sizes.size))
    fetched = []
    p, slope, intercept = ats_curve(sizes, lambda i: fetched.append(i) or loss[i], k=5)
    want_slope, want_icpt = np.polyfit(np.log(sizes), np.log(loss), 1)  # closed form
    assert p == 5 and sorted(fetched) == [0, 1, 2, 3, 4]
    assert np.isclose(slope, want_slope) and np.isclose(intercept, want_icpt)


def test_ats_with_k_plus_one_sizes_tests_but_never_uses_the_smallest():
    sizes = np.array([200.0, 400.0, 800.0, 1600.0, 3200.0])
    loss = np.array([9.0, 2.0, 1.8, 1.6, 1.45])  # the smallest point is far off any line
    p, slope, intercept = ats_curve(sizes, lambda i: loss[i], k=4)
    want_slope, want_icpt = np.polyfit(np.log(sizes[1:]), np.log(loss[1:]), 1)
    assert p == 4 and np.isclose(slope, want_slope) and np.isclose(intercept, want_icpt)
