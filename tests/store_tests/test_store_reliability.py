"""The store never damages what it does not own, keeps failed runs with their cost, and
migrates a version-1 store without losing a row."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from lensllm.exceptions import StoreError
from lensllm.store import (
    SCHEMA_VERSION,
    LossPoint,
    RunFailure,
    RunKey,
    RunResult,
    SQLiteStore,
    inspect_store,
)
from lensllm.store.export import export_table


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _result(loss: float) -> RunResult:
    return RunResult(test_loss=loss, steps=3, train_tokens=10, eval_tokens=5, flops=1.0,
                     wall_time=0.1, learning_rate=1e-3, early_stop_step=2, n_params=7,
                     n_trainable=7, base_params=7, family="f",
                     loss_points=(LossPoint(2, "test", loss, 10),))


def _foreign(tmp_path):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, who TEXT)")
    conn.execute("INSERT INTO runs (who) VALUES ('someone else')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("read_only", [False, True])
def test_a_foreign_database_is_refused_untouched(tmp_path, read_only):
    path = _foreign(tmp_path)
    before = _digest(path)
    with pytest.raises(StoreError, match="not a lensllm store"):
        SQLiteStore(path, read_only=read_only)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["runs"]
    conn.close()


def test_a_text_file_and_a_directory_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(StoreError, match="not an SQLite file"):
        SQLiteStore(text, read_only=True)
    assert text.read_text() == "hello\n"
    with pytest.raises(StoreError, match="directory"):
        SQLiteStore(tmp_path, read_only=True)


def test_reading_changes_nothing_and_refuses_writes(tmp_path):
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
        store.claim_run([run_id], "host:1:a")
        store.finish_run(run_id, "host:1:a", _result(1.5))
    before = _digest(path)
    with SQLiteStore(path, read_only=True) as store:
        assert store.get_runs(status="finished")[0].result.test_loss == 1.5
        assert export_table(store).rows[0][1] == "1.5"
        with pytest.raises(StoreError, match="read-only"):
            store.create_run(RunKey("m", "d", 16, 0, "h"))
    assert _digest(path) == before
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_failed_run_keeps_reason_and_cost_and_release_gives_runs_back(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        a = store.create_run(RunKey("m", "d", 8, 0, "h"))
        b = store.create_run(RunKey("m", "d", 16, 0, "h"))
        store.claim_run([a], "host:1:a")
        store.fail_run(a, "host:1:a", RunFailure("training diverged: loss nan\nmore",
                                                 flops=120.0, wall_time=2.5, tokens=30))
        rec = store.get_runs(run_ids=[a])[0]
        assert rec.status == "failed" and rec.error.startswith("training diverged")
        (cost,) = store.costs()
        assert (cost.kind, cost.flops, cost.wall_time, cost.tokens, cost.run_id) == (
            "failed", 120.0, 2.5, 30, a)
        assert store.claim_run([a], "host:1:b") is None  # a failed run is not claimable
        store.claim_run([b], "host:1:a")
        assert store.release_runs([b], "host:1:other") == 0  # only the holder releases
        assert store.release_runs([b], "host:1:a") == 1
        rec = store.get_runs(run_ids=[b])[0]
        assert rec.status == "pending" and rec.owner is None
        assert store.claim_run([b], "host:1:c").owner == "host:1:c"  # at once, no lease wait


_V1_RUNS = """CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL, dataset TEXT NOT NULL, size INTEGER NOT NULL, seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL, config TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT, owner_host TEXT, owner_pid INTEGER, heartbeat REAL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, error TEXT,
    test_loss REAL, steps INTEGER, train_tokens INTEGER, eval_tokens INTEGER, flops REAL,
    wall_time REAL, learning_rate REAL, early_stop_step INTEGER, n_params INTEGER,
    n_trainable INTEGER, base_params INTEGER, family TEXT, device TEXT,
    UNIQUE (model, dataset, size, seed, config_hash))"""


def test_a_version_1_store_is_read_as_is_and_migrated_on_write(tmp_path):
    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute(_V1_RUNS)
    conn.execute("CREATE TABLE loss_points (run_id INTEGER NOT NULL REFERENCES runs(id) ON "
                 "DELETE CASCADE, step INTEGER NOT NULL, split TEXT NOT NULL, loss REAL NOT "
                 "NULL, tokens INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, split, step))")
    conn.execute("INSERT INTO runs (model, dataset, size, seed, config_hash, status, "
                 "created_at, test_loss, steps, train_tokens, eval_tokens, flops, wall_time, "
                 "learning_rate, early_stop_step, n_params, n_trainable, base_params, family) "
                 "VALUES ('m', 'd', 8, 0, 'h', 'finished', 1, 2.5, 1, 1, 1, 1, 1, 1, 1, 7, 7, "
                 "7, 'f')")
    conn.execute("INSERT INTO loss_points VALUES (1, 1, 'test', 2.5, 1)")
    conn.commit()
    conn.close()
    assert inspect_store(path) == 1
    before = _digest(path)
    with SQLiteStore(path, read_only=True) as store:
        assert store.get_run(RunKey("m", "d", 8, 0, "h")).result.test_loss == 2.5
    assert _digest(path) == before
    with SQLiteStore(path) as store:
        rec = store.get_run(RunKey("m", "d", 8, 0, "h"))
        assert rec.run_id == 1 and rec.result.test_loss == 2.5
        assert store.loss_points(1) == [LossPoint(1, "test", 2.5, 1)]  # no cascade on rebuild
        new = store.create_run(RunKey("m", "d", 8, 0, "h", "files:abc"))
        assert new != 1  # another fingerprint is another run
    assert inspect_store(path) == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_export_leaves_out_a_model_with_failed_runs_and_says_why(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        for model, size, loss in [("good", 8, 2.0), ("good", 16, 1.5), ("bad", 8, 3.0),
                                  ("bad", 16, None), ("late", 8, 2.2)]:
            run_id = store.create_run(RunKey(model, "d", size, 0, "h"))
            if model == "late" or loss is not None or model == "bad":
                store.claim_run([run_id], "host:1:a")
            if loss is not None:
                store.finish_run(run_id, "host:1:a", _result(loss))
            elif model == "bad":
                store.fail_run(run_id, "host:1:a", RunFailure("RuntimeError: boom"))
        store.create_run(RunKey("late", "d", 16, 0, "h"))
        store.release_runs(store.get_runs(status="running") and
                           [r.run_id for r in store.get_runs(status="running")], "host:1:a")
        with pytest.raises(StoreError, match=r"late at size 16 \(not run yet\)"):
            export_table(store)
        table = export_table(store, partial=True)
    assert [r[0] for r in table.rows] == ["good", "late"]
    assert table.dropped_models == ("bad",) and table.dropped_sizes == (16,)
    assert ("bad", 16, "failed: RuntimeError: boom") in table.missing
    assert ("late", 16, "not run yet") in table.missing
