"""The nlp_metrics selector: weight-spectrum alpha via WeightWatcher."""

from __future__ import annotations

import numpy as np
import pytest

from lensllm.bench.budget import BudgetView
from lensllm.bench.table import load_table
from lensllm.selection import NotApplicable, get_selector


def test_not_applicable_on_a_plain_table():
    table = load_table("flan")
    view = BudgetView(table, table.sizes[3], table.sizes[-1])
    with pytest.raises(NotApplicable, match="weights"):
        get_selector("nlp_metrics").select(view)


@pytest.mark.filterwarnings("ignore")
def test_alpha_of_each_candidate(tiny_select):
    ww = pytest.importorskip("weightwatcher", reason="weightwatcher is not installed")
    import logging

    _, outcome = tiny_select
    sel = get_selector("nlp_metrics", min_evals=4).select(outcome.view)
    assert sel.info["metric"] == "alpha"
    # independently: WeightWatcher on the first candidate's weights
    model = outcome.view.load_weights(0)
    watcher = ww.WeightWatcher(model=model, log_level=logging.ERROR)
    alpha = watcher.get_summary(watcher.analyze(min_evals=4))["alpha"]
    assert sel.score[0] == pytest.approx(alpha)
    assert sel.selected == int(np.argmin(sel.score))
    assert sel.predicted is None and outcome.view.cost() == pytest.approx(
        outcome.view.cost())  # no run paid for by the metric itself
