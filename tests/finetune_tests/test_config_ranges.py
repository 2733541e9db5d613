"""Every config value is range- and type-checked before any work: one table per config
class (every numeric field against values that broke runs: 1e308, inf, NaN, negatives,
booleans, strings), candidate names, and prompt templates (plain ``{column}`` only)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import Candidate, DataConfig, FinetuneConfig
from lensllm.finetune.fields import map_records

#: Values no numeric field takes.
BAD_ANYWHERE = [1e308, math.inf, -math.inf, math.nan, -1, True, "3", None, [1]]
NUMERIC = [f.name for f in dataclasses.fields(FinetuneConfig)
           if isinstance(f.default, (int, float)) and not isinstance(f.default, bool)]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", BAD_ANYWHERE, ids=repr)
def test_every_numeric_finetune_value_is_checked(name, value):
    with pytest.raises(ConfigError, match=f"`finetune.{name}`"):
        FinetuneConfig(**{name: value})


def test_the_defaults_and_the_bounds_themselves_are_accepted():
    FinetuneConfig()
    FinetuneConfig(epochs=1e6, learning_rate=10.0, max_steps=10**9, batch_size=10**7,
                   warmup_ratio=1.0, lora_dropout=0.0)


def test_a_plan_is_finite_at_the_largest_accepted_values():
    config = FinetuneConfig(epochs=1e6, eval_every_epochs=1e6, patience_epochs=1e6,
                            min_train_epochs=1e6, batch_size=1, max_steps=0)
    plan = config.plan(10**6)
    # warmup: 10% (the default warmup_ratio) of the first epoch of 10**6 steps
    assert plan.planned_steps == 10**12 and plan.warmup_steps == 10**5


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"family": 7}, "family"), ({"family": ["a"]}, "family"), ({"model": "a\x00b"}, "NUL"),
    ({"model": "a\nb"}, "control"), ({"family": "g\x1b[31m"}, "control"), ({"model": ""}, "model"),
])
def test_candidate_names_are_plain_text(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        Candidate(**{"model": "tiny:gpt2", **kwargs})


@pytest.mark.parametrize("template", [
    "Q: {question:>2000000000}", "{question!r}", "{question!s:>9}", "{question[0]}",
    "{question.upper}", "{question:{width}}", "{}", "{0}", "no field", "{question",
])
def test_prompt_templates_take_plain_fields_only(template):
    with pytest.raises(ConfigError, match="prompt_template"):
        DataConfig(path="d.jsonl", prompt_template=template, fields={"target": "answer"})


def test_a_plain_template_copies_columns_and_literal_braces():
    kind, examples = map_records([("line 1", {"q": "2+2", "answer": "4"})], "d.jsonl",
                                 fields={"target": "answer"},
                                 prompt_template="{{calc}} {q} = ")
    assert kind == "seq2seq" and examples == [{"source": "{calc} 2+2 = ", "target": "4"}]
