"""`lensllm run` on mapped data: chat data trains; a bad mapping is one line, exit 2, no store."""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_one_line_error, run_cli

from lensllm.store import SQLiteStore


def _config(root, data_lines, data_keys):
    (root / "task.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data_lines),
                                     encoding="utf-8")
    (root / "exp.toml").write_text(f"""
[experiment]
sizes = [8]
store = "runs.sqlite"
[data]
path = "task.jsonl"
validation_size = 4
test_size = 4
{data_keys}
[[candidates]]
model = "tiny:gpt2"
[finetune]
batch_size = 4
epochs = 1
max_length = 128
""", encoding="utf-8")
    return root / "exp.toml"


def _chat(i, reply="fine"):
    return {"conv": [{"role": "user", "content": f"how are you {i}?"},
                     {"role": "assistant", "content": f"{reply} {i}"}]}


def test_chat_data_with_renamed_field_runs_and_counts_assistant_bytes(tmp_path, capsys):
    config = _config(tmp_path, [_chat(i) for i in range(20)], 'fields = {messages = "conv"}')
    status, _, err = run_cli(capsys, ["run", "--config", str(config)])
    assert status == 0, err
    store = SQLiteStore(tmp_path / "runs.sqlite")
    runs = store.get_runs(status="finished")
    store.close()
    assert {r.key.size for r in runs} == {0, 8}
    # Test examples are four "fine <i>" replies, i < 20: 6 or 7 bytes each.
    for run in runs:
        assert 4 * 6 <= run.result.test_bytes <= 4 * 7
        # Scored: each reply's bytes plus the template's newline; nothing of the user turn.
        assert run.result.test_scored_tokens == run.result.test_bytes + 4


BAD_DATA = {
    "missing column": ([{"body": "a"}] * 5 + [{"other": "b"}] * 15, 'fields = {text = "body"}',
                       ["task.jsonl, line 6", "field 'body'", "missing"]),
    "empty text": ([{"text": "a"}] * 10 + [{"text": ""}] * 10, "",
                   ["task.jsonl, line 11", "field 'text'", "non-empty"]),
    "no assistant turn": ([_chat(i) for i in range(19)]
                          + [{"conv": [{"role": "user", "content": "x"}]}],
                          'fields = {messages = "conv"}',
                          ["task.jsonl, line 20", "field 'conv'", "no assistant turn"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_mapping_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    lines, keys, words = BAD_DATA[case]
    config = _config(tmp_path, lines, keys)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out, err = run_cli(capsys, ["run", "--config", str(config)])
    assert_one_line_error(status, out, err, words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no store, no table
