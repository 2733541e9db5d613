"""The examples of docs/api.md and of the API's docstrings run, with the outputs they show."""

from __future__ import annotations

import doctest
import warnings
from pathlib import Path

import pytest

import lensllm.api.benching
import lensllm.api.fitting
import lensllm.api.planning
import lensllm.laws.service

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_docs_api_examples_run():
    if not DOCS.is_file():
        pytest.skip("docs/api.md is not in this checkout")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        failed, attempted = doctest.testfile(str(DOCS), module_relative=False)
    assert attempted >= 15 and failed == 0


@pytest.mark.parametrize("module", [lensllm.laws.service, lensllm.api.fitting,
                                    lensllm.api.benching, lensllm.api.planning])
def test_docstring_examples_run(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        failed, attempted = doctest.testmod(module)
    assert attempted >= 1 and failed == 0
