"""Running an experiment: candidates x sizes x seeds, resumable, local or on Ray.

:func:`prepare_experiment` validates everything a run will need (data file and fields,
subset sizes against the training pool, every model id, the store path) *before* the store
is opened, so a bad config leaves the store untouched. :func:`run_experiment` then adds the
planned runs to the store (a no-op for runs already there), and loops: claim a run
atomically, execute it (in-process or as a Ray task), store its result. Runs finished
earlier, by this process or another, are never repeated; a run held by a process that died
is claimed again.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lensllm.exceptions import ConfigError, LensLLMError
from lensllm.finetune.config import ExperimentConfig
from lensllm.finetune.data import TaskData, load_data, split_indices
from lensllm.finetune.models import resolve_model
from lensllm.store import BaseStore, RunKey, RunRecord, RunResult, check_store_path, make_owner

__all__ = [
    "PlannedRun",
    "PreparedExperiment",
    "ExperimentSummary",
    "prepare_experiment",
    "run_experiment",
    "LocalExecutor",
    "RayExecutor",
    "execute_run",
]


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: its key and the candidate's family name."""

    key: RunKey
    family: str


@dataclass(frozen=True)
class PreparedExperiment:
    """A validated experiment, ready to run.

    Attributes:
        config: the config.
        task: the loaded task data.
        config_hash: the hash in every run key.
        store_path: the store file.
        runs: the plan, zero-shot evaluations first, then by size, seed and model.
    """

    config: ExperimentConfig
    task: TaskData
    config_hash: str
    store_path: Path
    runs: tuple[PlannedRun, ...]


@dataclass
class ExperimentSummary:
    """What :func:`run_experiment` did.

    Attributes:
        total: runs in the plan.
        finished_before: runs already finished when it started.
        ran: runs this process executed and stored.
        failed: ``(run key, message)`` of runs that failed in this process.
        store_path: the store file.
    """

    total: int
    finished_before: int
    ran: int = 0
    failed: list[tuple[RunKey, str]] = field(default_factory=list)
    store_path: str = ""


def default_store_path(config: ExperimentConfig) -> Path:
    """``experiment.store`` if set, else ``<config stem>.sqlite`` in the working directory."""
    if config.store is not None:
        return Path(config.store)
    stem = config.source.stem if config.source is not None else config.data.name
    return Path.cwd() / f"{stem}.sqlite"


def prepare_experiment(
    config: ExperimentConfig, *, store_path: str | Path | None = None
) -> PreparedExperiment:
    """Validate a config against its data, models and store path; plan its runs.

    Args:
        config: the experiment config.
        store_path: overrides the config's store.

    Returns:
        The prepared experiment.

    Raises:
        ConfigError, InputError, StoreError: the first problem found, in one line.
    """
    path = Path(store_path) if store_path is not None else default_store_path(config)
    path = check_store_path(path)
    task = load_data(config.data)
    split = split_indices(
        len(task), n_validation=config.data.validation_size, n_test=config.data.test_size,
        seed=config.data.split_seed,
    )
    pool = len(split.train)
    if config.sizes[-1] > pool:
        raise ConfigError(
            f"`experiment.sizes` asks for {config.sizes[-1]} examples but '{task.path}' has "
            f"{pool} training examples ({len(task)} minus validation_size "
            f"{config.data.validation_size} and test_size {config.data.test_size})"
        )
    families: dict[str, str] = {}
    for candidate in config.candidates:
        spec = resolve_model(candidate.model)
        if spec.is_encoder_decoder and task.kind != "seq2seq":
            raise ConfigError(
                f"candidate '{candidate.model}' is an encoder-decoder and needs 'source'/"
                f"'target' data; '{task.path}' has {task.kind} data"
            )
        families[candidate.model] = candidate.family or spec.family
    config_hash = config.config_hash(task.fingerprint, task.scoring)
    runs: list[PlannedRun] = []
    if config.zero_shot:
        for c in config.candidates:
            key = RunKey(c.model, config.data.name, 0, config.seeds[0], config_hash)
            runs.append(PlannedRun(key, families[c.model]))
    for size in config.sizes:
        for seed in config.seeds:
            for c in config.candidates:
                key = RunKey(c.model, config.data.name, size, seed, config_hash)
                runs.append(PlannedRun(key, families[c.model]))
    return PreparedExperiment(config, task, config_hash, path, tuple(runs))


def execute_run(
    prepared: PreparedExperiment,
    key: RunKey,
    family: str,
    *,
    threads: int | None = None,
    callback: Callable[[int, int, float], None] | None = None,
) -> RunResult:
    """Execute one planned run (no store access); what both executors call."""
    from lensllm.finetune.train import finetune

    config = prepared.config
    return finetune(
        key.model, prepared.task, size=key.size, seed=key.seed, config=config.finetune,
        validation_size=config.data.validation_size, test_size=config.data.test_size,
        split_seed=config.data.split_seed, family=family, threads=threads, callback=callback,
    )


class Progress(Protocol):
    """What :func:`run_experiment` reports to (see :mod:`lensllm.finetune.progress`)."""

    def begin(self, total: int, finished: int, capacity: int) -> None: ...
    def run_started(self, record: RunRecord) -> None: ...
    def step(self, step: int, total_steps: int, loss: float) -> None: ...
    def run_finished(self, record: RunRecord, result: RunResult) -> None: ...
    def run_failed(self, record: RunRecord, message: str) -> None: ...
    def waiting(self, held_elsewhere: int) -> None: ...
    def end(self) -> None: ...


class _NullProgress:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class Executor(Protocol):
    """Runs claimed runs; ``capacity`` of them at once."""

    capacity: int

    def submit(self, record: RunRecord, family: str) -> None: ...
    def next_result(self, progress: Progress) -> tuple[RunRecord, RunResult | str]: ...
    def in_flight(self) -> list[int]: ...
    def close(self) -> None: ...


class LocalExecutor:
    """Runs one run at a time in this process, reporting every step to the progress."""

    capacity = 1

    def __init__(self, prepared: PreparedExperiment, *, threads: int | None = None) -> None:
        self.prepared = prepared
        self.threads = threads
        self._queue: list[tuple[RunRecord, str]] = []

    def submit(self, record: RunRecord, family: str) -> None:
        self._queue.append((record, family))

    def in_flight(self) -> list[int]:
        return [r.run_id for r, _ in self._queue]

    def next_result(self, progress: Progress) -> tuple[RunRecord, RunResult | str]:
        record, family = self._queue[0]
        try:
            result: RunResult | str = execute_run(
                self.prepared, record.key, family, threads=self.threads, callback=progress.step
            )
        except LensLLMError as exc:
            result = str(exc)
        except Exception as exc:  # a bug or an environment failure: keep going, report it
            result = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        finally:
            self._queue.pop(0)
        return record, result

    def close(self) -> None:
        self._queue.clear()


def _ray_execute(prepared, key, family, threads):  # runs inside a Ray worker
    return execute_run(prepared, key, family, threads=threads)


class RayExecutor:
    """One Ray task per run; the driver (this process) alone writes the store.

    The store stays on the driver's machine, so workers need no shared filesystem (local
    model paths and the GGUF cache must exist on every node, though). Each task asks for
    ``threads`` CPUs, and one GPU when the cluster has GPUs.

    Args:
        prepared: the experiment.
        address: ``"auto"`` (an existing cluster, as ``ray.init(address="auto")``), a
            cluster address (``ray://host:10001`` or ``host:6379``), or ``"local"`` to start a
            private local Ray. Ignored when Ray is already initialised in this process.
        threads: CPUs (and torch threads) per task.
    """

    def __init__(
        self, prepared: PreparedExperiment, *, address: str | None = None, threads: int = 1
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--ray needs the 'ray' package: pip install 'lensllm[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            try:
                if address in (None, "local"):
                    ray.init(**kwargs)
                else:
                    ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot connect to Ray at '{address}': {exc}") from None
        resources = ray.cluster_resources()
        self.threads = max(1, int(threads))
        gpus = resources.get("GPU", 0)
        self._options = {"num_cpus": self.threads, "num_gpus": 1 if gpus else 0}
        by_cpu = int(resources.get("CPU", 1) // self.threads)
        self.capacity = max(1, min(by_cpu, int(gpus)) if gpus else by_cpu)
        self._prepared_ref = ray.put(prepared)
        self._remote = ray.remote(_ray_execute).options(max_retries=0, **self._options)
        self._pending: dict[Any, RunRecord] = {}

    def submit(self, record: RunRecord, family: str) -> None:
        ref = self._remote.remote(self._prepared_ref, record.key, family, self.threads)
        self._pending[ref] = record

    def in_flight(self) -> list[int]:
        return [r.run_id for r in self._pending.values()]

    def next_result(self, progress: Progress) -> tuple[RunRecord, RunResult | str]:
        ready, _ = self._ray.wait(list(self._pending), num_returns=1)
        record = self._pending.pop(ready[0])
        try:
            return record, self._ray.get(ready[0])
        except Exception as exc:  # RayTaskError wraps the worker's exception
            cause = getattr(exc, "cause", None) or exc
            return record, f"{type(cause).__name__}: {cause}"

    def close(self) -> None:
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        self._pending.clear()


class _Heartbeat:
    """A daemon thread renewing the leases of the runs in flight."""

    def __init__(self, store: BaseStore, owner: str, ids: Callable[[], list[int]], every: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(store, owner, ids, every), daemon=True
        )
        self._thread.start()

    def _loop(self, store, owner, ids, every) -> None:
        while not self._stop.wait(every):
            try:
                store.heartbeat(ids(), owner)
            except Exception:  # a busy store: the next beat retries
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_experiment(
    prepared: PreparedExperiment,
    store: BaseStore,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
    owner: str | None = None,
    lease_s: float = 60.0,
    heartbeat_s: float = 5.0,
    poll_s: float = 1.0,
) -> ExperimentSummary:
    """Run every planned run not finished yet; return when all are finished or failed.

    Several processes may run the same experiment on the same store at once: each claims
    runs atomically, and one that finds the remaining runs held by others waits for them
    (and takes over a run whose holder died or stopped renewing its lease).

    Args:
        prepared: from :func:`prepare_experiment`.
        store: the open store.
        executor: :class:`LocalExecutor` (default) or :class:`RayExecutor`.
        progress: receives events for a live display.
        owner: this process's owner id (default :func:`lensllm.store.make_owner`).
        lease_s: a running run whose lease was not renewed for this long may be retaken.
        heartbeat_s: how often leases are renewed.
        poll_s: how often to look again while other processes hold the remaining runs.

    Returns:
        A summary; ``failed`` lists runs whose execution raised (they stay ``failed`` in the
        store and are retried by the next call).
    """
    executor = executor or LocalExecutor(prepared, threads=prepared.config.threads)
    progress = progress or _NullProgress()
    owner = owner or make_owner()
    families = {}
    ids = []
    for planned in prepared.runs:
        run_id = store.create_run(planned.key, _run_config(prepared))
        families[run_id] = planned.family
        ids.append(run_id)
    store.reset_failed(ids)
    finished_before = len(store.get_runs(status="finished", run_ids=ids))
    summary = ExperimentSummary(
        total=len(ids), finished_before=finished_before, store_path=str(prepared.store_path)
    )
    progress.begin(len(ids), finished_before, executor.capacity)
    heartbeat = _Heartbeat(store, owner, executor.in_flight, heartbeat_s)
    try:
        while True:
            while len(executor.in_flight()) < executor.capacity:
                record = store.claim_run(ids, owner, lease_s=lease_s)
                if record is None:
                    break
                progress.run_started(record)
                executor.submit(record, families[record.run_id])
            if executor.in_flight():
                record, result = executor.next_result(progress)
                if isinstance(result, RunResult):
                    if store.finish_run(record.run_id, owner, result):
                        summary.ran += 1
                    progress.run_finished(record, result)
                else:
                    store.fail_run(record.run_id, owner, result)
                    summary.failed.append((record.key, result.splitlines()[0]))
                    progress.run_failed(record, result.splitlines()[0])
                continue
            held = [r for r in store.get_runs(run_ids=ids) if r.status == "running"]
            if not held:
                break
            progress.waiting(len(held))
            time.sleep(poll_s)
    finally:
        heartbeat.stop()
        executor.close()
        progress.end()
    return summary


def _run_config(prepared: PreparedExperiment) -> dict[str, Any]:
    config = prepared.config
    return {
        "finetune": config.finetune.as_dict(),
        "data": str(config.data.path or config.data.dataset),
        "data_kind": prepared.task.kind,
        "validation_size": config.data.validation_size,
        "test_size": config.data.test_size,
        "split_seed": config.data.split_seed,
    }
