"""``benchmarks/bench_run_overhead.py``: a run's wall time splits into training, evaluation
and the rest, measured on the real run path; the rest is small once the model is kept."""

from __future__ import annotations

import pytest

from bench_loader import load_bench


def test_overhead_is_wall_time_less_training_and_evaluation(capsys):
    bench = load_bench("bench_run_overhead")
    out = bench.main(["--sizes", "0,8,16,16", "--tokens", "32"])
    rows = out["rows"]
    assert [r["size"] for r in rows] == [0, 8, 16, 16]
    assert rows[0]["train_s"] == 0 and rows[0]["eval_s"] > 0  # zero-shot: the test loss only
    for r in rows:
        assert r["overhead_s"] == pytest.approx(r["wall_s"] - r["train_s"] - r["eval_s"])
        assert r["overhead_s"] > 0
    for r in rows[1:]:
        assert r["train_s"] > 0 and r["steps"] > 0
    # measured 0.03-0.06 s on this project's 2-core machine (the goal is 0.3 s); a loose
    # bound here, the machine is shared
    assert out["run_overhead_s"] < 1.0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("run_overhead_s=")
