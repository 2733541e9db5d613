"""Issue 11, runs: a failed run never stops an experiment; changed weights are new runs;
signals give the current run back; no traceback at any moment of start-up."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "tiny_addition.jsonl"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT / "src"))
    return env


def lensllm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lensllm.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600)


def write_config(tmp: Path, candidates, *, name="exp", lr="3e-3", sizes="[16, 32]",
                 extra="") -> Path:
    cands = "".join(f'[[candidates]]\nmodel = "{c}"\n' for c in candidates)
    path = tmp / f"{name}.toml"
    path.write_text(f"""[experiment]
sizes = {sizes}
seeds = [0]
threads = 1
[data]
path = "{DATA}"
validation_size = 32
test_size = 32
{cands}[finetune]
method = "full"
learning_rate = {lr}
batch_size = 16
epochs = 2
min_steps = 2
max_length = 16
{extra}""")
    return path


def save_gpt2(folder: Path, *, n_embd=32, n_positions=64, poison=False, seed=0) -> Path:
    """A real GPT-2 checkpoint on disk (config, safetensors, byte tokenizer); ``poison``
    puts a NaN in its weights, a short ``n_positions`` makes its forward pass raise."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    config = tf.GPT2Config(n_embd=n_embd, n_layer=1, n_head=2, n_positions=n_positions,
                           vocab_size=384, pad_token_id=0, eos_token_id=1, bos_token_id=1)
    model = tf.GPT2LMHeadModel(config)
    if poison:
        with torch.no_grad():
            model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    model.save_pretrained(folder)
    tf.ByT5Tokenizer().save_pretrained(folder)
    return folder


def rows(store: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_diverging_and_crashing_candidates_are_recorded_and_the_rest_finishes(tmp_path):
    nan_model = str(save_gpt2(tmp_path / "nan-model", poison=True))
    short = str(save_gpt2(tmp_path / "short-model", n_positions=4))
    bad = write_config(tmp_path, ["tiny:gpt2", nan_model, short], name="bad")
    store = tmp_path / "bad.sqlite"
    done = lensllm("run", "--config", str(bad), "--store", str(store), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "3 run now, 6 failed now" in done.stdout
    assert "diverged" in done.stdout and "IndexError" in done.stdout
    assert "--retry-failed" in done.stdout
    failed = rows(store, "SELECT model, error, flops, wall_time FROM runs WHERE "
                         "status='failed'")
    assert len(failed) == 6 and all(w > 0 for *_, w in failed)
    # The NaN model failed after paying evaluation passes: their FLOPs are its cost.
    assert all(f > 0 for m, _, f, _ in failed if m == nan_model)
    assert rows(store, "SELECT COUNT(*), SUM(wall_time > 0) FROM costs WHERE kind='failed'"
                ) == [(6, 6)]
    assert rows(store, "SELECT COUNT(*) FROM runs WHERE status='running'") == [(0,)]

    # A rerun does not retry them (and says so); --retry-failed does.
    again = lensllm("run", "--config", str(bad), "--store", str(store), cwd=tmp_path)
    assert again.returncode == 1 and "0 run now, 0 failed now, 6 failed before" in again.stdout
    assert rows(store, "SELECT MAX(attempts) FROM runs") == [(1,)]
    retry = lensllm("run", "--config", str(bad), "--store", str(store), "--retry-failed",
                    cwd=tmp_path)
    assert retry.returncode == 1 and "0 run now, 6 failed now" in retry.stdout
    assert rows(store, "SELECT MAX(attempts) FROM runs WHERE status='failed'") == [(2,)]

    # Export says which cells are missing and why; the healthy rows equal those of the
    # config without the bad candidates.
    out = tmp_path / "bad.csv"
    exp = lensllm("export", "--store", str(store), "--out", str(out), cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    assert exp.stderr.count("missing: ") == 6 and "failed: training diverged" in exp.stderr
    good = write_config(tmp_path, ["tiny:gpt2"], name="good")
    ref = lensllm("run", "--config", str(good), "--store", str(tmp_path / "good.sqlite"),
                  cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    lensllm("export", "--store", str(tmp_path / "good.sqlite"), "--out",
            str(tmp_path / "good.csv"), cwd=tmp_path)
    assert out.read_text() == (tmp_path / "good.csv").read_text()


def test_learning_rate_1e30_is_refused_before_the_store_is_created(tmp_path):
    """It used to be paid for (zero-shot, then a diverged run); the range check refuses it
    first. Divergence itself is recorded as a failed run (the NaN model above)."""
    config = write_config(tmp_path, ["tiny:gpt2"], lr="1e30", sizes="[16]",
                          extra="max_grad_norm = 0\n")
    store = tmp_path / "lr.sqlite"
    done = lensllm("run", "--config", str(config), "--store", str(store), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "`finetune.learning_rate` must be a finite number > 0 and <= 10" in done.stderr
    assert not store.exists()


def test_lora_alpha_inf_is_rejected_before_the_store_is_created(tmp_path):
    config = write_config(tmp_path, ["tiny:gpt2"], extra="lora_alpha = inf\n")
    config.write_text(config.read_text().replace('method = "full"', 'method = "lora"'))
    done = lensllm("run", "--config", str(config), "--store", str(tmp_path / "s.sqlite"),
                   cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "lensllm run: error: `finetune.lora_alpha` must be a finite number > 0 and <= 1e+06, "
        "got inf"]
    assert not (tmp_path / "s.sqlite").exists()


def test_an_out_of_memory_error_is_a_recorded_failed_run(tmp_path, monkeypatch):
    # Fault injection: the engine's step raises torch's out-of-memory error at step 2.
    import torch

    from lensllm.finetune.config import load_config
    from lensllm.finetune.engine import TrainEngine
    from lensllm.finetune.experiment import prepare_experiment, run_experiment
    from lensllm.store import InMemoryStore

    real_step = TrainEngine.step
    calls = []

    def step(self, batches):
        calls.append(1)
        if len(calls) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real_step(self, batches)

    monkeypatch.setattr(TrainEngine, "step", step)
    config = load_config(write_config(tmp_path, ["tiny:gpt2"], sizes="[16]"))
    prepared = prepare_experiment(config, store_path=tmp_path / "oom.sqlite")
    store = InMemoryStore()
    summary = run_experiment(prepared, store)
    assert summary.ran == 1 and [k.size for k, _ in summary.failed] == [16]
    assert summary.failed[0][1] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB"
    (cost,) = [c for c in store.costs() if c.kind == "failed"]
    assert cost.tokens > 0 and cost.flops > 0  # one step and the first validation were paid


def test_changed_local_weights_are_new_runs_with_a_notice(tmp_path):
    model = save_gpt2(tmp_path / "local-model", n_embd=32)
    config = write_config(tmp_path, [str(model)], sizes="[16]")
    store = tmp_path / "fp.sqlite"
    first = lensllm("run", "--config", str(config), "--store", str(store), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    same = lensllm("run", "--config", str(config), "--store", str(store), cwd=tmp_path)
    assert "0 run now" in same.stdout and "notice" not in same.stderr
    save_gpt2(model, n_embd=64, seed=1)  # the weights are replaced in place
    changed = lensllm("run", "--config", str(config), "--store", str(store), cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert "2 run now" in changed.stdout
    notices = [ln for ln in changed.stderr.splitlines() if ln.startswith("notice:")]
    assert len(notices) == 1 and "changed since its stored runs" in notices[0]
    out = tmp_path / "fp.csv"
    assert lensllm("export", "--store", str(store), "--out", str(out),
                   cwd=tmp_path).returncode == 0
    import transformers as tf

    n_params = tf.GPT2LMHeadModel.from_pretrained(model).num_parameters()
    assert out.read_text().splitlines()[1].split(",")[-2] == str(n_params)  # the new model


def test_export_of_a_foreign_database_changes_nothing(tmp_path):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    for argv in (["export", "--store", str(db), "--out", str(tmp_path / "t.csv")],
                 ["run", "--config", str(write_config(tmp_path, ["tiny:gpt2"])), "--store",
                  str(db)]):
        done = lensllm(*argv, cwd=tmp_path)
        assert done.returncode == 2 and "not a lensllm store" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "exp.toml"]


def _start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "lensllm.cli", *args], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _running(store: Path) -> int:
    """Training runs in progress; 0 while the store file exists but its tables are still
    being created by the process under test (a poll can land in that window)."""
    try:
        return rows(store, "SELECT COUNT(*) FROM runs WHERE status='running' AND size > 0")[0][0]
    except sqlite3.OperationalError:
        return 0


def test_sigterm_gives_the_current_run_back_with_a_message(tmp_path):
    # subsets large enough that a training run lasts seconds under the plateau recipe, so
    # the poll sees one in progress before the whole experiment has finished
    config = write_config(tmp_path, ["tiny:gpt2", "tiny:llama"], sizes="[256, 512]")
    store = tmp_path / "t.sqlite"
    proc = _start(["run", "--config", str(config), "--store", str(store)], tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a training run in progress
        time.sleep(0.2)
        if store.exists() and _running(store):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert rows(store, "SELECT COUNT(*) FROM runs WHERE status='running' OR owner IS NOT "
                       "NULL AND status='pending'") == [(0,)]
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_no_traceback_when_interrupted_at_any_moment_of_start_up(tmp_path):
    config = write_config(tmp_path, ["tiny:gpt2"], sizes="[16]")
    rng = random.Random(11)
    for i in range(6):
        sig = (signal.SIGINT, signal.SIGTERM)[i % 2]
        proc = _start(["run", "--config", str(config), "--store",
                       str(tmp_path / f"s{i}.sqlite")], tmp_path)
        time.sleep(rng.uniform(0.05, 2.5))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert proc.returncode in (128 + sig, 0), (proc.returncode, err)
        if proc.returncode:
            assert "lensllm" in err and ("interrupted" in err or "terminated" in err)
