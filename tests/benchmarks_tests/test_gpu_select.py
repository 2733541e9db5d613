"""``benchmarks/gpu_select.py --small``: the GPU script's every step on the CPU (zoo,
brute force at D*, ``lensllm select``), its figures checked against the store it wrote.

Slow (about 100 s on 2 cores): six models are pretrained and fine-tuned.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bench_loader import load_bench


@pytest.mark.slow
def test_small_run_reports_what_the_store_holds(tmp_path, capsys):
    from lensllm.store import open_store

    bench = load_bench("gpu_select")
    out = bench.main(["--small", "--work", str(tmp_path)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"select_wall_s=[\d.]+ brute_force_wall_s=[\d.]+ "
                        r"cost_fraction=[\d.]+ relacc=[\d.]+", last), last
    record = out["record"]
    target = bench.SETTINGS["small"]["target"]
    with open_store(tmp_path / "select.sqlite") as store:
        runs = [r for r in store.get_runs(status="finished", dataset="docstrings")]
    at_target = {r.key.model: r.result for r in runs if r.key.size == target}
    assert len(at_target) == 6  # brute force: every candidate at D*
    # the denominator is the counted FLOPs of the D* runs (as lensllm select measures it)
    full = sum(r.flops for r in at_target.values())
    assert record["full_cost_source"] == "measured"
    assert record["full_cost_flops"] == pytest.approx(full, rel=1e-9)
    assert out["cost_fraction"] == pytest.approx(record["cost_flops"] / full, rel=1e-9)
    # RelAcc of the selected model from the true losses at D* (one tokenizer: nats/token)
    assert record["loss_unit"] == "nats_per_token"
    models = sorted(at_target)
    truth = np.array([at_target[m].test_loss for m in models])
    chosen = truth[models.index(record["selected"])]
    expected = (truth.max() - chosen) / (truth.max() - truth.min())
    assert out["relacc"] == pytest.approx(expected, abs=1e-9)
    # the selection paid for nothing at D*: its runs stop at the budget
    paid = {r.key.size for r in runs if r.key.size != target}
    assert paid and max(paid) <= target // bench.SETTINGS["small"]["ratio"]
