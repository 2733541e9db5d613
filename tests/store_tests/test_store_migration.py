"""Stores written before byte counts (schema version 1) open, migrate and stay readable."""

from __future__ import annotations

import sqlite3

import pytest

from lensllm.exceptions import StoreError
from lensllm.store import SCHEMA_VERSION, RunKey, RunResult, SQLiteStore
from lensllm.store.export import export_table

# The runs table as schema version 1 created it (no byte counts).
_V1_RUNS = """
CREATE TABLE runs (
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
    UNIQUE (model, dataset, size, seed, config_hash)
)
"""


def _v1_store(path, version: int = 1):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    conn.execute(_V1_RUNS)
    for model, loss in (("a", 2.5), ("b", 3.0)):
        conn.execute(
            "INSERT INTO runs (model, dataset, size, seed, config_hash, status, created_at, "
            "test_loss, steps, train_tokens, eval_tokens, flops, wall_time, learning_rate, "
            "early_stop_step, n_params, n_trainable, base_params, family, device) VALUES "
            "(?, 'task', 8, 0, 'h', 'finished', 0, ?, 3, 10, 5, 1e3, 0.1, 1e-3, 2, 7, 7, 7, "
            "'gpt2', 'cpu')", (model, loss))
    conn.commit()
    conn.close()


def test_version_1_store_migrates_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.sqlite"
    _v1_store(path)
    store = SQLiteStore(path)
    runs = store.get_runs(status="finished")
    assert [(r.key.model, r.result.test_loss) for r in runs] == [("a", 2.5), ("b", 3.0)]
    assert all(r.result.test_bytes is None and r.result.test_loss_per_byte is None
               for r in runs)
    assert export_table(store).rows[0][1] == repr(2.5)  # per token: as before
    with pytest.raises(StoreError, match="run of 'a' at size 8 .*has no byte count"):
        export_table(store, unit="byte")
    # New runs in the migrated store keep their byte counts.
    run_id = store.create_run(RunKey("c", "task", 8, 0, "h2"))
    store.claim_run([run_id], "host:1:x")
    store.finish_run(run_id, "host:1:x", RunResult(
        test_loss=2.0, steps=1, train_tokens=1, eval_tokens=1, flops=1.0, wall_time=0.1,
        learning_rate=1e-3, early_stop_step=1, n_params=1, n_trainable=1, base_params=1,
        family="gpt2", test_scored_tokens=30, test_bytes=60, test_truncated=0))
    [new] = store.get_runs(run_ids=[run_id])
    assert new.result.test_loss_per_byte == pytest.approx(2.0 * 30 / 60)
    store.close()
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    conn.close()
    assert int(version) == SCHEMA_VERSION == 4  # 3: fingerprints (issue 11); 4: NTK settings
    SQLiteStore(path).close()  # opening a migrated store again changes nothing


def test_a_store_from_a_newer_lensllm_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    _v1_store(path, version=SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        SQLiteStore(path)
