"""`lensllm select` with `halving` on real runs: the rung structure in the store, the runs
picture and the FLOPs saved, kill -9 mid-rung then resume, and `[selection] max_params`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from lensllm.cli import main

CANDIDATES = ("tiny:gpt2", "tiny:llama", "tiny:opt", "tiny:gpt2-wide", "tiny:llama-deep")
SIZES = (4, 8, 16, 32, 64, 128)
# min_chance 1: only the protected leader (ceil(5 / 10) = 1) goes on from the pruning rung.
SELECTION = "options = { min_chance = 1.0 }\n"


def _config(tmp, **kwargs):
    from select_tiny import write_select_config

    return write_select_config(tmp, candidates=CANDIDATES, method="halving", sizes=SIZES,
                               selection=SELECTION, extra="enabled = false\n", **kwargs)


def _rows(store, sql):
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def halving_select(tmp_path_factory):
    from lensllm.pipeline import load_select_config, run_select

    tmp = tmp_path_factory.mktemp("halving")
    path = _config(tmp)
    return path, run_select(load_select_config(path), threads=1)


def test_rungs_closed_form_and_store(halving_select):
    """Rung 32 (lines through 8-32) for all, rung 64 for all, then the leader alone to 128:
    every candidate pays 8, 16, 32, 64; the leader 128 too (and 4 if AtS tests it). The
    store holds exactly the paid training runs, each once."""
    path, outcome = halving_select
    view, sel, lad = outcome.view, outcome.selection, outcome.ladder
    (lead,) = sel.info["finalists"]
    assert sel.selected == lead and sel.info["leaders"] == 1
    expect = np.zeros((5, 6), bool)
    expect[:, 1:5] = True
    expect[lead, 5] = True
    assert (view.paid[:, 1:] == expect[:, 1:]).all()
    assert not view.paid[np.arange(5) != lead, 0].any()
    assert sel.info["runs_paid"] == view.paid.sum(1).tolist()
    stored = _rows(path.parent / "select.sqlite",
                   "SELECT model, size FROM runs WHERE size > 0 AND status = 'finished'")
    # the back-tests' refits may pay for smaller runs halving never needed (reported apart)
    extra = outcome.trust.extra_paid
    assert len(extra) == outcome.trust.extra_runs and not extra & view.paid_runs
    stored = [r for r in stored if r not in extra]
    assert sorted(stored) == sorted((view.models[m], int(view.sizes[j]))
                                    for m, j in zip(*np.nonzero(view.paid)))
    assert lad.stopped_at.tolist() == [128.0 if m == lead else 64.0 for m in range(5)]
    assert lad.saved.sum() == 4 and lad.saved[:, 5].sum() == 4
    assert lad.paid_flops == pytest.approx(view.cost())
    assert np.isfinite(lad.saved_flops) and lad.saved_flops > 0
    assert lad.saved_fraction == pytest.approx(
        lad.saved_flops / (lad.saved_flops + lad.paid_flops))


def test_report_draws_the_runs_and_states_the_saving(halving_select, tmp_path):
    from lensllm.report.select_report import format_outcome, write_select_report

    _, outcome = halving_select
    page = write_select_report(outcome, tmp_path).read_text()
    assert (tmp_path / "runs.png").stat().st_size > 5000
    assert "Runs paid" in page and "4 of 5 candidates stopped before the budget" in page
    text = format_outcome(outcome)
    assert f"{int(outcome.ladder.paid.sum())} runs paid" in text
    assert f"{100 * outcome.ladder.saved_fraction:.1f}% of paying every candidate" in text


def _env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(sys.path))
    return env


def test_kill_minus_9_mid_rung_then_resume_repeats_nothing(halving_select, tmp_path):
    ref_path, ref = halving_select
    config = _config(tmp_path)
    store = tmp_path / "select.sqlite"
    args = [sys.executable, "-m", "lensllm.cli", "select", "--config", str(config), "--json",
            "--quiet"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # 5 zero-shot runs, then 3 of rung 32's 15 runs
        time.sleep(0.1)
        try:
            if _rows(store, "SELECT COUNT(*) FROM runs WHERE status='finished'")[0][0] >= 8:
                break
        except sqlite3.OperationalError:  # no store or tables yet
            pass
        assert proc.poll() is None, "the selection ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    query = "SELECT id, model, size, finished_at, test_loss FROM runs WHERE status='finished'"
    before = _rows(store, query)
    n_ref = _rows(ref_path.parent / "select.sqlite", "SELECT COUNT(*) FROM runs")[0][0]
    assert 8 <= len(before) < n_ref, "the kill must land in the middle of a rung"
    again = subprocess.run(args[:-1], cwd=tmp_path, env=_env(), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert set(before) <= set(_rows(store, query))  # finished runs untouched
    assert _rows(store, "SELECT COUNT(*), COUNT(DISTINCT model || ':' || size || ':' || seed),"
                        " SUM(status='finished') FROM runs") == [(n_ref, n_ref, n_ref)]
    assert out["runs_executed"] == n_ref - len(before)
    assert [r["model"] for r in out["ranking"]] == [ref.view.models[i]
                                                    for i in ref.selection.ranking()]
    assert out["runs_paid"] == int(ref.ladder.paid.sum())


def test_max_params_skips_larger_candidates_before_any_run(tmp_path, capsys):
    """tiny:gpt2-wide (141,056 parameters) and tiny:llama-deep (65,824) are above 50,000;
    the three others (45,216-46,016) are ranked, and no run of the two is in the store."""
    from select_tiny import write_select_config

    config = write_select_config(tmp_path, candidates=CANDIDATES, method="subtuning",
                                 selection="max_params = 5e4\n", extra="enabled = false\n")
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["model"], s["n_params"]) for s in out["skipped"]] == [
        ("tiny:gpt2-wide", 141056), ("tiny:llama-deep", 65824)]
    assert all("> max_params 5e+04" in s["reason"] for s in out["skipped"])
    assert sorted(r["model"] for r in out["ranking"]) == ["tiny:gpt2", "tiny:llama",
                                                          "tiny:opt"]
    models = {m for (m,) in _rows(tmp_path / "select.sqlite", "SELECT model FROM runs")}
    assert models == {"tiny:gpt2", "tiny:llama", "tiny:opt"}
    assert main(["select", "--config", str(config), "--quiet"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "gpt2-wide" in x]
    assert line.split()[2:] == ["0.14M", "skipped", "141,056", "parameters", ">",
                                "max_params", "5e+04", "-", "0"]  # P(best) "-", 0 runs


def test_max_params_below_every_candidate_is_one_line_exit_2(tmp_path, capsys):
    from select_tiny import write_select_config

    config = write_select_config(tmp_path, selection="max_params = 1000\n")
    assert main(["select", "--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`selection.max_params` = 1000 skips every candidate" in err[0]
    assert not (tmp_path / "select.sqlite").exists()
