"""User text in the select report is escaped exactly once: a model named ``a&b<c>`` reads
``a&amp;b&lt;c&gt;`` in the HTML, never ``a&amp;amp;b`` (the laws table's header was
escaped twice)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def test_the_laws_table_header_is_escaped_once():
    from lensllm.pipeline import LAW_LABELS
    from lensllm.report.select_report import _laws_section

    name = next(iter(LAW_LABELS))
    models = ["org/a&b<c>", "org/plain"]
    outcome = SimpleNamespace(view=SimpleNamespace(models=models),
                              laws={name: SimpleNamespace(predicted=np.array([1.5, 2.0]))})
    table, _ = _laws_section(outcome)
    assert "<th>a&amp;b&lt;c&gt;</th>" in table
    assert "&amp;amp;" not in table and "&amp;lt;" not in table
