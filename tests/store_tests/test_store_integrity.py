"""A broken store is never read as data: rows checked on read (one table of damaged
values), SQLite errors and a store deleted or replaced under a running command are one
:class:`StoreError`, read-only WAL stores still export, and NTK features of two settings
are kept side by side."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from lensllm.exceptions import StoreError
from lensllm.store import LossPoint, NtkFeatures, RunKey, RunResult, SQLiteStore
from lensllm.store.export import export_table

OWNER = "me:1:x"


def _result(loss: float = 2.0) -> RunResult:
    return RunResult(test_loss=loss, steps=3, train_tokens=10, eval_tokens=5, flops=1.0,
                     wall_time=0.1, learning_rate=1e-3, early_stop_step=2, n_params=7,
                     n_trainable=7, base_params=7, family="f",
                     loss_points=(LossPoint(2, "test", loss, 10),))


def _features(settings: str = "", eigen=(2.0, 1.0)) -> NtkFeatures:
    return NtkFeatures(model="m", dataset="task", probe_seed=0, n=2, d=0,
                       params_subset="all", dtype="float32", eigenvalues=eigen,
                       projections=(1.0, 1.0), extra={"eta": 1e-3}, settings=settings)


def _filled(path):
    with SQLiteStore(path) as store:
        for size in (8, 16):
            run = store.create_run(RunKey("m", "task", size, 0, "h"))
            store.claim_run([run], OWNER)
            store.finish_run(run, OWNER, _result(2.0 - size / 100))
        store.record_ntk(_features())
        store.set_system_attr(1, "rung_0", 1.5)
    return path


#: (SQL that damages one value, words of the error) - each read names the row.
DAMAGE = [
    ("UPDATE runs SET test_loss = -1.5 WHERE id = 1", ["runs row 1", "test_loss", "-1.5"]),
    ("UPDATE runs SET test_loss = 0 WHERE id = 1", ["runs row 1", "test_loss"]),
    ("UPDATE runs SET test_loss = 'abc' WHERE id = 2", ["runs row 2", "'abc'"]),
    ("UPDATE runs SET test_loss = NULL WHERE id = 2", ["runs row 2", "None"]),
    ("UPDATE runs SET test_loss = 9e999 WHERE id = 2", ["runs row 2", "inf"]),
    ("UPDATE runs SET flops = -3 WHERE id = 1", ["runs row 1", "flops"]),
    ("UPDATE runs SET steps = 2.5 WHERE id = 1", ["runs row 1", "steps"]),
    ("UPDATE runs SET size = 'x' WHERE id = 1", ["runs row 1", "size"]),
    ("UPDATE runs SET config = '{bad' WHERE id = 1", ["runs row 1", "config", "JSON"]),
    ("UPDATE runs SET config = '[1]' WHERE id = 1", ["runs row 1", "config", "object"]),
    ("UPDATE runs SET model = x'41' WHERE id = 1", ["runs row 1", "model"]),
]


@pytest.mark.parametrize(("sql", "words"), DAMAGE, ids=[d[0][15:45] for d in DAMAGE])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_damaged_run_row_is_a_store_error_naming_it(tmp_path, sql, words, read_only):
    path = _filled(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute(sql)
    with SQLiteStore(path, read_only=read_only) as store:
        with pytest.raises(StoreError) as info:
            export_table(store)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(("sql", "read", "words"), [
    ("UPDATE loss_points SET loss = 'x'", lambda s: s.loss_points(1), ["loss_points", "loss"]),
    ("UPDATE ntk_features SET eigenvalues = '[1e999, 1]'", lambda s: s.get_ntk(),
     ["ntk_features row 1", "overflows"]),
    ("UPDATE ntk_features SET eigenvalues = '[1, 2, 3]'", lambda s: s.get_ntk(),
     ["3 eigenvalues but 2 projections"]),
    ("UPDATE ntk_features SET projections = '[-1, 2]'", lambda s: s.get_ntk(),
     ["projections", ">= 0"]),
    ("UPDATE ntk_features SET extra = 'nope'", lambda s: s.get_ntk(), ["extra", "JSON"]),
    ("UPDATE run_attrs SET value = '{'", lambda s: s.get_system_attrs(1), ["rung_0"]),
    ("UPDATE costs SET flops = -1", lambda s: s.costs(), ["costs row", "flops"]),
])
def test_damaged_rows_of_the_other_tables_are_store_errors(tmp_path, sql, read, words):
    path = _filled(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute(sql)
    with SQLiteStore(path) as store, pytest.raises(StoreError) as info:
        read(store)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_store_deleted_or_replaced_under_an_open_store_stops_the_next_write(tmp_path,
                                                                              how):
    path = _filled(tmp_path / "s.sqlite")
    store = SQLiteStore(path)
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.unlink(f"{path}{suffix}")
        if how == "replaced":
            _filled(path)
        assert [r.key.size for r in store.get_runs()] == [8, 16]  # reads go on
        with pytest.raises(StoreError, match=f"was {how}"):
            store.check_intact()  # what a command asks before it reports
        with pytest.raises(StoreError, match=f"was {how}"):
            store.create_run(RunKey("m", "task", 32, 0, "h"))
    finally:
        store.close()
    if how == "replaced":  # the new file did not get the write
        with SQLiteStore(path) as fresh:
            assert [r.key.size for r in fresh.get_runs()] == [8, 16]


def test_a_malformed_page_is_a_store_error(tmp_path):
    path = _filled(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master "
                            "WHERE name = 'ntk_features'").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * page)
    with SQLiteStore(path, read_only=True) as store, pytest.raises(StoreError, match="malformed"):
        store.get_ntk()


def test_ntk_features_of_two_settings_are_kept_side_by_side(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.record_ntk(_features("config-a", (2.0, 1.0)))
        store.record_ntk(_features("config-b", (3.0, 1.0)))
        store.record_ntk(_features("config-a", (4.0, 1.0)))  # the same settings: replaced
        got = {f.settings: f.eigenvalues for f in store.get_ntk(model="m")}
    assert got == {"config-a": (4.0, 1.0), "config-b": (3.0, 1.0)}


def test_the_settings_key_follows_the_settings_that_change_the_features():
    from lensllm.ntk.stored import settings_key

    base = {"eta": 1e-3, "config_hash": "abc", "max_length": 64, "wall_time_s": 1.0}
    assert settings_key(base) == settings_key({**base, "wall_time_s": 9.0})
    for key, value in (("eta", 2e-3), ("config_hash", "abd"), ("max_length", 32),
                       ("lora", {"r": 8}), ("data", "other.jsonl")):
        assert settings_key(base) != settings_key({**base, key: value}), key


def _can_mount_read_only() -> bool:
    return (sys.platform == "linux" and shutil.which("unshare") is not None
            and os.geteuid() == 0 and subprocess.run(
                ["unshare", "-m", "true"], capture_output=True).returncode == 0)


@pytest.mark.skipif(not _can_mount_read_only(), reason="needs root and mount namespaces")
@pytest.mark.parametrize("pending_wal", [False, True])
def test_a_wal_store_on_a_read_only_filesystem_exports(tmp_path, pending_wal):
    """The folder is bind-mounted read-only in a private mount namespace: SQLite cannot
    create the WAL index, so ``mode=ro`` fails; the store is read ``immutable`` unless a
    WAL file holds changes not in the store (then one line says so)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = _filled(folder / "s.sqlite")
    keep = None
    if pending_wal:  # a writer that never checkpoints: its WAL stays beside the store
        keep = sqlite3.connect(path)
        keep.execute("PRAGMA wal_autocheckpoint = 0")
        keep.execute("UPDATE runs SET seed = 0")
        keep.commit()
        shutil.copy(f"{path}-wal", tmp_path / "w")
        keep.close()  # checkpoints and removes the WAL: put it back
        shutil.copy(tmp_path / "w", f"{path}-wal")
    for suffix in ("-shm",):
        if os.path.exists(f"{path}{suffix}"):
            os.unlink(f"{path}{suffix}")
    script = ("import sys; from lensllm.cli import main; "
              f"sys.exit(main(['export', '--store', {str(path)!r}, '--out', '-']))")
    cmd = (f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
           f"{sys.executable} -c \"{script}\"")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True,
                          text=True, env=env, timeout=120)
    if pending_wal:
        assert done.returncode == 2 and "holds changes not yet in the store" in done.stderr
        assert done.stderr.count("\n") == 1
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0].startswith("config name")  # the header, unit in it
        assert len(done.stdout.splitlines()) == 2  # the header (unit in its first cell), model m
