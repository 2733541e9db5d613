"""Test settings every run needs (see ENVIRONMENT notes in the README).

- one torch thread: two threads on two cores ran ~100x slower in this project's CI;
- an offline Hugging Face hub: tests never download anything;
- opt-in markers: ``--realmodel`` for real pretrained models, ``--slow`` for long tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

try:  # the numeric core is tested without torch too
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - exercised by the no-torch job
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--realmodel", action="store_true", help="run tests on real pretrained LMs")
    parser.addoption("--slow", action="store_true", help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("realmodel", "--realmodel"), ("slow", "--slow")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"opt-in: pass {option} to run")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
