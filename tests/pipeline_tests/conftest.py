"""The tiny `lensllm select` experiment fixture (helpers in select_tiny.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from select_tiny import write_select_config


@pytest.fixture(scope="session")
def tiny_select(tmp_path_factory):
    """``(config path, outcome)`` of one tiny selection (runs once per test session)."""
    from lensllm.pipeline import load_select_config, run_select

    tmp = tmp_path_factory.mktemp("select")
    path = write_select_config(tmp)
    outcome = run_select(load_select_config(path), threads=1)
    return path, outcome
