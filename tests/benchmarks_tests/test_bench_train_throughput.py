"""``benchmarks/bench_train_throughput.py`` trains through the run's own code and the Trainer
on the same batches: the two mean training losses agree (the Trainer's from full logits,
lensllm's from the output layer at the scored positions only)."""

from __future__ import annotations

import pytest

from bench_loader import load_bench


@pytest.mark.parametrize("task", ["seq2seq", "causal"])
def test_lensllm_and_trainer_train_to_the_same_loss(task, capsys):
    bench = load_bench("bench_train_throughput")
    out = bench.main(["--task", task, "--vocab", "2048", "--batch", "4", "--seq", "48",
                      "--steps", "3", "--warmup", "1", "--repeats", "1"])
    assert out["loss_rel_diff"] < 1e-3
    assert out["lensllm"]["tokens"] == out["trainer"]["tokens"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("train_tok_per_s_ratio=") and "loss_rel_diff=" in last
