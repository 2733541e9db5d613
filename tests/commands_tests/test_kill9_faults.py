"""Fault injection: kill -9 at random points of `run`, `select` and `export`.

After every kill the store passes SQLite's integrity_check and holds no duplicated run;
resumed to the end, its exported table (and, for select, its finished runs' losses) equal
an uninterrupted run's. The default suite does 21 kills (8 run, 5 select, 8 export) on a
one-model, two-size experiment; ``--slow`` adds a longer variant with 30 more run kills.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from test_run_reliability import _env, lensllm, rows, write_config

pytest.importorskip("torch")


def _kill_at(args, cwd, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lensllm.cli", *args], cwd=cwd,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _check(store) -> None:
    if not store.exists():
        return
    conn = sqlite3.connect(store, timeout=30)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if conn.execute("SELECT name FROM sqlite_master WHERE name='runs'").fetchone():
            dup = conn.execute("SELECT model, size, seed, COUNT(*) FROM runs GROUP BY model, "
                               "dataset, size, seed, config_hash, fingerprint "
                               "HAVING COUNT(*) > 1").fetchall()
            assert dup == []
            costs = conn.execute("SELECT run_id, COUNT(*) FROM costs WHERE kind != 'failed' "
                                 "GROUP BY run_id HAVING COUNT(*) > 1").fetchall()
            assert costs == []  # a finished run's cost is written once
    finally:
        conn.close()


def _kill_and_resume(tmp, argv, store, kills, rng, span):
    for _ in range(kills):
        _kill_at(argv, tmp, rng.uniform(*span))
        _check(store)
    done = lensllm(*argv, cwd=tmp)
    assert done.returncode == 0, done.stderr
    _check(store)


def _table(tmp, store, name):
    out = tmp / f"{name}.csv"
    done = lensllm("export", "--store", str(store), "--out", str(out), cwd=tmp)
    assert done.returncode == 0, done.stderr
    return out.read_text()


def _fault_injection(tmp, run_kills, select_kills, export_kills, seed):
    rng = random.Random(seed)
    config = write_config(tmp, ["tiny:gpt2"], sizes="[16, 32]")
    ref_store = tmp / "ref.sqlite"
    assert lensllm("run", "--config", str(config), "--store", str(ref_store),
                   cwd=tmp).returncode == 0
    reference = _table(tmp, ref_store, "ref")

    store = tmp / "killed.sqlite"
    _kill_and_resume(tmp, ["run", "--config", str(config), "--store", str(store)], store,
                     run_kills, rng, (0.5, 6.0))
    assert _table(tmp, store, "killed") == reference
    assert rows(store, "SELECT COUNT(*), SUM(status='finished') FROM runs") == [(3, 3)]

    before = store.read_bytes()
    for _ in range(export_kills):  # a reader: killing it can change nothing
        _kill_at(["export", "--store", str(store), "--out", str(tmp / "k.csv")], tmp,
                 rng.uniform(0.05, 1.5))
        assert store.read_bytes() == before
        assert not (tmp / "k.csv").exists() or (tmp / "k.csv").read_text() == reference

    if select_kills:
        sel = config.read_text().replace("[16, 32]", "[8, 16, 32]") + ('\n[selection]\nmethod = "rectified_fit"\ntarget = 128\n'
                                    'max_data = 32\n[ntk]\nenabled = false\n')
        (tmp / "sel.toml").write_text(sel)
        argv = ["select", "--config", str(tmp / "sel.toml"), "--quiet"]
        ref_sel = lensllm(*argv, "--store", str(tmp / "sel_ref.sqlite"), cwd=tmp)
        assert ref_sel.returncode == 0, ref_sel.stderr
        sel_store = tmp / "sel_killed.sqlite"
        _kill_and_resume(tmp, argv + ["--store", str(sel_store)], sel_store, select_kills,
                         rng, (0.5, 6.0))
        losses = "SELECT model, size, seed, test_loss FROM runs WHERE status='finished' " \
                 "ORDER BY model, size, seed"
        assert rows(sel_store, losses) == rows(tmp / "sel_ref.sqlite", losses)


def test_kill_minus_9_at_random_points_of_run_select_and_export(tmp_path):
    _fault_injection(tmp_path, run_kills=8, select_kills=5, export_kills=8, seed=0)


@pytest.mark.slow
def test_kill_minus_9_long(tmp_path):
    _fault_injection(tmp_path, run_kills=30, select_kills=10, export_kills=20, seed=1)
