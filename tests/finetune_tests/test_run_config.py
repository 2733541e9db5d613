"""Experiment configs: TOML loading, unknown keys, validation rules, the config hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import FinetuneConfig, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = """
[experiment]
sizes = [8, 16]
seeds = [0, 1]

[data]
path = "data.jsonl"
validation_size = 4
test_size = 4

[[candidates]]
model = "tiny:gpt2"

[finetune]
learning_rate = 1e-3
"""


def _write(tmp_path, text):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_example_config_loads():
    config = load_config(EXAMPLES / "tiny.toml")
    assert config.sizes == (32, 64, 128, 256)
    assert config.data.path == (EXAMPLES / "data" / "tiny_addition.jsonl").resolve()
    assert [c.model for c in config.candidates][0] == "tiny:gpt2"
    assert config.data.name == "tiny_addition"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("learning_rate = 1e-3", "learning_rat = 1e-3"), r"unknown key `finetune.learning_rat`"),
        (("seeds = [0, 1]", "seeds = [0, 1]\nsead = 3"), r"unknown key `experiment.sead`"),
        (("test_size = 4", "test_size = 4\nformat = 'x'"), r"unknown key `data.format`"),
        (('model = "tiny:gpt2"', 'model = "tiny:gpt2"\nlr = 1'),
         r"unknown key `candidates\[0\].lr`"),
        (("sizes = [8, 16]", "sizes = [16, 8]"), r"strictly increasing, got 8 after 16"),
        (("sizes = [8, 16]", "sizes = [0, 8]"), r"integers >= 1, got 0"),
        (("seeds = [0, 1]", "seeds = [1, 1]"), r"seeds` must be distinct"),
        (("learning_rate = 1e-3", "learning_rate = -1.0"),
         r"learning_rate` must be a finite number > 0"),
        (("learning_rate = 1e-3", "learning_rate = inf"),
         r"learning_rate` must be a finite number > 0 and <= 10, got inf"),
        (("learning_rate = 1e-3", "warmup_ratio = 1.5"),
         r"warmup_ratio` must be a finite number >= 0 and <= 1"),
        (("learning_rate = 1e-3", "eval_every_epochs = 0"),
         r"eval_every_epochs` must be a finite number > 0"),
        (("learning_rate = 1e-3", "epochs = 1e308"),
         r"epochs` must be a finite number > 0 and <= 1e\+06, got 1e\+308"),
        (("learning_rate = 1e-3", "patience_epochs = -1"),
         r"patience_epochs` must be a finite number >= 0"),
        (("learning_rate = 1e-3", "min_patience_steps = -1"),
         r"min_patience_steps` must be an integer in \[0, "),
        (("learning_rate = 1e-3", "min_patience_steps = 2.5"),
         r"min_patience_steps` must be an integer in \[0, .*got 2.5"),
        (("learning_rate = 1e-3", "min_improvement = 0.9"),
         r"min_improvement` must be a finite number >= 0 and <= 0.5"),
        (("learning_rate = 1e-3", "validation_share = -0.5"),
         r"validation_share` must be a finite number >= 0"),
        (("learning_rate = 1e-3", "min_validation = 0"),
         r"min_validation` must be an integer in \[1, "),
        (("learning_rate = 1e-3", "precision = 'int8'"),
         r"precision` must be one of auto, fp32, bf16, fp16"),
        (("learning_rate = 1e-3", "max_epochs = 3"),
         r"`finetune.max_epochs` in .* was replaced by `finetune.epochs`"),
        (("learning_rate = 1e-3", "patience = 3"),
         r"`finetune.patience` in .* was replaced by `finetune.patience_epochs`"),
        (("learning_rate = 1e-3", "method = 'qlora'"), r"method` must be one of full, lora"),
        (("learning_rate = 1e-3", "batch_size = 0"), r"batch_size` must be an integer in \[1, "),
        (("test_size = 4", "test_size = 0"), r"data.test_size` must be an integer >= 1"),
        (('path = "data.jsonl"', ""), r"missing key `data.path`"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, edit, match):
    old, new = edit
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, BASE.replace(old, new)))


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[experiment\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_config_hash_covers_results_not_speed(tmp_path):
    base = load_config(_write(tmp_path, BASE))
    same = load_config(_write(tmp_path, BASE.replace("sizes = [8, 16]", "sizes = [8, 16, 32]")
                              .replace("learning_rate = 1e-3",
                                       "learning_rate = 1e-3\neval_batch_size = 7")))
    other_lr = load_config(_write(tmp_path, BASE.replace("1e-3", "2e-3")))
    assert base.config_hash("abc") == same.config_hash("abc")
    assert base.config_hash("abc") != other_lr.config_hash("abc")
    assert base.config_hash("abc") != base.config_hash("abd")  # data content changed


def test_finetune_config_is_frozen_and_validated():
    config = FinetuneConfig(lora_target_modules=["q_proj", "v_proj"])
    assert config.lora_target_modules == ("q_proj", "v_proj")
    with pytest.raises(AttributeError):
        config.learning_rate = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match="lora_dropout"):
        FinetuneConfig(lora_dropout=1.0)


def test_a_config_without_the_trend_check_and_step_floor_keeps_earlier_run_keys(tmp_path):
    # The hash as it was computed before `patience_trend` (and `min_patience_steps`)
    # existed, written out by hand: sha256 of the sorted JSON of the results-changing
    # settings.
    import hashlib
    import json

    old = load_config(_write(tmp_path, BASE.replace(
        "learning_rate = 1e-3",
        "learning_rate = 1e-3\npatience_trend = false\nmin_patience_steps = 0")))
    finetune = old.finetune.as_dict()
    for key in ("eval_batch_size", "device", "micro_batch_size", "gradient_checkpointing",
                "patience_trend", "min_patience_steps"):
        finetune.pop(key)
    payload = {"finetune": finetune, "validation_size": old.data.validation_size,
               "test_size": old.data.test_size, "split_seed": old.data.split_seed,
               "data": "abc"}
    by_hand = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert old.config_hash("abc") == by_hand
    assert load_config(_write(tmp_path, BASE)).config_hash("abc") != by_hand  # the default
    floored = load_config(_write(tmp_path, BASE.replace(
        "learning_rate = 1e-3", "learning_rate = 1e-3\npatience_trend = false")))
    assert floored.config_hash("abc") != by_hand  # the default step floor changes the runs
