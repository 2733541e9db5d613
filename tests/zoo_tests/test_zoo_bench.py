"""The zoo benchmark's setup (``benchmarks/zoo_bench.py``).

By default: the configs it writes are accepted by ``lensllm run`` and ``lensllm select``,
every budget leaves enough points for the laws on every task, and its recipe is the default
plateau rule at every size (data-limited curves: no step floor, the same horizon in epochs). Opt-in (``--realmodel``): the real
candidate, fine-tuned with the benchmark's recipe on the benchmark's task, has a per-byte
loss computed from the test targets' bytes, counted here from the task file alone.
"""

from __future__ import annotations

import importlib.util
import json
import math
import tomllib
from pathlib import Path

import pytest

from lensllm.finetune.config import FinetuneConfig, load_config
from lensllm.pipeline import load_select_config

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("zoo_bench_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipes(bench) -> dict[str, FinetuneConfig]:
    return {group: FinetuneConfig(**tomllib.loads(text)["finetune"])
            for group, text in ((g, bench.recipe(g)) for g in bench.GROUP_RECIPE)}


@pytest.mark.parametrize("task", ["docstrings", "comments"])
def test_every_budget_leaves_more_points_than_the_largest_law_has_parameters(bench, task):
    # the LensLLM and rectified laws have 4 free parameters (B, E, beta, t or D_l); the
    # zero-shot point is one more observation, so 4 fine-tuned sizes give 5 points
    sizes, target = bench.TASK_GRID[task]
    for ratio in (8, 16):
        visible = [s for s in sizes if s * ratio <= target]
        assert len(visible) >= 4, (ratio, visible)
    assert sizes[-1] == target  # D* is measured, not extrapolated
    assert target >= (3200 if task == "comments" else 800)


@pytest.mark.parametrize("group", ["gemma3", "smollm2", "zoo"])
def test_recipe_is_the_default_plateau_rule_at_every_size(bench, group):
    recipe = _recipes(bench)[group]
    default = FinetuneConfig()
    # only what a user sets differs from the default recipe
    assert {k for k, v in recipe.as_dict().items() if v != default.as_dict()[k]} <= {
        "learning_rate", "max_length"}
    assert recipe.lr_schedule == "constant" and recipe.min_steps == 1
    for size in bench.SIZES:
        plan = recipe.plan(size)
        per_epoch = math.ceil(size / recipe.batch_size)
        # by hand: the horizon is `epochs` passes, never a step floor
        assert plan.planned_steps == math.ceil(recipe.epochs * per_epoch)
        assert plan.guaranteed_steps * recipe.batch_size >= size  # one full epoch at least


def test_written_configs_are_accepted_one_recipe_per_group_on_one_store(bench, tmp_path):
    tiny_real = [f"tiny:llama-{v}" for v in ("small", "wide", "deep")][: len(bench.REAL)]
    real = dict(zip(bench.REAL, tiny_real))
    configs = bench.write_configs(tmp_path, {"gpt2-a": "tiny:gpt2", **real})
    # one group per real family, slowest first, then the zoo
    assert list(configs) == [bench.REAL_GROUP[n] for n in bench.REAL] + ["zoo"]
    recipes = _recipes(bench)
    # each real family trains gentler than the 0.1M-1.1M zoo models
    assert all(recipes[g].learning_rate < recipes["zoo"].learning_rate
               for g in bench.REAL_GROUP.values())
    groups = [(bench.REAL_GROUP[n], [m]) for n, m in real.items()] + [("zoo", ["tiny:gpt2"])]
    for group, models in groups:
        run_cfg, sel_cfg = configs[group]
        config = load_config(run_cfg)
        assert [c.model for c in config.candidates] == models
        assert config.sizes == tuple(bench.SIZES)
        assert config.finetune == recipes[group]
        assert config.store == tmp_path / "zoo.sqlite"
        select = load_select_config(sel_cfg)
        assert select.selection.target == bench.TARGET
        assert select.selection.max_data == bench.TARGET // 8
        assert select.selection.method == bench.DEFAULT_METHOD
    lines = (tmp_path / f"{bench.TASK}_task.jsonl").read_text().splitlines()
    assert len(lines) == bench.TARGET + bench.N_VAL + bench.N_TEST


@pytest.mark.realmodel
def test_real_candidate_loss_per_byte_on_the_bench_task(bench, tmp_path, capsys):
    from lensllm.cli import main
    from lensllm.finetune.data import split_indices
    from lensllm.finetune.models import load_model
    from lensllm.store import SQLiteStore

    name = "smollm2-135m"
    model_id = bench.REAL[name]
    run_cfg, _ = bench.write_configs(tmp_path, {name: model_id})[bench.REAL_GROUP[name]]
    text = run_cfg.read_text().replace(f"sizes = {list(bench.SIZES)}", "sizes = [16]")
    run_cfg.write_text(text)
    assert main(["run", "--config", str(run_cfg), "--threads", "1"]) == 0, capsys.readouterr()
    records = [json.loads(x) for x in (tmp_path / f"{bench.TASK}_task.jsonl").read_text()
               .splitlines()]
    test = split_indices(len(records), n_validation=bench.N_VAL, n_test=bench.N_TEST).test
    targets = [records[i]["target"] for i in test]
    tokenizer = load_model(model_id)[1]
    n_bytes = sum(len(t.encode("utf-8")) for t in targets)
    n_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1
                   for t in targets)  # + EOS
    store = SQLiteStore(tmp_path / "zoo.sqlite")
    runs = store.get_runs(status="finished")
    store.close()
    assert sorted(r.key.size for r in runs) == [0, 16]
    for run in runs:
        assert run.result.test_bytes == n_bytes
        assert run.result.test_scored_tokens == n_tokens
        assert run.result.test_truncated == 0
        per_byte = run.result.test_loss * n_tokens / n_bytes
        assert math.isfinite(per_byte) and per_byte > 0
    # fine-tuning on 16 examples lowers the loss below the zero-shot loss
    by_size = {r.key.size: r.result.test_loss for r in runs}
    assert by_size[16] < by_size[0]
