"""Task data: file formats, errors naming the culprit, nested subsets, splits, encoding."""

from __future__ import annotations

import json

import pytest
import transformers

from lensllm.exceptions import ConfigError, InputError
from lensllm.finetune.data import (
    encode_examples,
    load_task_data,
    nested_subset_indices,
    split_indices,
)


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_load_jsonl_causal_and_csv_seq2seq(tmp_path):
    causal = load_task_data(_jsonl(tmp_path / "a.jsonl", [{"text": "ab", "x": 1}, {"text": "c"}]))
    assert causal.kind == "causal"
    assert causal.examples == ({"text": "ab"}, {"text": "c"})
    csv_path = tmp_path / "b.csv"
    csv_path.write_text('source,target\n"1+1",2\n"2,3",5\n', encoding="utf-8")
    seq = load_task_data(csv_path)
    assert seq.kind == "seq2seq"
    assert seq.examples[1] == {"source": "2,3", "target": "5"}


def test_prompt_completion_records_are_a_seq2seq_task_scored_on_the_completion(tmp_path):
    # TRL's and OpenAI's prompt-completion files: no mapping needed; the completion is kept
    # as written (its leading space is part of what the model must produce)
    path = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "two ->", "completion": " even"},
                                          {"prompt": "one ->", "completion": " odd", "id": 3}])
    seq = load_task_data(path)
    assert seq.kind == "seq2seq"
    assert seq.examples == ({"source": "two ->", "target": " even"},
                            {"source": "one ->", "target": " odd"})
    with pytest.raises(InputError, match=r"line 2: field 'completion' must be a non-empty"):
        load_task_data(_jsonl(tmp_path / "bad.jsonl", [{"prompt": "a", "completion": "b"},
                                                       {"prompt": "c"}]))


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([{"text": "a"}, {"txt": "b"}], r"line 2: field 'text'.*missing"),
        ([{"text": "a"}, {"text": 3}], r"line 2: field 'text'.*int 3"),
        ([{"source": "a"}], r"line 1: .*'text' field .*found fields 'source'"),
        ([{"source": "a", "target": ""}], r"line 1: field 'target' must be a non-empty"),
        ([], r"holds no examples"),
    ],
)
def test_wrong_fields_name_file_line_and_field(tmp_path, records, match):
    path = _jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(InputError, match=match) as info:
        load_task_data(path)
    if records:
        assert "bad.jsonl" in str(info.value)


def test_invalid_json_and_missing_file_and_extension(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(InputError, match=r"line 2: not valid JSON"):
        load_task_data(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_task_data(tmp_path / "missing.jsonl")
    other = tmp_path / "data.xlsx"
    other.write_text("x")
    with pytest.raises(ConfigError, match=r"extension '.xlsx'"):
        load_task_data(other)


def test_nested_subsets_contain_smaller_ones_for_every_seed():
    for seed in range(5):
        subsets = nested_subset_indices(1000, [10, 20, 40, 80, 640], seed)
        sizes = sorted(subsets)
        for small, big in zip(sizes, sizes[1:]):
            assert set(subsets[small]) <= set(subsets[big])
        for size, idx in subsets.items():
            assert len(set(idx)) == size and all(0 <= i < 1000 for i in idx)
    # The subset of a size does not depend on which other sizes were asked for.
    assert nested_subset_indices(1000, [40], 3)[40] == nested_subset_indices(1000, [10, 40], 3)[40]
    assert nested_subset_indices(1000, [40], 3)[40] != nested_subset_indices(1000, [40], 4)[40]
    with pytest.raises(ConfigError, match="between 1 and the training pool size 10"):
        nested_subset_indices(10, [11], 0)


def test_split_is_disjoint_complete_and_deterministic():
    split = split_indices(100, n_validation=10, n_test=20, seed=7)
    train, val, test = map(set, (split.train, split.validation, split.test))
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert train | val | test == set(range(100))
    assert not (train & val or train & test or val & test)
    assert split == split_indices(100, n_validation=10, n_test=20, seed=7)
    with pytest.raises(ConfigError, match="leaves no training examples"):
        split_indices(30, n_validation=10, n_test=20)


@pytest.fixture(scope="module")
def byte_tokenizer():
    return transformers.ByT5Tokenizer()


def test_encode_causal_text_scores_every_token_and_pads_right(byte_tokenizer):
    batch = encode_examples(
        byte_tokenizer, [{"text": "abc"}, {"text": "a"}], "causal", max_length=16,
        is_encoder_decoder=False,
    )
    # ByT5: byte b is id b + 3, EOS is 1 and there is no BOS, so EOS is the start token.
    ids = [1] + [ord(c) + 3 for c in "abc"] + [1]
    assert batch["input_ids"][0].tolist() == ids
    # The model shifts the labels: every text byte and the final EOS are targets.
    assert batch["labels"][0].tolist() == [-100] + ids[1:]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert batch["labels"][1].tolist() == [-100, ord("a") + 3, 1, -100, -100]


def test_encode_causal_source_target_scores_only_the_target(byte_tokenizer):
    batch = encode_examples(
        byte_tokenizer, [{"source": "12+3=", "target": "15"}], "seq2seq", max_length=32,
        is_encoder_decoder=False,
    )
    labels = batch["labels"][0].tolist()
    src = byte_tokenizer("12+3=", add_special_tokens=False)["input_ids"]
    eos = byte_tokenizer.eos_token_id
    tgt = byte_tokenizer("15", add_special_tokens=False)["input_ids"] + [eos]
    assert batch["input_ids"][0].tolist() == src + tgt
    assert labels == [-100] * len(src) + tgt


def test_encode_seq2seq_labels_are_target_ids(byte_tokenizer):
    batch = encode_examples(
        byte_tokenizer, [{"source": "abc", "target": "x"}, {"source": "a", "target": "xyz"}],
        "seq2seq", max_length=16, is_encoder_decoder=True,
    )
    assert batch["input_ids"].shape == (2, 4)
    assert batch["labels"][0].tolist() == [ord("x") + 3, 1, -100, -100]
    with pytest.raises(ConfigError, match="encoder-decoder model needs 'source'/'target'"):
        encode_examples(byte_tokenizer, [{"text": "a"}], "causal", max_length=8,
                        is_encoder_decoder=True)
