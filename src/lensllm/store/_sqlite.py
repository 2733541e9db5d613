"""The SQLite store: one file, WAL journal, safe with several writer processes.

A store is opened either for writing (``lensllm run`` and ``select``: the schema is created
or migrated) or read-only (``export`` and other readers: an SQLite ``mode=ro`` connection,
no schema change, no journal switch; on a read-only folder or filesystem, where SQLite
cannot create the WAL index, an ``immutable`` open when no WAL content is pending). Both
refuse, before changing anything, a database that is not a lensllm store (one with tables
but no ``meta.schema_version``).

What is read is checked (:mod:`lensllm.store._rows`: a damaged row is a :class:`StoreError`
naming it), every SQLite error (a malformed page, a full disk, an I/O error) is a
:class:`StoreError` naming the store, and each write transaction first checks that the
file is still the one opened: a store deleted or replaced under a running command stops
it with one line instead of writing every run into a file nobody can see.
"""

from __future__ import annotations

import json
import math
import os
import stat
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lensllm.exceptions import StoreError
from lensllm.store._base import BaseStore
from lensllm.store._rows import (
    check_cost_row,
    check_loss_row,
    check_ntk_row,
    check_run_row,
    parse_json,
)
from lensllm.store._records import (
    CostRecord,
    LossPoint,
    NtkFeatures,
    RunFailure,
    RunKey,
    RunRecord,
    RunResult,
)

__all__ = ["SQLiteStore", "InMemoryStore", "SCHEMA_VERSION", "check_store",
           "check_store_path", "make_owner", "inspect_store"]

#: 2: scored tokens and bytes of the test split (``test_scored_tokens``...);
#: 3: ``runs.fingerprint`` (part of the run's identity);
#: 4: ``ntk_features.settings`` (part of the features' identity: the spectra of two
#: configs no longer replace each other). Older stores are migrated by the first command
#: that opens them for writing, and read as they are by the others.
SCHEMA_VERSION = 4
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL, dataset TEXT NOT NULL, size INTEGER NOT NULL, seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL, fingerprint TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'finished', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT, owner_host TEXT, owner_pid INTEGER, heartbeat REAL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, error TEXT,
    test_loss REAL, steps INTEGER, train_tokens INTEGER, eval_tokens INTEGER, flops REAL,
    wall_time REAL, learning_rate REAL, early_stop_step INTEGER, n_params INTEGER,
    n_trainable INTEGER, base_params INTEGER, family TEXT, device TEXT,
    test_scored_tokens INTEGER, test_bytes INTEGER, test_truncated INTEGER,
    UNIQUE (model, dataset, size, seed, config_hash, fingerprint)
);
CREATE TABLE IF NOT EXISTS loss_points (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL, split TEXT NOT NULL, loss REAL NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, split, step)
);
CREATE TABLE IF NOT EXISTS run_attrs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS ntk_features (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL, dataset TEXT NOT NULL, probe_seed INTEGER NOT NULL,
    n INTEGER NOT NULL, d INTEGER NOT NULL, params_subset TEXT NOT NULL, dtype TEXT NOT NULL,
    eigenvalues TEXT NOT NULL, projections TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, settings TEXT NOT NULL DEFAULT '',
    UNIQUE (model, dataset, probe_seed, n, d, params_subset, dtype, settings)
);
CREATE TABLE IF NOT EXISTS costs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL, model TEXT NOT NULL, dataset TEXT NOT NULL,
    flops REAL NOT NULL, wall_time REAL NOT NULL, tokens INTEGER NOT NULL DEFAULT 0,
    run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL, created_at REAL NOT NULL
);
"""

_RESULT_COLUMNS = (
    "test_loss", "steps", "train_tokens", "eval_tokens", "flops", "wall_time",
    "learning_rate", "early_stop_step", "n_params", "n_trainable", "base_params", "family",
    "device", "test_scored_tokens", "test_bytes", "test_truncated",
)

#: Schema changes, applied in order to a store of an older version when it is opened:
#: version -> statements that bring a store of the version before it up to it. Existing
#: rows keep their values; new columns are NULL for them.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: tuple(f"ALTER TABLE runs ADD COLUMN {column} INTEGER"
             for column in ("test_scored_tokens", "test_bytes", "test_truncated")),
}


def make_owner() -> str:
    """An owner id for this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


_KEY_WHERE = ("model=? AND dataset=? AND size=? AND seed=? AND config_hash=? AND "
              "fingerprint=?")


def _key_params(key: RunKey) -> tuple:
    return (key.model, key.dataset, int(key.size), int(key.seed), key.config_hash,
            key.fingerprint)


def _connect_read_only(path: str | Path, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection to an existing store, which changes no file.

    With no ``-wal`` (nor ``-journal``) file beside the store, no process has it open in
    WAL mode and every committed row is in the file: it is opened ``immutable`` (no locks,
    no ``-shm`` or ``-wal`` created, so reading leaves the folder as it was, and a
    read-only folder or filesystem reads too). Otherwise ``mode=ro``, which reads the WAL through its index;
    when that index cannot be created (a read-only folder) and the WAL holds changes not
    yet in the store, reading without them would silently lose the newest runs: refused.
    """
    uri = Path(path).resolve().as_uri()
    if not any(Path(f"{path}{side}").exists() for side in ("-wal", "-journal")):
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=timeout_s,
                               isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError:  # a writer switching it to WAL right now: go on
            conn.close()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout_s,
                           isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"store '{path}' cannot be opened read-only here: its folder is read-only and its "
            f"WAL file '{wal}' holds changes not yet in the store; copy both files to a "
            "writable folder and read the copy")
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=timeout_s,
                           isolation_level=None, check_same_thread=False)


def _check_regular(path: Path) -> bool:
    """Whether a store file exists (False when missing); a folder or a special file at
    the path is a :class:`StoreError`."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder checks name the cause
        return False
    except OSError as exc:
        raise StoreError(f"store '{path}' cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise StoreError(f"store path '{path}' is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise StoreError(f"store path '{path}' is a special file (FIFO, device or socket), "
                         "not a store file")
    return True


def inspect_store(path: str | Path) -> int | None:
    """The schema version of the lensllm store at ``path``, read without changing it.

    Returns:
        The version, or None for a missing or empty file (a new store).

    Raises:
        StoreError: the path is a folder or a special file, the file is not an SQLite
            database, or is one that is not a lensllm store (tables, but no
            ``meta.schema_version``).
    """
    path = Path(path)
    if not _check_regular(path) or path.stat().st_size == 0:
        return None
    with path.open("rb") as handle:
        if handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise StoreError(f"store '{path}' is not a lensllm store (not an SQLite file)")
    try:
        conn = _connect_read_only(path, 60)
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return None
            row = None
            if {"meta", "runs"} <= tables:
                row = conn.execute(
                    "SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read store '{path}': {exc}") from None
    if row is None or not str(row[0]).isdigit():
        raise StoreError(
            f"'{path}' is an SQLite database but not a lensllm store (tables: "
            f"{', '.join(sorted(tables)[:5])}); refusing to touch it"
        )
    return int(row[0])


def check_store(path: str | Path, *, read_only: bool = False) -> int | None:
    """Everything that opening the store at ``path`` checks, without opening it: a lensllm
    store (or no file yet, unless ``read_only``) of a schema this lensllm reads, at a path
    it may write (unless ``read_only``). Commands call it before any work.

    Returns:
        The store's schema version, None for a new store.

    Raises:
        StoreError: one line naming the store and the rule.
    """
    version = inspect_store(path)
    if read_only and version is None:
        raise StoreError(f"store '{path}' does not exist or is empty")
    if not read_only:
        check_store_path(path)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"store '{path}' has schema version {version}; this lensllm reads versions up to "
            f"{SCHEMA_VERSION}"
        )
    return version


def _file_identity(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of the file at ``path``, None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_store_path(path: str | Path) -> Path:
    """Check that a store can be created or opened at ``path`` without touching it.

    Args:
        path: the store file.

    Returns:
        The path, resolved.

    Raises:
        StoreError: the path is a directory, its parent is missing or not a writable
            directory, the file is not writable, or it exists and is not an SQLite file.
    """
    path = Path(path).expanduser()
    _check_regular(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"store path '{path}' is not writable: '{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"store path '{path}' is not writable: cannot write in '{parent}'")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"store '{path}' is not writable")
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise StoreError(f"store '{path}' exists and is not an SQLite file")
    return path.resolve()


def _when_unlocked(step, timeout_s: float):
    """Run ``step``, retrying while SQLite says the database is locked, up to ``timeout_s``.

    Switching a new file to WAL needs the database to itself, and SQLite answers "database
    is locked" at once, without its busy handler, when another process is reading it at
    that moment (two ``lensllm run`` started together on one new store)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _rebuild(cur: sqlite3.Cursor, table: str) -> None:
    """Recreate ``table`` with its definition in :data:`_SCHEMA` (its new key), keeping
    every row and id; columns it lacks get their defaults (a missing table is left to
    the schema's ``CREATE TABLE IF NOT EXISTS``)."""
    body = _SCHEMA.split(f"CREATE TABLE IF NOT EXISTS {table}", 1)[1].split(";", 1)[0]
    columns = [r[1] for r in cur.execute(f"PRAGMA table_info({table})")]
    if not columns:  # not there yet: created with the schema
        return
    cur.execute(f"CREATE TABLE {table}_new" + body)
    names = ", ".join(columns)
    cur.execute(f"INSERT INTO {table}_new ({names}) SELECT {names} FROM {table}")
    cur.execute(f"DROP TABLE {table}")
    cur.execute(f"ALTER TABLE {table}_new RENAME TO {table}")


class SQLiteStore(BaseStore):
    """A :class:`BaseStore` in one SQLite file.

    WAL journal so readers never block the writer; ``busy_timeout`` so concurrent writers
    wait instead of failing; every multi-row change in one ``BEGIN IMMEDIATE`` transaction.
    The connection is shared by the threads of a process (the heartbeat thread included)
    under a lock.

    Args:
        path: the store file, created if missing (``":memory:"`` for a private in-memory
            store).
        timeout_s: how long a writer waits for the lock of another process.
    """

    def __init__(
        self, path: str | Path, *, timeout_s: float = 60.0, read_only: bool = False
    ) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None
        memory = self.path == ":memory:"
        version = None if memory else check_store(self.path, read_only=read_only)
        self.schema_version = version or SCHEMA_VERSION
        try:
            if read_only:
                self._conn = _connect_read_only(self.path, timeout_s)
                self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
                return
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            if version is not None and version < SCHEMA_VERSION:
                self._migrate_old()
            if not memory:
                _when_unlocked(lambda: self._conn.execute("PRAGMA journal_mode = WAL"),
                               timeout_s)
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self._transaction() as cur:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store '{self.path}': {exc}") from None
        self.schema_version = SCHEMA_VERSION
        if not memory:
            self._identity = _file_identity(self.path)

    def _migrate_old(self) -> None:
        """Bring an older store to :data:`SCHEMA_VERSION` in one transaction: the column
        additions of :data:`_MIGRATIONS` up to version 2, then (version 3) ``runs`` and
        (version 4) ``ntk_features`` rebuilt with ``fingerprint`` and ``settings`` in their
        keys (SQLite cannot change a UNIQUE constraint in place); row ids kept."""
        self._conn.execute("PRAGMA foreign_keys = OFF")  # the drop must not cascade
        with self._transaction() as cur:
            version = int(cur.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
            if version >= SCHEMA_VERSION:  # another process migrated it meanwhile
                return
            for target in range(version + 1, 3):
                for statement in _MIGRATIONS[target]:
                    cur.execute(statement)
            if version < 3:
                _rebuild(cur, "runs")
            _rebuild(cur, "ntk_features")
            cur.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                        (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------------ plumbing

    class _Tx:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an error), under the lock;
        first checks that the store file is the one opened, and turns SQLite errors into
        :class:`StoreError`."""

        def __init__(self, store: SQLiteStore) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Cursor:
            if self.store.read_only:
                raise StoreError(f"store '{self.store.path}' was opened read-only")
            self.store._lock.acquire()
            try:
                self.cur = self.store._conn.cursor()
                self.cur.execute("BEGIN IMMEDIATE")
                self.store.check_intact()
            except BaseException as exc:
                try:
                    if self.store._conn.in_transaction:
                        self.cur.execute("ROLLBACK")
                finally:
                    self.store._lock.release()
                if isinstance(exc, sqlite3.Error):
                    raise self.store._error(exc) from None
                raise
            return self.cur

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.cur.execute("ROLLBACK" if exc_type else "COMMIT")
            except sqlite3.Error as err:
                if exc_type is None:
                    raise self.store._error(err) from None
            finally:
                self.store._lock.release()
            if exc_type is not None and issubclass(exc_type, sqlite3.Error):
                raise self.store._error(exc) from None

    def check_intact(self) -> None:
        """Raise :class:`StoreError` when the store file was deleted or replaced since it
        was opened (the connection would go on writing into a file nobody can see)."""
        if self._identity is None:
            return
        now = _file_identity(self.path)
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise StoreError(f"store '{self.path}' was {what} while this command ran; "
                             "stopping so that no run is written where it would be lost "
                             "(rerun the command: finished runs in the store are kept)")

    def _error(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"store '{self.path}': {exc} (the SQLite file is damaged, its disk "
                          "is full or failing; `sqlite3 FILE 'PRAGMA integrity_check'` tells "
                          "which)")

    def _transaction(self) -> SQLiteStore._Tx:
        return SQLiteStore._Tx(self)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._conn.cursor()
            cur.row_factory = sqlite3.Row
            try:
                return cur.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ runs

    def create_run(self, key: RunKey, config: dict[str, Any] | None = None) -> int:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO runs (model, dataset, size, seed, config_hash, "
                "fingerprint, config, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*_key_params(key), json.dumps(config or {}, sort_keys=True), time.time()),
            )
            row = cur.execute(f"SELECT id FROM runs WHERE {_KEY_WHERE}",
                              _key_params(key)).fetchone()
        return int(row[0])

    def claim_run(
        self, run_ids: Iterable[int], owner: str, *, lease_s: float = 60.0
    ) -> RunRecord | None:
        ids = [int(i) for i in run_ids]
        if not ids:
            return None
        host, pid = _owner_host_pid(owner)
        now = time.time()
        marks = ",".join("?" * len(ids))
        with self._transaction() as cur:
            rows = cur.execute(
                f"SELECT id, status, owner_host, owner_pid, heartbeat FROM runs "
                f"WHERE id IN ({marks}) AND status IN ('pending', 'running') ORDER BY id",
                ids,
            ).fetchall()
            chosen = None
            for run_id, status, o_host, o_pid, beat in rows:
                if status == "pending":
                    chosen = run_id
                    break
                stale = beat is None or now - beat > lease_s
                dead = o_host == host and o_pid is not None and not _pid_alive(int(o_pid))
                if stale or dead:
                    chosen = run_id
                    break
            if chosen is None:
                return None
            cur.execute(
                "UPDATE runs SET status='running', owner=?, owner_host=?, owner_pid=?, "
                "heartbeat=?, started_at=?, attempts=attempts+1, error=NULL WHERE id=?",
                (owner, host, pid, now, now, chosen),
            )
        return self.get_runs(run_ids=[chosen])[0]

    def heartbeat(self, run_ids: Iterable[int], owner: str) -> None:
        ids = [int(i) for i in run_ids]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE runs SET heartbeat=? WHERE owner=? AND status='running' "
                f"AND id IN ({marks})",
                [time.time(), owner, *ids],
            )

    def finish_run(self, run_id: int, owner: str, result: RunResult) -> bool:
        if not math.isfinite(result.test_loss):
            raise StoreError(f"run {run_id}: test loss {result.test_loss} is not finite")
        now = time.time()
        values = [getattr(result, c) for c in _RESULT_COLUMNS]
        sets = ", ".join(f"{c}=?" for c in _RESULT_COLUMNS)
        with self._transaction() as cur:
            cur.execute(
                f"UPDATE runs SET status='finished', finished_at=?, owner=?, {sets} "
                f"WHERE id=? AND status != 'finished'",
                [now, owner, *values, run_id],
            )
            if cur.rowcount != 1:
                return False
            cur.execute("DELETE FROM loss_points WHERE run_id=?", (run_id,))
            cur.executemany(
                "INSERT OR REPLACE INTO loss_points (run_id, step, split, loss, tokens) "
                "VALUES (?, ?, ?, ?, ?)",
                [(run_id, p.step, p.split, float(p.loss), int(p.tokens))
                 for p in result.loss_points],
            )
            model, dataset, size = cur.execute(
                "SELECT model, dataset, size FROM runs WHERE id=?", (run_id,)
            ).fetchone()
            cur.execute(
                "INSERT INTO costs (kind, model, dataset, flops, wall_time, tokens, run_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("finetune" if size > 0 else "zero_shot", model, dataset, float(result.flops),
                 float(result.wall_time), int(result.train_tokens + result.eval_tokens),
                 run_id, now),
            )
        return True

    def fail_run(self, run_id: int, owner: str, failure: RunFailure | str) -> None:
        if isinstance(failure, str):
            failure = RunFailure(failure)
        now = time.time()
        with self._transaction() as cur:
            cur.execute(
                "UPDATE runs SET status='failed', error=?, finished_at=?, flops=?, wall_time=? "
                "WHERE id=? AND owner=? AND status='running'",
                (failure.message, now, float(failure.flops), float(failure.wall_time), run_id,
                 owner),
            )
            if cur.rowcount != 1:
                return
            model, dataset = cur.execute(
                "SELECT model, dataset FROM runs WHERE id=?", (run_id,)).fetchone()
            cur.execute(
                "INSERT INTO costs (kind, model, dataset, flops, wall_time, tokens, run_id, "
                "created_at) VALUES ('failed', ?, ?, ?, ?, ?, ?, ?)",
                (model, dataset, float(failure.flops), float(failure.wall_time),
                 int(failure.tokens), run_id, now),
            )

    def release_runs(self, run_ids: Iterable[int], owner: str) -> int:
        return self._update_runs(
            "status='pending', owner=NULL, owner_host=NULL, owner_pid=NULL, heartbeat=NULL",
            "owner=? AND status='running'", [owner], run_ids)

    def reset_failed(self, run_ids: Iterable[int]) -> int:
        return self._update_runs("status='pending'", "status='failed'", [], run_ids)

    def _update_runs(self, assignments: str, condition: str, params: list,
                     run_ids: Iterable[int]) -> int:
        """``UPDATE runs SET assignments WHERE condition AND id IN run_ids``; rows changed."""
        ids = [int(i) for i in run_ids]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._transaction() as cur:
            cur.execute(f"UPDATE runs SET {assignments} WHERE {condition} AND id IN ({marks})",
                        [*params, *ids])
            return cur.rowcount

    def get_run(self, key: RunKey) -> RunRecord | None:
        where = _KEY_WHERE if self.schema_version >= 3 else _KEY_WHERE.rsplit(" AND ", 1)[0]
        params = _key_params(key) if self.schema_version >= 3 else _key_params(key)[:-1]
        rows = self._query(f"SELECT * FROM runs WHERE {where}", params)
        return _run_record(rows[0], self.path) if rows else None

    def get_runs(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        config_hash: str | None = None,
        run_ids: Sequence[int] | None = None,
    ) -> list[RunRecord]:
        where, params = [], []
        for column, value in (("status", status), ("dataset", dataset),
                              ("config_hash", config_hash)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if run_ids is not None:
            if not run_ids:
                return []
            where.append(f"id IN ({','.join('?' * len(run_ids))})")
            params.extend(int(i) for i in run_ids)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        return [_run_record(r, self.path) for r in self._query(sql + " ORDER BY id", params)]

    # ------------------------------------------------------------------ loss points, attrs

    def record_loss(self, run_id: int, point: LossPoint) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO loss_points (run_id, step, split, loss, tokens) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, point.step, point.split, float(point.loss), int(point.tokens)),
            )

    def loss_points(self, run_id: int) -> list[LossPoint]:
        rows = self._query(
            "SELECT step, split, loss, tokens FROM loss_points WHERE run_id=? "
            "ORDER BY split, step",
            (run_id,),
        )
        for r in rows:
            check_loss_row(r, self.path, run_id)
        return [LossPoint(r["step"], r["split"], r["loss"], r["tokens"]) for r in rows]

    def set_system_attr(self, run_id: int, key: str, value: Any) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO run_attrs (run_id, key, value) VALUES (?, ?, ?)",
                (run_id, key, json.dumps(value)),
            )

    def get_system_attrs(self, run_id: int) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM run_attrs WHERE run_id=?", (run_id,))
        return {r["key"]: parse_json(r["value"], self.path, f"run_attrs of run {run_id}",
                                     r["key"], object) for r in rows}

    # ------------------------------------------------------------------ NTK, costs

    def record_ntk(self, features: NtkFeatures) -> int:
        if len(features.eigenvalues) != len(features.projections):
            raise StoreError(
                f"NTK features of '{features.model}': {len(features.eigenvalues)} eigenvalues "
                f"but {len(features.projections)} projections"
            )
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO ntk_features (model, dataset, probe_seed, n, d, "
                "params_subset, dtype, eigenvalues, projections, extra, created_at, settings) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (features.model, features.dataset, int(features.probe_seed), int(features.n),
                 int(features.d), features.params_subset, features.dtype,
                 json.dumps([float(x) for x in features.eigenvalues]),
                 json.dumps([float(x) for x in features.projections]),
                 json.dumps(features.extra, sort_keys=True), time.time(), features.settings),
            )
            return int(cur.lastrowid)

    def get_ntk(
        self, *, model: str | None = None, dataset: str | None = None
    ) -> list[NtkFeatures]:
        where, params = [], []
        for column, value in (("model", model), ("dataset", dataset)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM ntk_features" + (" WHERE " + " AND ".join(where) if where else "")
        out = []
        for r in self._query(sql + " ORDER BY id", params):
            lam, proj, extra = check_ntk_row(r, self.path)
            out.append(NtkFeatures(
                model=r["model"], dataset=r["dataset"], probe_seed=r["probe_seed"], n=r["n"],
                d=r["d"], params_subset=r["params_subset"], dtype=r["dtype"],
                eigenvalues=tuple(lam), projections=tuple(proj), extra=extra,
                ntk_id=r["id"], settings=r["settings"] if "settings" in r.keys() else ""))
        return out

    def record_cost(self, cost: CostRecord) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO costs (kind, model, dataset, flops, wall_time, tokens, run_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cost.kind, cost.model, cost.dataset, float(cost.flops), float(cost.wall_time),
                 int(cost.tokens), cost.run_id, cost.created_at or time.time()),
            )

    def costs(self) -> list[CostRecord]:
        rows = self._query("SELECT * FROM costs ORDER BY id")
        for r in rows:
            check_cost_row(r, self.path)
        return [
            CostRecord(r["kind"], r["model"], r["dataset"], r["flops"], r["wall_time"],
                       r["tokens"], r["run_id"], r["created_at"])
            for r in rows
        ]


class InMemoryStore(SQLiteStore):
    """A private, in-memory :class:`SQLiteStore` for tests and one-off experiments."""

    def __init__(self) -> None:
        super().__init__(":memory:")


def _owner_host_pid(owner: str) -> tuple[str, int | None]:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return host, int(pid_text) if pid_text.isdigit() else None


def _run_record(row: sqlite3.Row, path: str) -> RunRecord:
    what = check_run_row(row, path)
    fingerprint = row["fingerprint"] if "fingerprint" in row.keys() else ""
    key = RunKey(row["model"], row["dataset"], row["size"], row["seed"], row["config_hash"],
                 fingerprint)
    result = None
    if row["status"] == "finished":
        keys = row.keys()  # an older store read as it is lacks the newer columns
        result = RunResult(**{c: row[c] for c in _RESULT_COLUMNS if c in keys})
    return RunRecord(
        run_id=row["id"], key=key, status=row["status"], attempts=row["attempts"],
        owner=row["owner"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"],
        config=parse_json(row["config"], path, f"runs row {what}", "config", dict),
        result=result,
        error=row["error"],
    )
