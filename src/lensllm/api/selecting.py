""":func:`select`: choose the model to fine-tune from small real fine-tuning runs; the
library call behind ``lensllm select`` (needs the ``finetune`` extra: torch)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lensllm.api._results import Result

__all__ = ["SelectResult", "select"]


@dataclass(frozen=True, eq=False)
class SelectResult(Result):
    """What :func:`select` found.

    Attributes:
        record: the JSON-ready outcome, exactly ``lensllm select --json``: ``ranking``
            (best first, with predictions, intervals and trust fields), ``selected``,
            ``cost_fraction`` and the FLOPs, ``failed``, ``planning``...
        outcome: the full :class:`lensllm.pipeline.SelectOutcome` (view, selection, laws,
            trust), for reports.
        mlflow_run_id: the MLflow run the selection was logged to (None: not logged).
    """

    record: dict[str, Any]
    outcome: Any = field(repr=False)
    mlflow_run_id: str | None = None

    @property
    def selected(self) -> str:
        """The model chosen."""
        return self.record["selected"]

    @property
    def ranking(self) -> list[str]:
        """Model ids, best first."""
        return [r["model"] for r in self.record["ranking"]]

    @property
    def cost_fraction(self) -> float:
        """FLOPs paid over fine-tuning every candidate on ``D*``."""
        return self.record["cost_fraction"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON value of ``lensllm select --json``."""
        return dict(self.record)

    def frame_records(self) -> tuple[list[dict[str, Any]], str | None]:
        """The ranking, one row per candidate, best first."""
        return [dict(r) for r in self.record["ranking"]], "model"


def select(config: Any, *, method: str | None = None, store: str | Path | None = None,
           threads: int | None = None, log: Callable[[str], None] | None = None,
           executor_factory: Callable[[Any], Any] | None = None,
           retry_failed: bool = False, mlflow: str | Path | None = None,
           mlflow_experiment: str = "lensllm select") -> SelectResult:
    """Run a selection on real fine-tuning runs (see docs/select.md).

    Args:
        config: a ``lensllm select`` TOML path, a parsed dict of one, or a
            :class:`lensllm.pipeline.SelectConfig`.
        method: override ``[selection] method``.
        store: override the config's store file.
        threads: torch threads per run.
        log: receives progress lines (default: silent).
        executor_factory: builds the run executor (default: in process).
        retry_failed: run again runs that failed before.
        mlflow: log the selection (ranking, cost) and every paid run's loss curve to this
            MLflow tracking URI or local folder (needs the ``mlflow`` extra; checked before
            any run).
        mlflow_experiment: the MLflow experiment to log under.

    Returns:
        A :class:`SelectResult`; ``to_dict()`` is what ``lensllm select --json`` prints.
    """
    from lensllm.pipeline import SelectConfig, load_select_config, run_select
    from lensllm.pipeline.config import select_config_from_dict
    from lensllm.report.select_report import outcome_record

    if mlflow is not None:
        from lensllm.report.mlflow_log import require_mlflow

        require_mlflow("`mlflow`")
    if isinstance(config, (str, Path)):
        config = load_select_config(config)
    elif isinstance(config, dict):
        config = select_config_from_dict(config)
    elif not isinstance(config, SelectConfig):
        from lensllm.exceptions import InputError

        raise InputError(f"`config` must be a TOML path, a dict or a SelectConfig, got "
                         f"{type(config).__name__}")
    if method is not None:
        config = dataclasses.replace(
            config, selection=dataclasses.replace(config.selection, method=method))
    outcome = run_select(config, store_path=store, threads=threads, log=log,
                         executor_factory=executor_factory, retry_failed=retry_failed)
    run_id = None
    if mlflow is not None:
        from lensllm.report.mlflow_log import log_select

        run_id = log_select(outcome, mlflow, experiment=mlflow_experiment)
    return SelectResult(record=outcome_record(outcome), outcome=outcome, mlflow_run_id=run_id)
