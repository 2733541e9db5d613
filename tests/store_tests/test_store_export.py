"""Export: store runs to the shared loss-table format that `lensllm bench` reads."""

from __future__ import annotations

import pytest

from lensllm.bench import load_table
from lensllm.exceptions import StoreError
from lensllm.store import InMemoryStore, RunKey, RunResult
from lensllm.store.export import export_table, write_table


def _finish(store, model, size, seed, loss, params=100, family="fam", dataset="d", h="h"):
    run_id = store.create_run(RunKey(model, dataset, size, seed, h))
    store.claim_run([run_id], "a:1:a")
    store.finish_run(run_id, "a:1:a", RunResult(
        loss, 1, 1, 1, 1.0, 0.0, 1e-3, 1, params + 5, params + 5, params, family))


def test_export_means_over_seeds_and_reads_back(tmp_path):
    store = InMemoryStore()
    for model, params, base in (("a", 100, 3.0), ("b", 200, 2.0)):
        _finish(store, model, 0, 0, base + 2, params)
        for size, drop in ((10, 0.5), (20, 1.0)):
            _finish(store, model, size, 0, base - drop, params)
            _finish(store, model, size, 1, base - drop + 0.2, params)
    table = export_table(store)
    assert table.header == ("config name", "0", "10", "20", "size", "family")
    path = write_table(table, tmp_path / "t.csv")
    loaded = load_table(path)
    assert loaded.models == ("a", "b")
    assert loaded.losses[0].tolist() == pytest.approx([2.6, 2.1])
    assert loaded.zero_shot.tolist() == pytest.approx([5.0, 4.0])
    assert loaded.n_params.tolist() == [100, 200]  # base parameters, not with adapters


def test_export_refuses_incomplete_or_ambiguous_stores():
    store = InMemoryStore()
    with pytest.raises(StoreError, match="no finished runs"):
        export_table(store)
    _finish(store, "a", 10, 0, 2.0)
    _finish(store, "a", 20, 0, 1.5)
    _finish(store, "b", 10, 0, 2.5)
    with pytest.raises(StoreError, match="b at size 20.*--partial"):
        export_table(store)
    partial = export_table(store, partial=True)
    assert partial.dropped_sizes == (20,) and partial.header[1] == "10"
    _finish(store, "a", 10, 0, 2.0, dataset="other")
    with pytest.raises(StoreError, match="2 datasets.*--dataset"):
        export_table(store)
    assert export_table(store, dataset="other").rows[0][0] == "a"
