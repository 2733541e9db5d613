"""The cost denominator: the recipe's estimate of D* runs against real D* runs."""

from __future__ import annotations

import json
import sqlite3

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
    """The default recipe with a 30-epoch horizon. First a budget of D*/8 with no D* run in
    the store: the denominator is estimated, and the floor of the cost fraction assumes
    every D* run trains to the horizon (checked against the closed form from the store's
    rows). Then every size up to D* is paid, so the store holds real D* runs; a budget of
    D*/8 on the same store reads the measured denominator and the recipe's estimate."""
    from lensllm.cli import main
    from lensllm.finetune.config import FinetuneConfig
    from lensllm.finetune.recipe import examples_processed
    from lensllm.zoo import write_task

    write_task(tmp_path / "task.jsonl", TARGET + 128, seed=0)
    config = tmp_path / "cost.toml"
    config.write_text(_config(tmp_path, 256))
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["full_cost_source"] == "estimated"
    recipe = FinetuneConfig(batch_size=16, epochs=EPOCHS, learning_rate=2e-2, max_length=32,
                            eval_batch_size=64)
    at_256, at_target = recipe.plan(256), recipe.plan(TARGET)
    with sqlite3.connect(tmp_path / "cost.sqlite") as db:
        rows = db.execute("SELECT n_params, train_tokens, steps FROM runs WHERE size = 256 "
                          "AND status = 'finished'").fetchall()
    horizon = sum(6.0 * n * tokens / examples_processed(at_256, steps)
                  * examples_processed(at_target, at_target.planned_steps)
                  for n, tokens, steps in rows)
    assert len(rows) == 2
    assert before["full_cost_horizon_flops"] == pytest.approx(horizon, rel=1e-9)
    assert before["cost_fraction_at_least"] == pytest.approx(
        before["total_cost_flops"] / horizon, rel=1e-9)
    assert before["cost_fraction_at_least"] < before["cost_fraction"]

    config.write_text(_config(tmp_path, TARGET))
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    capsys.readouterr()
    config.write_text(_config(tmp_path, 256))
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs_executed"] == 0
    assert out["full_cost_source"] == "measured"
    # the horizon caps every run's steps: the real D* runs cost no more than the floor's
    # denominator (up to the tokens per example of a 2048 subset against a 256 one)
    assert out["full_cost_flops"] <= 1.1 * horizon
    ratio = out["full_cost_estimated_flops"] / out["full_cost_flops"]
    print(f"estimate / measured = {ratio:.3f}")
    assert 0.75 <= ratio <= 1.25
