"""The sentence saying why no calibration was possible names the minimum."""

from __future__ import annotations

import numpy as np

from lensllm.laws import RectifiedLaw
from lensllm.laws.calibration import MIN_BACKTESTS, measure_calibration, shortfall_words


def test_six_candidates_of_six_points_fall_short_and_the_sentence_says_so():
    # 5 sizes plus zero-shot: one back-test per candidate (refits keep 5 points), 6 in all.
    d = np.array([0, 50, 100, 200, 400, 800], float)
    curves = np.array([2.0 / (5.0 + d ** 0.5) * 10 + e for e in np.linspace(0.5, 1, 6)])
    batch = RectifiedLaw().fit_many(d, curves)
    assert measure_calibration(batch) is None
    words = shortfall_words([6] * 6, 4, "rectified")
    assert "at least 6 points per candidate" in words
    assert f"{MIN_BACKTESTS} back-tests in all" in words and "give 6;" in words
