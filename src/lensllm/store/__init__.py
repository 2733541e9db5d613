"""The experiment store: runs, loss points, NTK features and costs in one SQLite file.

Pure standard library (sqlite3); importing it never imports torch.

Tables (see :mod:`lensllm.store._sqlite` for the schema):

- ``runs``: one row per :class:`RunKey` (model, dataset, subset size, seed, config hash),
  UNIQUE (the key includes the model's fingerprint); status pending/running/finished/failed,
  the lease owner and heartbeat, the measurements of a finished run (:class:`RunResult`),
  the reason of a failed one.
- ``loss_points``: (run, split, step) -> loss; splits ``train``, ``validation``, ``test``.
- ``ntk_features``: eigenvalues and projections of a model's NTK on a probe set, one row
  per model, dataset, probe settings and ``settings`` key (the learning rate, the runs'
  config, sequence length and adapters the features were computed with).
- ``costs``: FLOPs and wall time of every measurement (fine-tuning, zero-shot, NTK, and
  ``failed``: what a failed run spent before failing).
- ``run_attrs``: per-run bookkeeping under string keys. Keys in use: none yet; strategies
  that add one (for example a pruner's ``rung_{n}``) list it here.

Example:
    >>> from lensllm.store import InMemoryStore, RunKey
    >>> store = InMemoryStore()
    >>> run_id = store.create_run(RunKey("tiny:gpt2", "copy", 64, 0, "abc"))
    >>> store.claim_run([run_id], "host:1:x").status
    'running'
"""

from __future__ import annotations

from pathlib import Path

from lensllm.store._base import BaseStore
from lensllm.store._records import (
    RUN_STATUSES,
    CostRecord,
    LossPoint,
    NtkFeatures,
    RunFailure,
    RunKey,
    RunRecord,
    RunResult,
)
from lensllm.store._sqlite import (
    SCHEMA_VERSION,
    InMemoryStore,
    SQLiteStore,
    check_store,
    check_store_path,
    inspect_store,
    make_owner,
)

__all__ = [
    "BaseStore",
    "SQLiteStore",
    "InMemoryStore",
    "open_store",
    "check_store",
    "check_store_path",
    "inspect_store",
    "make_owner",
    "STORE_MODES",
    "SCHEMA_VERSION",
    "RUN_STATUSES",
    "RunKey",
    "RunResult",
    "RunFailure",
    "RunRecord",
    "LossPoint",
    "NtkFeatures",
    "CostRecord",
]

#: Backends, as tests parametrize over them.
STORE_MODES = ("memory", "sqlite")


def open_store(path: str | Path, *, read_only: bool = False) -> BaseStore:
    """Open (creating if needed) the store at ``path``; ``":memory:"`` for an in-memory one.

    Args:
        path: the store file.
        read_only: open without any change to the file (what reading commands do); the
            store must exist.

    Raises:
        StoreError: the path is not writable (unless read-only), or is not a lensllm store.
    """
    if str(path) == ":memory:":
        return InMemoryStore()
    return SQLiteStore(path, read_only=read_only)
