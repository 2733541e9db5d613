"""The cost denominator: the recipe's estimate of D* runs against real D* runs."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

TARGET = 2048
EPOCHS = 30  # long enough that runs stop early (with the trend check, 10 epochs carried the
#                256-example runs to their horizon): the estimate has to predict where


def _config(tmp, max_data: int) -> str:
    return f"""[experiment]
sizes = [32, 64, 128, 256, {TARGET}]
store = "cost.sqlite"
threads = 1
[data]
path = "task.jsonl"
validation_size = 64
test_size = 64
[[candidates]]
model = "tiny:gpt2"
[[candidates]]
model = "tiny:llama"
[finetune]
batch_size = 16
epochs = {EPOCHS}
learning_rate = 2e-2
max_length = 32
eval_batch_size = 64
[selection]
method = "rectified_fit"
target = {TARGET}
max_data = {max_data}
[ntk]
enabled = false
"""


def test_estimate_is_within_a_quarter_of_real_runs_at_d_star(tmp_path, capsys):
    """Default recipe (3 planned epochs, early stopping): first every size up to D* is
    paid, so the store holds real D* runs; then a budget of D*/8 on the same store reads
    the measured denominator and the recipe's estimate from the runs up to 256."""
    from lensllm.cli import main
    from lensllm.zoo import write_task

    write_task(tmp_path / "task.jsonl", TARGET + 128, seed=0)
    config = tmp_path / "cost.toml"
    config.write_text(_config(tmp_path, TARGET))
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    capsys.readouterr()
    config.write_text(_config(tmp_path, 256))
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs_executed"] == 0
    assert out["full_cost_source"] == "measured"
    ratio = out["full_cost_estimated_flops"] / out["full_cost_flops"]
    print(f"estimate / measured = {ratio:.3f}")
    assert 0.75 <= ratio <= 1.25
