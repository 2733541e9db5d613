"""Large-table fitting gives the same bits as one serial batch (lensllm.laws._workers).

Why it may: the blocks are the same whatever the number of workers, a block's numbers do not
depend on the process that fits it, and the Levenberg-Marquardt refinement computes every
row on its own (the working set only drops finished rows).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lensllm.exceptions import InputError
from lensllm.laws import RectifiedLaw, _engine
from lensllm.laws._workers import worker_count

SRC = Path(__file__).resolve().parents[2] / "src"
D = np.concatenate([[0.0], 200.0 * 2 ** np.arange(8)])


def curves(n: int, seed: int = 0) -> np.ndarray:
    """``n`` noisy rectified curves with parameters drawn per curve (seeded)."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.3, 0.8, (n, 1))
    d_l = 10 ** rng.uniform(1, 3, (n, 1))
    b = rng.uniform(1.0, 3.0, (n, 1)) * d_l
    e = rng.uniform(0.5, 2.0, (n, 1))
    return (b / (d_l + D ** beta) + e) * np.exp(rng.normal(0, 0.01, (n, D.size)))


def test_levenberg_marquardt_row_alone_gives_the_batch_bits():
    """The refinement treats each row on its own: finished rows leave the working set, and
    what is left is computed row by row, so a row alone gives the batch's bits."""
    loss = curves(6)
    law = RectifiedLaw()
    lower, upper = _engine.full_bounds(law, loss, np.ones_like(loss, bool), {})
    start = np.column_stack([np.full(6, 0.5), np.full(6, 4.0), np.full(6, 6.0),
                             0.9 * upper[:, -1]])
    log_loss, mask = np.log(loss), np.ones_like(loss, bool)
    phi, sse, n_iter, done = _engine.levenberg_marquardt(law, D, log_loss, mask, start,
                                                         lower, upper, {})
    assert done.all() and len(set(n_iter.tolist())) > 1  # rows stopped at different steps
    for i in range(6):
        one = _engine.levenberg_marquardt(law, D, log_loss[i:i + 1], mask[i:i + 1],
                                          start[i:i + 1], lower[i:i + 1], upper[i:i + 1], {})
        assert np.array_equal(one[0][0], phi[i]) and one[2][0] == n_iter[i]


SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from test_workers import D, curves
from lensllm.laws import RectifiedLaw, _engine, _workers
_workers.PARALLEL_MIN_CURVES = 10
_engine.FIT_BLOCK, _engine.BOOT_BLOCK = 8, 8
batch = RectifiedLaw().fit_many(D, curves(40, seed=2))
star, noise = batch.replicates(n_boot=16)
assert "torch" not in sys.modules
np.savez({out!r}, phi=batch.raw.phi, sse=batch.raw.sse, star=star, noise=noise,
         forked=_workers._POOL is not None)
"""


def _run(tmp_path: Path, workers: int) -> dict:
    out = tmp_path / f"w{workers}.npz"
    env = {**os.environ, "LENSLLM_WORKERS": str(workers), "PYTHONPATH": str(SRC)}
    code = SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    return dict(np.load(out))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_worker_processes_give_the_serial_bits(tmp_path):
    serial, parallel = _run(tmp_path, 1), _run(tmp_path, 2)
    assert not serial["forked"] and parallel["forked"]
    for key in ("phi", "sse", "star", "noise"):
        assert np.array_equal(serial[key], parallel[key]), key


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_worker_count_is_named(monkeypatch, value):
    monkeypatch.setenv("LENSLLM_WORKERS", value)
    with pytest.raises(InputError, match="LENSLLM_WORKERS"):
        worker_count()


def test_worker_count_default_and_setting(monkeypatch):
    monkeypatch.delenv("LENSLLM_WORKERS", raising=False)
    assert 1 <= worker_count() <= 8
    monkeypatch.setenv("LENSLLM_WORKERS", "3")
    assert worker_count() == 3
