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


def test_gpu_zoo_and_configs_are_what_the_script_promises(tmp_path):
    # six candidates of 20M-300M parameters (counted on the meta device from the configs
    # the zoo builds), and configs that `lensllm run` and `lensllm select` accept
    import torch
    import transformers

    from lensllm.finetune.config import load_config
    from lensllm.pipeline import load_select_config
    from lensllm.zoo.build import _model_config

    bench = load_bench("gpu_select")
    specs = bench.zoo_specs(small=False)
    tokenizer = type("Tok", (), {"pad_token_id": 0, "eos_token_id": 1,
                                 "__len__": lambda self: 1024})()
    counts = []
    for spec in specs:
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(_model_config(spec, tokenizer))
        counts.append(sum(p.numel() for p in model.parameters()))
    assert len(specs) >= 6 and len({s.arch for s in specs}) == 3
    assert min(counts) >= 20e6 and max(counts) <= 300e6, counts
    paths = {s.name: tmp_path / s.name for s in specs}
    settings = bench.SETTINGS["gpu"]
    run_cfg, sel_cfg = bench.write_configs(tmp_path, paths, settings, "cuda")
    run = load_config(run_cfg)
    assert list(run.sizes) == [settings["target"]] and run.finetune.device == "cuda"
    select = load_select_config(sel_cfg)
    assert select.selection.target == settings["target"]
    assert select.selection.max_data == settings["target"] // settings["ratio"] == 64
