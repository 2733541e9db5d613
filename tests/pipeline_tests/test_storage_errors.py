"""A storage error (the store or its disk failing) is never a failed candidate: it stops
``select`` with one line; a candidate's own error (its model, its memory) is its failure.
And ``ntk.n`` larger than the training pool is refused before any run."""

from __future__ import annotations

import errno
import sqlite3
from types import SimpleNamespace

import pytest

from lensllm.exceptions import ConfigError, InputError, StoreError
from lensllm.pipeline import stages

STORAGE = [
    StoreError("store 's': database or disk is full"),
    sqlite3.DatabaseError("database disk image is malformed"),
    sqlite3.OperationalError("database or disk is full"),
    sqlite3.OperationalError("disk I/O error"),
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EIO, "Input/output error"),
    OSError(errno.EROFS, "Read-only file system"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
]
CANDIDATE = [
    RuntimeError("CUDA out of memory"),
    InputError("model 'x' does not fit the task"),
    ValueError("bad shape"),
    OSError(errno.ENOENT, "config.json not found"),
    MemoryError(),
]


def _run_stage(monkeypatch, error):
    from lensllm.pipeline import ntk_features

    def spectrum(model, prepared, settings, store, threads=1):
        if model == "bad":
            raise error
        return SimpleNamespace(meta={"flops": 1.0})

    monkeypatch.setattr(ntk_features, "candidate_spectrum", spectrum)
    said: list[str] = []
    failures = stages.Failures(said.append)
    config = SimpleNamespace(ntk=SimpleNamespace(enabled=True, n=4, params="all"))
    cands = [stages.CandidateRecord(stages.Candidate(m, "")) for m in ("good", "bad")]
    return stages.add_spectra(cands, None, config, None, 1, failures), failures


@pytest.mark.parametrize("error", STORAGE, ids=lambda e: f"{type(e).__name__}:{e}"[:40])
def test_a_storage_error_stops_the_selection(monkeypatch, error):
    assert stages.is_storage_error(error)
    with pytest.raises(type(error)):
        _run_stage(monkeypatch, error)


@pytest.mark.parametrize("error", CANDIDATE, ids=lambda e: type(e).__name__)
def test_a_candidates_own_error_fails_only_that_candidate(monkeypatch, error):
    assert not stages.is_storage_error(error)
    (alive, flops), failures = _run_stage(monkeypatch, error)
    assert [c.model for c in alive] == ["good"] and flops == 1.0
    assert [m for m, _ in failures] == ["bad"]


def test_ntk_n_above_the_training_pool_is_refused_before_any_run():
    data = SimpleNamespace(validation_size=10, test_size=10, split_seed=0)
    prepared = SimpleNamespace(config=SimpleNamespace(data=data), task=[None] * 50)
    for n, ok in ((30, True), (31, False)):
        config = SimpleNamespace(ntk=SimpleNamespace(enabled=True, n=n))
        if ok:
            stages.check_ntk_pool(config, prepared)
        else:
            with pytest.raises(ConfigError, match="`ntk.n` = 31 .* holds 30"):
                stages.check_ntk_pool(config, prepared)
