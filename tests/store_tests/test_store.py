"""The store: unique runs, atomic claims, leases, idempotent finishes, several processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lensllm.exceptions import StoreError
from lensllm.store import (
    STORE_MODES,
    CostRecord,
    LossPoint,
    NtkFeatures,
    RunKey,
    RunResult,
    SQLiteStore,
    check_store_path,
    open_store,
)


def _result(loss: float = 1.5, points=()) -> RunResult:
    return RunResult(
        test_loss=loss, steps=4, train_tokens=100, eval_tokens=50, flops=6e5, wall_time=0.1,
        learning_rate=1e-3, early_stop_step=4, n_params=1000, n_trainable=1000,
        base_params=1000, family="gpt2", loss_points=tuple(points),
    )


@pytest.fixture(params=STORE_MODES)
def store(request, tmp_path):
    path = ":memory:" if request.param == "memory" else tmp_path / "s.sqlite"
    s = open_store(path)
    yield s
    s.close()


def test_runs_are_unique_per_key(store):
    key = RunKey("m", "d", 8, 0, "h")
    first = store.create_run(key, {"lr": 1})
    assert store.create_run(key) == first
    assert store.create_run(RunKey("m", "d", 8, 1, "h")) != first
    assert len(store.get_runs()) == 2
    assert store.get_run(key).config == {"lr": 1}
    assert store.get_run(key).status == "pending"


def test_claim_is_exclusive_until_the_lease_expires(store):
    run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
    me = "hostA:1:aa"
    claimed = store.claim_run([run_id], me, lease_s=60)
    assert claimed.run_id == run_id and claimed.status == "running" and claimed.attempts == 1
    assert store.claim_run([run_id], "hostB:2:bb", lease_s=60) is None
    retaken = store.claim_run([run_id], "hostB:2:bb", lease_s=0.0)  # expired lease
    assert retaken.owner == "hostB:2:bb" and retaken.attempts == 2


def test_a_run_held_by_a_dead_local_process_is_retaken(store):
    import socket

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
    store.claim_run([run_id], f"{socket.gethostname()}:{proc.pid}:x", lease_s=3600)
    assert store.claim_run([run_id], "other:1:y", lease_s=3600) is None  # other host: lease
    assert store.claim_run([run_id], make_local_owner(), lease_s=3600) is not None


def make_local_owner() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:z"


def test_finish_is_idempotent_and_never_duplicates(store):
    run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
    store.claim_run([run_id], "a:1:a")
    points = [LossPoint(0, "validation", 3.0), LossPoint(4, "validation", 2.0),
              LossPoint(4, "test", 1.5, 100)]
    assert store.finish_run(run_id, "a:1:a", _result(1.5, points)) is True
    assert store.finish_run(run_id, "b:2:b", _result(9.9, points)) is False
    record = store.get_runs(run_ids=[run_id])[0]
    assert record.status == "finished" and record.result.test_loss == 1.5
    assert store.loss_points(run_id) == sorted(points, key=lambda p: (p.split, p.step))
    assert len(store.costs()) == 1 and store.costs()[0].flops == 6e5
    assert store.claim_run([run_id], "c:3:c", lease_s=0) is None  # finished: never again


def test_failed_runs_are_reset_for_a_retry(store):
    run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
    store.claim_run([run_id], "a:1:a")
    store.fail_run(run_id, "a:1:a", "boom")
    assert store.get_runs(run_ids=[run_id])[0].error == "boom"
    assert store.claim_run([run_id], "a:1:a") is None
    assert store.reset_failed([run_id]) == 1
    assert store.claim_run([run_id], "a:1:a") is not None


def test_non_finite_result_is_refused(store):
    run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
    store.claim_run([run_id], "a:1:a")
    with pytest.raises(StoreError, match="not finite"):
        store.finish_run(run_id, "a:1:a", _result(float("nan")))


def test_ntk_features_costs_and_attrs_round_trip(store):
    feats = NtkFeatures("m", "d", 0, 3, 64, "lora", "float32", (3.0, 2.0, 1.0),
                        (0.1, 0.2, 0.3), {"lr": 1e-3})
    first = store.record_ntk(feats)
    again = store.record_ntk(feats)  # same settings: replaced, not duplicated
    got = store.get_ntk(model="m")
    assert len(got) == 1 and got[0].eigenvalues == (3.0, 2.0, 1.0) and got[0].extra == {"lr": 1e-3}
    assert first and again
    with pytest.raises(StoreError, match="3 eigenvalues but 2 projections"):
        store.record_ntk(NtkFeatures("m", "d", 1, 3, 64, "lora", "float32", (1, 2, 3), (1, 2)))
    store.record_cost(CostRecord("ntk", "m", "d", 1e9, 2.0, 10))
    assert [c.kind for c in store.costs()] == ["ntk"]
    run_id = store.create_run(RunKey("m", "d", 8, 0, "h"))
    store.set_system_attr(run_id, "rung_0", 1.25)
    assert store.get_system_attrs(run_id) == {"rung_0": 1.25}


def test_store_file_is_wal_and_survives_reopening(tmp_path):
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        store.create_run(RunKey("m", "d", 8, 0, "h"))
        mode = store._query("PRAGMA journal_mode")[0][0]
    assert mode == "wal"
    with SQLiteStore(path) as store:
        assert len(store.get_runs()) == 1


def test_bad_store_paths(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        check_store_path(tmp_path)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not writable"):
        check_store_path(blocker / "store.sqlite")
    with pytest.raises(StoreError, match="not an SQLite file"):
        check_store_path(blocker)


_WORKER = textwrap.dedent("""
    import sys, time
    from lensllm.store import SQLiteStore, RunKey, RunResult, make_owner
    store = SQLiteStore(sys.argv[1])
    ids = [store.create_run(RunKey("m", "d", s, 0, "h")) for s in range(1, 31)]
    owner = make_owner()
    while True:
        rec = store.claim_run(ids, owner)
        if rec is None:
            break
        time.sleep(0.005)
        store.finish_run(rec.run_id, owner, RunResult(1.0, 1, 1, 1, 1.0, 0.0, 1e-3, 1, 1, 1,
                                                      1, "f"))
        print(rec.run_id, flush=True)
""")


def test_several_processes_claim_every_run_exactly_once(tmp_path):
    path = tmp_path / "shared.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(path)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    claimed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        claimed += [int(x) for x in out.split()]
    assert sorted(claimed) == list(range(1, 31))
    with SQLiteStore(path) as store:
        runs = store.get_runs()
        assert len(runs) == 30 and all(r.status == "finished" and r.attempts == 1 for r in runs)
        assert len(store.costs()) == 30
