"""Ray: one task per run on a local 2-CPU Ray gives the same stored results as in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lensllm.finetune.config import load_config
from lensllm.finetune.experiment import (
    LocalExecutor,
    RayExecutor,
    prepare_experiment,
    run_experiment,
)
from lensllm.store import InMemoryStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_config(tmp_path):
    """examples/tiny.toml cut to 2 models, 2 sizes, 1 seed: 2 zero-shot + 4 runs."""
    data = ROOT / "examples" / "data" / "tiny_addition.jsonl"
    text = (ROOT / "examples" / "tiny.toml").read_text()
    text = text.replace('"data/tiny_addition.jsonl"', json.dumps(str(data)))
    text = text.replace("[32, 64, 128, 256]", "[32, 64]").replace("seeds = [0, 1]", "seeds = [0]")
    text = text.replace('[[candidates]]\nmodel = "tiny:gpt2-wide"\nfamily = "gpt2"\n', "")
    path = tmp_path / "small.toml"
    path.write_text(text)
    return load_config(path)


def _results(store):
    return {
        (r.key.model, r.key.size, r.key.seed): (r.result.test_loss, r.result.steps,
                                                 r.result.train_tokens, r.result.flops)
        for r in store.get_runs(status="finished")
    }


def test_ray_tasks_store_the_same_results_as_the_local_executor(small_config, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lensllm[ray]')")
    prepared = prepare_experiment(small_config, store_path=tmp_path / "unused.sqlite")
    assert len(prepared.runs) == 6

    local = InMemoryStore()
    run_experiment(prepared, local, executor=LocalExecutor(prepared, threads=1))

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = InMemoryStore()
        executor = RayExecutor(prepared, threads=1)
        assert executor.capacity == 2
        summary = run_experiment(prepared, remote, executor=executor)
    finally:
        ray.shutdown()
    assert summary.ran == 6 and not summary.failed
    assert _results(remote) == _results(local)
    assert len(remote.costs()) == 6
