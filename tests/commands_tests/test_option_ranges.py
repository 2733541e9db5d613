"""Every numeric option is range-checked, and every input (a foreign or newer store
included) checked, before any work: one line, exit status 2, nothing written."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.commands_tests.cli_helpers import assert_one_line_error, run_cli


@pytest.fixture
def task(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"{i}+{i}={2 * i}"}) + "\n"
                            for i in range(12)))
    (tmp_path / "c.toml").write_text(
        f'[experiment]\nsizes = [4]\n[data]\npath = "{data}"\nvalidation_size = 2\n'
        'test_size = 2\n[[candidates]]\nmodel = "tiny:gpt2"\n')
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, who TEXT)")
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    return tmp_path


NTK = ["ntk", "--model", "tiny:gpt2", "--data", "{tmp}/d.jsonl", "--n", "2", "--out",
       "{tmp}/o.json", "--no-progress"]
CASES = [
    (["run", "--config", "{tmp}/c.toml", "--lease", "inf"], ["--lease", "inf"]),
    (["run", "--config", "{tmp}/c.toml", "--lease", "nan"], ["--lease"]),
    (["run", "--config", "{tmp}/c.toml", "--lease", "0.001"], ["--lease"]),
    (["run", "--config", "{tmp}/c.toml", "--lease", "1e9"], ["--lease"]),
    (NTK + ["--eta", "inf"], ["--eta"]),
    (NTK + ["--eta", "nan"], ["--eta"]),
    (NTK + ["--params", "lora", "--lora-alpha", "inf"], ["--lora-alpha"]),
    (NTK + ["--dim", "1000000000"], ["--dim"]),
    (NTK + ["--max-length", "100000000"], ["--max-length"]),
    (NTK + ["--chunk-size", "0"], ["--chunk-size"]),
    (NTK + ["--store", "{tmp}/app.db"], ["app.db", "not a lensllm store"]),
    (NTK + ["--store", "{tmp}/newer.sqlite"], ["schema version 99"]),
    (NTK[:4] + ["/dev/zero"] + NTK[5:], ["--data", "special file"]),
    (["fit", "--table", "flan", "--law", "rectified", "--max-data", "inf"], ["--max-data"]),
    (["bench", "--table", "flan", "--ratios", "inf"], ["--ratios"]),
]


@pytest.mark.parametrize(("argv", "words"), CASES, ids=lambda c: " ".join(c)[-40:]
                         if isinstance(c, list) and c and c[0] in ("run", "ntk", "fit",
                                                                   "bench") else None)
def test_out_of_range_options_and_bad_inputs_stop_before_any_work(task, capsys, argv, words):
    before = sorted(p.name for p in task.iterdir())
    status, out, err = run_cli(capsys, [a.format(tmp=task) for a in argv])
    assert_one_line_error(status, out, err, words)
    assert sorted(p.name for p in task.iterdir()) == before  # no store, no output
