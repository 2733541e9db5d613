"""Task sources and field mapping: instruction, chat and `datasets` data saved locally."""

from __future__ import annotations

import json

import pytest
import transformers

from lensllm.exceptions import ConfigError, InputError
from lensllm.finetune.config import DataConfig
from lensllm.finetune.data import load_data, load_task_data, scored_bytes, tokenize_rows
from lensllm.finetune.models import TINY_CHAT_TEMPLATE


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chat_tokenizer():
    tokenizer = transformers.ByT5Tokenizer()
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def test_instruction_records_use_the_builtin_template(tmp_path):
    path = _jsonl(tmp_path / "alpaca.jsonl", [
        {"instruction": "Add", "input": "2 3", "output": "5"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ])
    task = load_task_data(path)
    assert task.kind == "seq2seq"
    assert task.examples[0] == {
        "source": "### Instruction:\nAdd\n\n### Input:\n2 3\n\n### Response:\n", "target": "5"}
    # An empty input leaves its section out.
    assert task.examples[1]["source"] == "### Instruction:\nSay hi\n\n### Response:\n"


def test_custom_template_and_renamed_columns_from_csv(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("question,answer,topic\nwhy,because,x\nhow,so,y\n", encoding="utf-8")
    task = load_task_data(path, fields={"target": "answer"},
                          prompt_template="[{topic}] Q: {question}\nA: ")
    assert task.examples == ({"source": "[x] Q: why\nA: ", "target": "because"},
                             {"source": "[y] Q: how\nA: ", "target": "so"})
    body = load_task_data(path, fields={"text": "question"})
    assert (body.kind, body.examples) == ("causal", ({"text": "why"}, {"text": "how"}))
    # A mapping is part of the content fingerprint (it changes what is trained on).
    assert body.fingerprint != load_task_data(path, fields={"text": "answer"}).fingerprint


def test_chat_scores_only_assistant_turns(tmp_path, chat_tokenizer):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"}, {"role": "user", "content": "€?"},
                {"role": "assistant", "content": "é!"}, {"role": "user", "content": "bye"}]
    task = load_task_data(_jsonl(tmp_path / "chat.jsonl", [{"messages": messages}]))
    assert task.kind == "chat"
    [(ids, labels)] = tokenize_rows(chat_tokenizer, task.examples, "chat", max_length=512,
                                    is_encoder_decoder=False)

    def ids_of(text):  # ByT5: byte b is id b + 3
        return [b + 3 for b in text.encode("utf-8")]

    context1 = "system: be brief\nuser: hi\nassistant: "
    context2 = "user: €?\nassistant: "
    # The last user turn follows the last assistant turn and is dropped.
    assert ids == ids_of(context1 + "yo\n" + context2 + "é!\n")
    assert labels == ([-100] * len(ids_of(context1)) + ids_of("yo\n")
                      + [-100] * len(ids_of(context2)) + ids_of("é!\n"))
    assert scored_bytes(task.examples, "chat") == [len("yo".encode()) + len("é!".encode())]


def test_chat_needs_a_chat_template(tmp_path):
    task = load_task_data(_jsonl(tmp_path / "c.jsonl", [
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]))
    with pytest.raises(ConfigError, match="chat template"):
        tokenize_rows(transformers.ByT5Tokenizer(), task.examples, "chat", max_length=64,
                      is_encoder_decoder=False)


@pytest.mark.parametrize(
    ("records", "kwargs", "match"),
    [
        ([{"body": "a"}, {"other": "b"}], {"fields": {"text": "body"}},
         r"line 2: field 'body' must be a non-empty string.*got missing"),
        ([{"body": ""}], {"fields": {"text": "body"}}, r"line 1: field 'body'.*got str ''"),
        ([{"q": "a", "a": "b"}], {"fields": {"target": "a"}, "prompt_template": "{x}"},
         r"line 1: field 'x' \(used by `data.prompt_template`\).*missing"),
        ([{"messages": [{"role": "user", "content": "a"}]}], {},
         r"line 1: field 'messages' has no assistant turn"),
        ([{"chat": [{"role": "user"}]}], {"fields": {"messages": "chat"}},
         r"line 1: field 'chat', message 0: 'content' must be a string"),
    ],
)
def test_bad_mapping_names_the_field(tmp_path, records, kwargs, match):
    path = _jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(InputError, match=match):
        load_task_data(path, **kwargs)


def test_invalid_mappings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown role `data.fields.body`"):
        DataConfig(path="x.jsonl", fields={"body": "text"})
    with pytest.raises(ConfigError, match="mixes the roles of causal and seq2seq"):
        DataConfig(path="x.jsonl", fields={"text": "a", "target": "b"})
    with pytest.raises(ConfigError, match="exactly one of `data.path`"):
        DataConfig(path="x.jsonl", dataset="squad")
    with pytest.raises(ConfigError, match="uses no {column} field"):
        DataConfig(path="x.jsonl", prompt_template="constant")


def test_saved_datasets_load_from_disk_with_a_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(12)]
    data = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train": data, "test": data.select(range(4))}).save_to_disk(
        str(tmp_path / "saved"))
    fields = {"source": "question", "target": "answer"}
    test = load_data(DataConfig(path=tmp_path / "saved", split="test", fields=fields))
    assert test.kind == "seq2seq"
    assert test.examples == tuple({"source": r["question"], "target": r["answer"]}
                                  for r in rows[:4])
    # The same directory as a `datasets` source gives the same examples and fingerprint.
    same = load_data(DataConfig(dataset=str(tmp_path / "saved"), split="test", fields=fields))
    assert same.examples == test.examples and same.fingerprint == test.fingerprint
    with pytest.raises(ConfigError, match="has no split 'dev'; its splits are test, train"):
        load_data(DataConfig(path=tmp_path / "saved", split="dev", fields=fields))


def test_parquet_files(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["x", "y€"], "n": [1, 2]}), tmp_path / "t.parquet")
    task = load_task_data(tmp_path / "t.parquet")
    assert (task.kind, task.examples) == ("causal", ({"text": "x"}, {"text": "y€"}))
