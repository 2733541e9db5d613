"""Running an experiment: candidates x sizes x seeds, resumable, local or on Ray.

:func:`prepare_experiment` validates everything a run will need (data file and fields,
subset sizes against the training pool, every model id, the store path) *before* the store
is opened, so a bad config leaves the store untouched. :func:`run_experiment` then adds the
planned runs to the store (a no-op for runs already there), and loops: claim a run
atomically, execute it (in-process or as a Ray task), store its result. Runs finished
earlier, by this process or another, are never repeated; a run held by a process that died
is claimed again.

A run that fails (non-finite loss, an exception inside the model, out of memory) is stored
as ``failed`` with its reason and the compute it spent, and the experiment goes on with the
other runs. A failed run is not retried by a later call unless it asks (``retry_failed``,
``--retry-failed``). An interrupted call (SIGINT, SIGTERM) gives its runs back at once.

A run's key includes the fingerprint of its model (:func:`lensllm.finetune.models.
model_fingerprint`): a local model whose files changed gets new runs, with a notice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import ExperimentConfig
from lensllm.finetune.data import TaskData, load_data, split_indices
from lensllm.finetune.models import model_fingerprint, resolve_model
from lensllm.outputs import check_apart
from lensllm.store import (
    BaseStore,
    RunFailure,
    RunKey,
    RunRecord,
    RunResult,
    check_store,
    check_store_path,
    make_owner,
)

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
        failed: ``(run key, reason)`` of runs that failed in this process.
        failed_before: ``(run key, reason)`` of runs that had failed earlier and were not
            retried (``retry_failed`` off).
        store_path: the store file.
        notices: one line per candidate whose model changed since its stored runs.
    """

    total: int
    finished_before: int
    ran: int = 0
    failed: list[tuple[RunKey, str]] = field(default_factory=list)
    failed_before: list[tuple[RunKey, str]] = field(default_factory=list)
    store_path: str = ""
    notices: list[str] = field(default_factory=list)


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
    check_apart({"the store": path},
                {"the config file": config.source, "data.path": config.data.path},
                stores=["the store"])  # the store is written: never the data or the config
    check_store(path)  # a foreign store, or one of a newer schema, before any work
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
    prints: dict[str, str] = {}
    for candidate in config.candidates:
        spec = resolve_model(candidate.model)
        if spec.is_encoder_decoder and task.kind != "seq2seq":
            raise ConfigError(
                f"candidate '{candidate.model}' is an encoder-decoder and needs 'source'/"
                f"'target' data; '{task.path}' has {task.kind} data"
            )
        families[candidate.model] = candidate.family or spec.family
        prints[candidate.model] = model_fingerprint(candidate.model)
    config_hash = config.config_hash(task.fingerprint, task.scoring)
    runs: list[PlannedRun] = []
    if config.zero_shot:
        for c in config.candidates:
            key = RunKey(c.model, config.data.name, 0, config.seeds[0], config_hash,
                         prints[c.model])
            runs.append(PlannedRun(key, families[c.model]))
    for size in config.sizes:
        for seed in config.seeds:
            for c in config.candidates:
                key = RunKey(c.model, config.data.name, size, seed, config_hash,
                             prints[c.model])
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
    def next_result(self, progress: Progress) -> tuple[RunRecord, RunResult | RunFailure]:
        ...
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

    def next_result(self, progress: Progress) -> tuple[RunRecord, RunResult | RunFailure]:
        from lensllm.finetune.train import RunFailed

        record, family = self._queue[0]
        try:
            result: RunResult | RunFailure = execute_run(
                self.prepared, record.key, family, threads=self.threads, callback=progress.step
            )
        except RunFailed as exc:
            result = exc.failure
        finally:
            self._queue.pop(0)
        return record, result

    def close(self) -> None:
        self._queue.clear()


def _ray_execute(prepared, key, family, threads):  # runs inside a Ray worker
    from lensllm.finetune.train import RunFailed

    try:
        return execute_run(prepared, key, family, threads=threads)
    except RunFailed as exc:
        return exc.failure


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

    def next_result(self, progress: Progress) -> tuple[RunRecord, RunResult | RunFailure]:
        ready, _ = self._ray.wait(list(self._pending), num_returns=1)
        record = self._pending.pop(ready[0])
        try:
            return record, self._ray.get(ready[0])
        except Exception as exc:  # a worker that died (RayTaskError wraps its exception)
            cause = getattr(exc, "cause", None) or exc
            return record, RunFailure(f"{type(cause).__name__}: {cause}")

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
    retry_failed: bool = False,
) -> ExperimentSummary:
    """Run every planned run not finished (or failed) yet; return when none is left.

    Several processes may run the same experiment on the same store at once: each claims
    runs atomically, and one that finds the remaining runs held by others waits for them
    (and takes over a run whose holder died or stopped renewing its lease). If this call is
    interrupted (KeyboardInterrupt, which SIGTERM also raises in the CLI), the runs it holds
    are given back (pending, no lease) before the exception goes on.

    Args:
        prepared: from :func:`prepare_experiment`.
        store: the open store.
        executor: :class:`LocalExecutor` (default) or :class:`RayExecutor`.
        progress: receives events for a live display.
        owner: this process's owner id (default :func:`lensllm.store.make_owner`).
        lease_s: a running run whose lease was not renewed for this long may be retaken.
        heartbeat_s: how often leases are renewed.
        poll_s: how often to look again while other processes hold the remaining runs.
        retry_failed: run again the runs that failed earlier (default: leave them failed).

    Returns:
        A summary; ``failed`` lists runs that failed here (stored ``failed`` with reason
        and cost), ``failed_before`` those that had failed earlier and were left alone.
    """
    executor = executor or LocalExecutor(prepared, threads=prepared.config.threads)
    progress = progress or _NullProgress()
    owner = owner or make_owner()
    summary, families, ids = _plan_in_store(prepared, store, retry_failed)
    progress.begin(len(ids), summary.finished_before, executor.capacity)
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
                _store_outcome(store, owner, record, result, summary, progress)
                continue
            others = [r for r in store.get_runs(run_ids=ids) if r.status == "running"]
            if not others:
                break
            progress.waiting(len(others))
            time.sleep(poll_s)
    except BaseException:
        # every planned id, not only those whose records came back: an interrupt landing in
        # ``claim_run`` after its commit leaves a run this owner claimed but never saw;
        # release_runs touches only the rows this owner holds
        _release(store, owner, ids)
        raise
    finally:
        heartbeat.stop()
        executor.close()
        progress.end()
    return summary


def _plan_in_store(prepared: PreparedExperiment, store: BaseStore, retry_failed: bool
                   ) -> tuple[ExperimentSummary, dict[int, str], list[int]]:
    """Add the planned runs to the store; the summary so far, families by id, the ids of
    the runs to do (failed ones left out unless ``retry_failed``)."""
    notices = changed_models(prepared, store)
    families, ids = {}, []
    for planned in prepared.runs:
        run_id = store.create_run(planned.key, _run_config(prepared))
        families[run_id] = planned.family
        ids.append(run_id)
    if retry_failed:
        store.reset_failed(ids)
    records = store.get_runs(run_ids=ids)
    summary = ExperimentSummary(
        total=len(ids), finished_before=sum(r.status == "finished" for r in records),
        store_path=str(prepared.store_path), notices=notices,
    )
    failed = [r for r in records if r.status == "failed"]
    summary.failed_before = [(r.key, _first_line(r.error)) for r in failed]
    skip = {r.run_id for r in failed}
    return summary, families, [i for i in ids if i not in skip]


def changed_models(prepared: PreparedExperiment, store: BaseStore) -> list[str]:
    """One line per candidate whose store runs (same data and config) were all made with
    another fingerprint of its model (its files changed): its runs are new. Call it before
    the planned runs are added."""
    planned = {p.key.model: p.key.fingerprint for p in prepared.runs}
    seen: dict[str, set[str]] = {}
    for run in store.get_runs(dataset=prepared.config.data.name,
                              config_hash=prepared.config_hash):
        if run.key.model in planned:
            seen.setdefault(run.key.model, set()).add(run.key.fingerprint)
    return [
        f"model '{m}' changed since its stored runs (fingerprint "
        f"{', '.join(sorted(f or 'none' for f in old))} -> {planned[m] or 'none'}): "
        "its runs are new, the old ones are kept"
        for m, old in seen.items() if planned[m] not in old
    ]


def _store_outcome(store: BaseStore, owner: str, record: RunRecord,
                   result: RunResult | RunFailure, summary: ExperimentSummary,
                   progress: Progress) -> None:
    if isinstance(result, RunResult):
        if store.finish_run(record.run_id, owner, result):
            summary.ran += 1
        progress.run_finished(record, result)
        return
    store.fail_run(record.run_id, owner, result)
    summary.failed.append((record.key, result.reason))
    progress.run_failed(record, result.reason)


def _release(store: BaseStore, owner: str, ids: list[int]) -> None:
    """Give back the runs among ``ids`` that ``owner`` holds; best effort (the process is
    being interrupted)."""
    try:
        store.release_runs(ids, owner)
    except BaseException:  # noqa: BLE001 - a second interrupt or a busy store: lease expiry
        pass


def _first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or ["unknown reason"])[0]


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
