"""`lensllm run` and `lensllm export` end to end, in real subprocesses.

- kill -9 in the middle of `lensllm run --config examples/tiny.toml`, run again: finished
  runs are not repeated, nothing is duplicated, and the exported table equals the one of an
  uninterrupted run;
- two `lensllm run` processes on one store finish every run exactly once;
- every bad config is one line, exit status 2, and leaves the store unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lensllm.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny.toml"
N_RUNS = 3 + 3 * 4 * 2  # zero-shot per model + models x sizes x seeds in tiny.toml


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    return env


def _lensllm(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lensllm.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300, **kwargs)


def _rows(store: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _export(store: Path, tmp: Path) -> str:
    out = tmp / f"{store.stem}.csv"
    done = _lensllm("export", "--store", str(store), "--out", str(out), cwd=tmp)
    assert done.returncode == 0, done.stderr
    return out.read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of examples/tiny.toml: (store path, exported table)."""
    tmp = tmp_path_factory.mktemp("reference")
    store = tmp / "ref.sqlite"
    done = _lensllm("run", "--config", str(TINY), "--store", str(store), cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert f"store: {store}" in done.stdout and "lensllm export --store" in done.stdout
    return store, _export(store, tmp)


def test_uninterrupted_run_stores_every_run_once(reference):
    store, table = reference
    assert _rows(store, "SELECT COUNT(*), SUM(status='finished'), MAX(attempts) FROM runs") == [
        (N_RUNS, N_RUNS, 1)]
    assert _rows(store, "SELECT COUNT(*) FROM costs") == [(N_RUNS,)]
    header = table.splitlines()[0]
    assert header == "config name [nats_per_token],0,32,64,128,256,size,family"
    assert len(table.splitlines()) == 4


def test_kill_minus_9_then_resume_repeats_nothing(reference, tmp_path):
    _, ref_table = reference
    store = tmp_path / "killed.sqlite"
    args = [sys.executable, "-m", "lensllm.cli", "run", "--config", str(TINY),
            "--store", str(store)]
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.3)
        if store.exists():
            try:
                if _rows(store, "SELECT COUNT(*) FROM runs WHERE status='finished'")[0][0] >= 8:
                    break
            except sqlite3.OperationalError:  # tables not created yet
                pass
        assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _rows(store, "SELECT id, finished_at, owner, attempts, test_loss FROM runs "
                          "WHERE status='finished' ORDER BY id")
    assert 8 <= len(before) < N_RUNS, "the kill must land in the middle"
    assert _rows(store, "SELECT COUNT(*) FROM runs WHERE status='running'")[0][0] <= 1

    again = _lensllm("run", "--config", str(TINY), "--store", str(store), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{len(before)} already finished" in again.stdout
    # The runs finished before the kill are untouched...
    kept = _rows(store, "SELECT id, finished_at, owner, attempts, test_loss FROM runs "
                        f"WHERE id IN ({','.join(str(r[0]) for r in before)}) ORDER BY id")
    assert kept == before
    # ...the resumed process ran exactly the others, and nothing is duplicated.
    new_owners = _rows(store, "SELECT owner, COUNT(*) FROM runs GROUP BY owner")
    old_owner = before[0][2]
    counts = {owner: n for owner, n in new_owners}
    assert counts.pop(old_owner) == len(before)
    assert list(counts.values()) == [N_RUNS - len(before)]
    assert _rows(store, "SELECT COUNT(*), SUM(status='finished') FROM runs") == [(N_RUNS, N_RUNS)]
    assert _rows(store, "SELECT COUNT(*) FROM costs") == [(N_RUNS,)]
    assert _rows(store, "SELECT COUNT(*) FROM (SELECT run_id FROM loss_points "
                        "WHERE split='test' GROUP BY run_id)") == [(N_RUNS,)]
    assert _rows(store, "SELECT COUNT(*) FROM loss_points WHERE split='test'") == [(N_RUNS,)]
    assert _export(store, tmp_path) == ref_table


def test_two_processes_on_one_store_run_everything_exactly_once(reference, tmp_path):
    # The tiny config cut to two sizes (same settings, so the same runs as the reference).
    _, ref_table = reference
    config = tmp_path / "two.toml"
    config.write_text(_tiny_text().replace("[32, 64, 128, 256]", "[32, 64]"))
    n_runs = 3 + 3 * 2 * 2
    store = tmp_path / "shared.sqlite"
    args = [sys.executable, "-m", "lensllm.cli", "run", "--config", str(config),
            "--store", str(store)]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    assert _rows(store, "SELECT COUNT(*), SUM(status='finished'), MAX(attempts) FROM runs") == [
        (n_runs, n_runs, 1)]
    assert _rows(store, "SELECT COUNT(*) FROM costs") == [(n_runs,)]
    assert _rows(store, "SELECT COUNT(*) FROM loss_points WHERE split='test'") == [(n_runs,)]
    ran = [n for _, n in _rows(store, "SELECT owner, COUNT(*) FROM runs GROUP BY owner")]
    assert sum(ran) == n_runs
    ref_cells = [line.split(",")[:4] + line.split(",")[-2:] for line in ref_table.splitlines()]
    exported = _export(store, tmp_path).splitlines()  # the header (with the unit) and rows
    assert [line.split(",") for line in exported] == ref_cells


# --------------------------------------------------------------------------- bad configs


def _tiny_text() -> str:
    data = ROOT / "examples" / "data" / "tiny_addition.jsonl"
    return TINY.read_text().replace('"data/tiny_addition.jsonl"', json.dumps(str(data)))


def _bad_wrong_fields(tmp: Path) -> str:
    bad = tmp / "bad.jsonl"
    bad.write_text('{"text": "1+1=2"}\n{"prompt": "2+2=4"}\n')
    return _tiny_text().replace(json.dumps(str(ROOT / "examples" / "data" /
                                                "tiny_addition.jsonl")), json.dumps(str(bad)))


BAD_CONFIGS = {
    "unknown key": (lambda tmp: _tiny_text().replace("[finetune]", "[finetune]\npatiense = 4"),
                    "unknown key `finetune.patiense`"),
    "missing data file": (lambda tmp: _tiny_text().replace("tiny_addition.jsonl", "nope.jsonl"),
                          "nope.jsonl' does not exist"),
    "wrong fields": (_bad_wrong_fields, "bad.jsonl, line 2: field 'text'"),
    "unknown model": (lambda tmp: _tiny_text().replace('"tiny:llama"', '"nobody/no-model"'),
                      "model 'nobody/no-model' not found locally and the Hugging Face hub is "
                      "offline"),
    "sizes not increasing": (lambda tmp: _tiny_text().replace("[32, 64, 128, 256]",
                                                              "[32, 128, 64]"),
                             "strictly increasing, got 64 after 128"),
    "sizes too large": (lambda tmp: _tiny_text().replace("[32, 64, 128, 256]", "[32, 5000]"),
                        "asks for 5000 examples"),
}


def _snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def existing_store(tmp_path):
    """A store that already holds a run, in its own directory."""
    from lensllm.store import RunKey, SQLiteStore

    directory = tmp_path / "stores"
    directory.mkdir()
    path = directory / "s.sqlite"
    with SQLiteStore(path) as store:
        store.create_run(RunKey("tiny:gpt2", "x", 8, 0, "h"))
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_exit_2_and_store_unchanged(case, tmp_path, existing_store,
                                                           capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make, message = BAD_CONFIGS[case]
    config = tmp_path / "bad.toml"
    config.write_text(make(tmp_path))
    before = _snapshot(existing_store.parent)
    status = main(["run", "--config", str(config), "--store", str(existing_store)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("lensllm run: error: ")
    assert message in err
    assert _snapshot(existing_store.parent) == before


def test_unwritable_store_path_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    config = tmp_path / "ok.toml"
    config.write_text(_tiny_text())
    before = _snapshot(tmp_path)
    status = main(["run", "--config", str(config), "--store", str(blocker / "s.sqlite")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "is not writable" in err
    assert _snapshot(tmp_path) == before


def test_bad_config_from_the_real_script_exits_2(tmp_path, existing_store):
    config = tmp_path / "bad.toml"
    config.write_text(_tiny_text().replace("[32, 64, 128, 256]", "[64, 32]"))
    before = _snapshot(existing_store.parent)
    done = _lensllm("run", "--config", str(config), "--store", str(existing_store), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "strictly increasing" in done.stderr
    assert _snapshot(existing_store.parent) == before


def test_export_of_a_missing_store_is_one_line_exit_2(tmp_path, capsys):
    status = main(["export", "--store", str(tmp_path / "none.sqlite"), "--out",
                   str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert status == 2 and "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "none.sqlite").exists()
