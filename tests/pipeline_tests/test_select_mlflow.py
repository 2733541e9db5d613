"""`lensllm select --mlflow`: the selection and every paid run's loss curve, read back from a
real local MLflow store; a clear error, before any run, when mlflow is not installed."""

from __future__ import annotations

import json

import pytest

import lensllm
from lensllm.cli import main


def test_missing_mlflow_is_one_line_before_any_run(tiny_select, monkeypatch, capsys, tmp_path):
    import lensllm.report.mlflow_log as mlflow_log

    path, _ = tiny_select
    monkeypatch.setattr(mlflow_log, "mlflow_available", lambda: False)
    store = tmp_path / "never.sqlite"
    status = main(["select", "--config", str(path), "--store", str(store), "--mlflow",
                   str(tmp_path / "mlruns")])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert "--mlflow needs the mlflow package" in err
    assert not store.exists()  # nothing ran


def test_selection_and_loss_curves_in_a_local_store(tiny_select, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from lensllm.report.mlflow_log import log_select, tracking_uri
    from lensllm.report.select_report import outcome_record

    _, outcome = tiny_select
    folder = tmp_path / "mlruns"
    run_id = log_select(outcome, folder, experiment="tiny")
    client = MlflowClient(tracking_uri=tracking_uri(folder))
    exp = client.get_experiment_by_name("tiny")
    parent = client.get_run(run_id)
    record = outcome_record(outcome)
    assert parent.data.params["method"] == record["method"]
    assert parent.data.tags["lensllm.selected"] == record["selected"]
    assert parent.data.metrics["cost_fraction"] == pytest.approx(outcome.cost_fraction)
    local = client.download_artifacts(run_id, "ranking.json", str(tmp_path))
    ranking = json.loads(open(local).read())
    assert [r["model"] for r in ranking] == [r["model"] for r in record["ranking"]]
    children = [r for r in client.search_runs([exp.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == run_id]
    view = outcome.view
    expected = view.n_models + int(view.paid.sum()) * view.n_seeds  # zero-shot + paid
    assert len(children) == expected
    child = next(c for c in children if c.data.params["size"] != "0")
    size, model = int(child.data.params["size"]), child.data.params["model"]
    (rec,) = [r for r in view.records(model, size)
              if r.key.seed == int(child.data.params["seed"])]
    from lensllm.store import open_store

    with open_store(view.store_path, read_only=True) as store:
        want = [(p.step, p.loss) for p in store.loss_points(rec.run_id)
                if p.split == "validation"]
    got = [(m.step, m.value) for m in client.get_metric_history(child.info.run_id,
                                                                "validation_loss")]
    assert sorted(got) == sorted(want) and len(want) >= 2
    assert child.data.metrics["final_test_loss"] == pytest.approx(rec.result.test_loss)


def test_the_api_logs_when_asked(tiny_select, tmp_path):
    pytest.importorskip("mlflow")
    path, _ = tiny_select
    result = lensllm.select(path, mlflow=tmp_path / "mlruns")
    assert result.mlflow_run_id and (tmp_path / "mlruns").is_dir()
