"""An output never replaces an input: one table of (command, output, input) cases, each
refused in one line with exit status 2 before any work, every file unchanged and the
store still passing ``PRAGMA integrity_check``."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3

import pytest

from lensllm.exceptions import OutputError
from lensllm.outputs import check_apart
from lensllm.store import RunKey, RunResult, SQLiteStore

from tests.commands_tests.cli_helpers import assert_one_line_error, run_cli


def _store(path):
    with SQLiteStore(path) as store:
        for model in ("a", "b"):
            for size in (0, 8, 16):
                run = store.create_run(RunKey(model, "task", size, 0, "h"))
                store.claim_run([run], "me:1:x")
                store.finish_run(run, "me:1:x", RunResult(
                    test_loss=2.0 - size / 100, steps=1, train_tokens=1, eval_tokens=1,
                    flops=1.0, wall_time=0.1, learning_rate=1e-3, early_stop_step=1,
                    n_params=10, n_trainable=10, base_params=10, family="f"))
    return path


@pytest.fixture
def files(tmp_path):
    store = _store(tmp_path / "s.sqlite")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"{i}+{i}={2 * i}"}) + "\n"
                            for i in range(12)))
    table = tmp_path / "t.csv"
    table.write_text("config name,0,200,400,size\na,3,2,1.5,100\nb,3,2.2,1.6,200\n")
    (tmp_path / "sub").mkdir()
    os.link(store, tmp_path / "hard.sqlite")
    os.link(data, tmp_path / "hard.jsonl")
    (tmp_path / "via").symlink_to(tmp_path, target_is_directory=True)
    return tmp_path


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}


#: (argv with {tmp} for the folder, words of the error line).
CASES = [
    (["export", "--store", "{tmp}/s.sqlite", "--out", "{tmp}/s.sqlite"], ["--out", "--store"]),
    (["export", "--store", "{tmp}/s.sqlite", "--out", "{tmp}/hard.sqlite"],
     ["--out", "another name"]),
    (["export", "--store", "{tmp}/s.sqlite", "--out", "{tmp}/via/s.sqlite"], ["--store"]),
    (["export", "--store", "{tmp}/s.sqlite", "--out", "{tmp}/s.sqlite-wal"], ["wal file"]),
    (["export", "--store", "{tmp}/s.sqlite", "--out", "{tmp}/s.sqlite-journal"],
     ["journal file"]),
    (["ntk", "--model", "tiny:gpt2", "--data", "{tmp}/d.jsonl", "--n", "2", "--out",
      "{tmp}/d.jsonl"], ["--out", "--data"]),
    (["ntk", "--model", "tiny:gpt2", "--data", "{tmp}/d.jsonl", "--n", "2", "--out",
      "{tmp}/hard.jsonl"], ["--out", "another name"]),
    (["ntk", "--model", "tiny:gpt2", "--data", "{tmp}/d.jsonl", "--n", "2", "--out",
      "{tmp}/s.sqlite", "--store", "{tmp}/s.sqlite"], ["--out", "--store"]),
    (["ntk", "--model", "tiny:gpt2", "--data", "{tmp}/d.jsonl", "--n", "2", "--out",
      "{tmp}/o.json", "--store", "{tmp}/d.jsonl"], ["--store", "--data"]),
    (["ntk", "--model", "tiny:gpt2", "--data", "{tmp}/d.jsonl", "--n", "2", "--out",
      "{tmp}/s.sqlite-shm", "--store", "{tmp}/s.sqlite"], ["shm file"]),
    (["bench", "--table", "{tmp}/t.csv", "--out", "{tmp}/sub", "--ntk", "{tmp}/sub"],
     ["--out", "--ntk"]),
]


@pytest.mark.parametrize(("argv", "words"), CASES, ids=[" ".join(c[0][:1] + c[0][-2:])
                                                         for c in CASES])
def test_an_output_that_is_an_input_is_refused_and_nothing_changes(files, capsys, argv,
                                                                   words):
    before = _digests(files)
    status, out, err = run_cli(capsys, [a.format(tmp=files) for a in argv])
    assert_one_line_error(status, out, err, words)
    assert _digests(files) == before
    with sqlite3.connect(files / "s.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_check_apart_compares_resolved_paths_and_file_identity(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x")
    check_apart({"--out": tmp_path / "b.txt"}, {"--in": a})  # a new file: fine
    check_apart({"--out": "-"}, {"--in": a})  # standard output: nothing to compare
    with pytest.raises(OutputError, match="--out .* is the input --in"):
        check_apart({"--out": tmp_path / "." / "a.txt"}, {"--in": a})
    with pytest.raises(OutputError, match="is the output --store"):  # outputs apart too
        check_apart({"--out": a, "--store": a}, {})
    # the same key in both maps (a store read and written) is not compared with itself
    check_apart({"--store": a}, {"--store": a}, stores=["--store"])
