"""Helpers for a tiny `lensllm select` experiment (pipeline and select-CLI tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

CANDIDATES = ("tiny:gpt2", "tiny:llama")
SIZES = (8, 16, 32)
TARGET = 512


def write_select_config(tmp: Path, *, candidates=CANDIDATES, method: str = "rectified_fit",
                        extra: str = "", store: str = "select.sqlite",
                        sizes=SIZES, selection: str = "") -> Path:
    """Write a tiny word-list task and a select config under ``tmp``; return the config."""
    from lensllm.zoo import write_task

    data = tmp / "task.jsonl"
    if not data.is_file():
        write_task(data, max(sizes[-1], SIZES[-1]) + 16 + 16, seed=0)
    cands = "\n".join(f'[[candidates]]\nmodel = "{c}"\n' for c in candidates)
    text = f"""[experiment]
sizes = {list(sizes)}
seeds = [0]
store = "{store}"
threads = 1

[data]
path = "task.jsonl"
validation_size = 16
test_size = 16

{cands}
[finetune]
learning_rate = 3e-3
batch_size = 8
epochs = 2
min_steps = 4
eval_every_epochs = 0.25
min_eval_interval = 2
patience_epochs = 0.5
max_length = 40

[selection]
method = "{method}"
target = {TARGET}
max_data = {sizes[-1]}
{selection}
[ntk]
n = 4
dim = 0
{extra}"""
    path = tmp / "select.toml"
    path.write_text(text)
    return path
