"""A ``lensllm select`` outcome logged to MLflow (optional: the ``mlflow`` extra).

Where users already track experiments, a selection shows up as one MLflow run:

- the **selection run** (``select <method>``): parameters (method, ``D*``, budget, loss
  unit, candidates), metrics (``cost_fraction``, ``cost_flops``, ``full_cost_flops``,
  ``runs_paid``), the selected model as a tag, and two artifacts: ``ranking.json`` (the
  ranking, best first, as ``lensllm select --json`` gives it) and ``select.json`` (the whole
  ``--json`` record);
- one **nested run per fine-tuning run** it paid for (every seed, and the zero-shot
  evaluations): parameters (model, size, seed), the loss curve as metrics by optimiser step
  (``train_loss``, ``validation_loss``, ``test_loss``), and the run's final ``test_loss``,
  ``flops`` and ``wall_time_s``.

The tracking URI is any MLflow accepts; a folder path means a local file store
(``file:``). MLflow 3 keeps the file store in maintenance mode behind
``MLFLOW_ALLOW_FILE_STORE``; for a local folder this module sets that variable (when unset)
so the store the user asked for is written. The loss curves are read from the selection's
store, opened read-only. Nothing here needs torch or a server.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from lensllm.exceptions import InputError

__all__ = ["mlflow_available", "require_mlflow", "log_select", "tracking_uri"]

#: The extra that installs MLflow.
INSTALL_HINT = "pip install 'lensllm[mlflow]' (or mlflow-skinny)"


def mlflow_available() -> bool:
    """Whether the ``mlflow`` package can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def require_mlflow(what: str = "MLflow logging") -> None:
    """Raise :class:`InputError` naming ``what`` when mlflow is not installed."""
    if not mlflow_available():
        raise InputError(f"{what} needs the mlflow package: {INSTALL_HINT}")


def tracking_uri(target: str | Path) -> str:
    """A tracking URI: a folder path becomes a ``file:`` URI (a local file store)."""
    text = str(target)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) and not re.match(r"^[A-Za-z]:\\", text):
        return text
    return Path(text).expanduser().resolve().as_uri()


def log_select(outcome: Any, target: str | Path, *,
               experiment: str = "lensllm select") -> str:
    """Log a finished selection to MLflow; the selection run's id.

    Args:
        outcome: a :class:`lensllm.pipeline.SelectOutcome` (its view frozen, as
            :func:`lensllm.pipeline.run_select` returns it).
        target: a tracking URI or a local folder (a file store).
        experiment: the MLflow experiment (created when missing).

    Raises:
        InputError: mlflow is not installed.
    """
    require_mlflow()
    uri = tracking_uri(target)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    from lensllm.report.select_report import outcome_record

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(experiment)
    record = outcome_record(outcome)
    parent = client.create_run(exp_id, run_name=f"select {record['method']}",
                               tags={"lensllm.selected": record["selected"]})
    run_id = parent.info.run_id
    _log_selection(client, run_id, outcome, record)
    from lensllm.store import open_store

    with open_store(outcome.view.store_path, read_only=True) as store:
        for rec in _paid_records(outcome):
            _log_run(client, exp_id, run_id, rec, store.loss_points(rec.run_id))
    client.set_terminated(run_id)
    return run_id


def _log_selection(client, run_id: str, outcome: Any, record: dict[str, Any]) -> None:
    """Parameters, cost metrics and the ranking of the selection run."""
    from lensllm.outputs import json_text

    params = {"method": record["method"], "target": record["target"],
              "max_data": record["max_data"], "loss_unit": record["loss_unit"],
              "candidates": ",".join(outcome.view.models)}
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key in ("cost_fraction", "cost_flops", "full_cost_flops", "runs_paid"):
        value = record.get(key)
        if isinstance(value, (int, float)):
            client.log_metric(run_id, key, float(value))
    client.log_text(run_id, json_text(record["ranking"]), "ranking.json")
    client.log_text(run_id, json_text(record), "select.json")


def _paid_records(outcome: Any) -> list:
    """The store records of every run the selection paid for, zero-shot runs included."""
    view = outcome.view
    out = []
    for i in range(view.n_models):
        sizes = [0] + [int(s) for s, paid in zip(view.sizes, view.paid[i]) if paid]
        for size in sizes:
            out.extend(r for r in view.records(i, size) if r.status == "finished")
    return out


def _log_run(client, exp_id: str, parent_id: str, rec: Any, points: list) -> None:
    """One nested run: a fine-tuning run's settings, loss curve and result."""
    key, result = rec.key, rec.result
    child = client.create_run(
        exp_id, run_name=f"{Path(key.model).name} D={key.size} seed={key.seed}",
        tags={"mlflow.parentRunId": parent_id, "lensllm.model": key.model})
    cid = child.info.run_id
    for name, value in (("model", key.model), ("size", key.size), ("seed", key.seed),
                        ("dataset", key.dataset)):
        client.log_param(cid, name, value)
    for point in points:
        client.log_metric(cid, f"{point.split}_loss", float(point.loss), step=int(point.step))
    client.log_metric(cid, "final_test_loss", float(result.test_loss))
    client.log_metric(cid, "flops", float(result.flops))
    client.log_metric(cid, "wall_time_s", float(result.wall_time))
    client.set_terminated(cid)
