"""Every stop signal is handled like SIGTERM (the runs held are given back, one line, exit
128 + signal), and a signal that arrives once the work is done changes nothing: the
command's own status, no message."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "tiny_addition.jsonl"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT / "src")}


def _rows(store: Path, sql: str) -> list:
    with sqlite3.connect(store) as conn:
        return conn.execute(sql).fetchall()


def _config(tmp: Path) -> Path:
    path = tmp / "exp.toml"
    path.write_text(f"""[experiment]
sizes = [32, 64]
seeds = [0]
[data]
path = "{DATA}"
validation_size = 64
test_size = 128
[[candidates]]
model = "tiny:gpt2"
[[candidates]]
model = "tiny:llama"
[finetune]
learning_rate = 3e-3
batch_size = 16
epochs = 4
max_length = 32
""")
    return path


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2],
                         ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_gives_the_current_run_back_with_one_line(tmp_path, signum):
    pytest.importorskip("torch")
    store = tmp_path / "t.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "lensllm.cli", "run", "--config",
                             str(_config(tmp_path)), "--store", str(store)], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a training run in progress
        time.sleep(0.2)
        try:
            if _rows(store, "SELECT COUNT(*) FROM runs WHERE status='running' AND size > 0"
                     )[0][0]:
                break
        except sqlite3.OperationalError:  # no store, or no schema yet
            continue
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    ours = [line for line in err.splitlines() if line.startswith("lensllm")]
    assert ours == [f"lensllm run: stopped by {name}; finished runs are kept, rerun to go on"]
    assert "Traceback" not in err
    assert _rows(store, "SELECT COUNT(*) FROM runs WHERE status='running' OR owner IS NOT "
                        "NULL AND status='pending'") == [(0,)]
    assert _rows(store, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
def test_a_signal_after_the_work_keeps_the_commands_status(tmp_path, signum):
    """The program (``sys.argv[0]`` is ``lensllm``) finishes a command, then gets a signal
    while it shuts down (with torch loaded that takes a while): exit 0, no message."""
    out = tmp_path / "t.csv"
    script = (
        "import os, signal, sys, time\n"
        "sys.argv[0] = 'lensllm'\n"
        "from lensllm.cli import main\n"
        f"status = main(['bench', '--table', 'flan', '--methods', 'zero_shot', '--json'])\n"
        f"os.kill(os.getpid(), {int(signum)})\n"
        "time.sleep(30)\n"
        "sys.exit(99)\n")
    done = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.lstrip().startswith("[")
    assert not out.exists()


def test_a_stop_signal_swallowed_by_a_callback_is_delivered_again(capsys):
    # A signal that lands while the import system runs a weakref callback (seen at start-up
    # under load): the handler's Interrupted cannot propagate from there, so Python would
    # print it as "Exception ignored" with a traceback and the command would go on. The
    # hook delivers the signal again; it must then surface in the main flow, quietly.
    import weakref

    from lensllm import cli

    previous = cli._install(cli._interrupt)
    hook = sys.unraisablehook
    sys.unraisablehook = cli._redeliver_stop
    try:
        class Thing:
            pass

        thing = Thing()
        ref = weakref.ref(thing, lambda r: cli._interrupt(signal.SIGTERM, None))
        with pytest.raises(cli.Interrupted) as caught:
            del thing  # the callback runs here and its exception is unraisable
            deadline = time.time() + 10
            while time.time() < deadline:
                time.sleep(0.01)
        assert caught.value.signum == signal.SIGTERM
        assert ref() is None
    finally:
        sys.unraisablehook = hook
        cli._install(previous)
    assert "Traceback" not in capsys.readouterr().err


def test_a_stop_signal_landing_inside_the_hook_is_delivered_once_more():
    # The race CI met under load: the signal the hook delivers again arrives before the
    # hook has returned (starting its helper thread waits on a lock, where the handler
    # runs). Raised there it would escape the hook and be lost; it must come back later.
    from lensllm import cli

    previous = cli._install(cli._interrupt)
    try:
        cli._IN_HOOK[0] = True
        try:
            cli._interrupt(signal.SIGTERM, None)  # inside the hook: no raise
        finally:
            cli._IN_HOOK[0] = False
        with pytest.raises(cli.Interrupted) as caught:
            deadline = time.time() + 10
            while time.time() < deadline:
                time.sleep(0.01)
        assert caught.value.signum == signal.SIGTERM
    finally:
        cli._install(previous)
