"""The store interface: every measurement of an experiment, resumable and shared."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from lensllm.store._records import (
    CostRecord,
    LossPoint,
    NtkFeatures,
    RunFailure,
    RunKey,
    RunRecord,
    RunResult,
)

__all__ = ["BaseStore"]


class BaseStore(ABC):
    """Runs, loss points, NTK features and costs of one or more experiments.

    Runs are keyed by :class:`RunKey` and move pending -> running -> finished. A process
    *claims* a pending run atomically (so two processes never run the same run), keeps its
    lease alive with :meth:`heartbeat`, and stores the result with :meth:`finish_run`; a run
    held by a process that died (or whose lease expired) can be claimed again. A finished run
    is never claimed again.

    System attributes (:meth:`set_system_attr`) hold per-run bookkeeping under string keys;
    the keys in use are listed in :mod:`lensllm.store`.
    """

    @abstractmethod
    def create_run(self, key: RunKey, config: dict[str, Any] | None = None) -> int:
        """Add a pending run unless one with this key exists; return the run's id."""

    @abstractmethod
    def claim_run(
        self, run_ids: Iterable[int], owner: str, *, lease_s: float = 60.0
    ) -> RunRecord | None:
        """Atomically take one claimable run among ``run_ids``.

        Claimable: pending, or running with an expired lease (no heartbeat for ``lease_s``
        seconds) or held by a dead process on this host.

        Returns:
            The claimed run (now ``running``, held by ``owner``), or None if none is
            claimable right now.
        """

    @abstractmethod
    def heartbeat(self, run_ids: Iterable[int], owner: str) -> None:
        """Renew ``owner``'s leases on ``run_ids``."""

    @abstractmethod
    def finish_run(self, run_id: int, owner: str, result: RunResult) -> bool:
        """Store a run's result and loss points in one transaction.

        Returns:
            False if the run was already finished (by a process that retook it), in which
            case nothing is written, so nothing is ever duplicated.
        """

    @abstractmethod
    def fail_run(self, run_id: int, owner: str, failure: RunFailure | str) -> None:
        """Mark a run held by ``owner`` as failed, with its reason and, as a ``failed``
        cost entry, the compute it spent before failing (a bare message: no cost)."""

    @abstractmethod
    def release_runs(self, run_ids: Iterable[int], owner: str) -> int:
        """Give back runs ``owner`` holds (pending again, no lease) so that another process
        can claim them at once; what an interrupted command does. Returns how many."""

    @abstractmethod
    def reset_failed(self, run_ids: Iterable[int]) -> int:
        """Make failed runs among ``run_ids`` pending again; return how many."""

    @abstractmethod
    def get_run(self, key: RunKey) -> RunRecord | None:
        """The run with this key, or None."""

    @abstractmethod
    def get_runs(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        config_hash: str | None = None,
        run_ids: Sequence[int] | None = None,
    ) -> list[RunRecord]:
        """Runs matching every filter given, by id."""

    @abstractmethod
    def record_loss(self, run_id: int, point: LossPoint) -> None:
        """Add (or replace) one loss point of a run."""

    @abstractmethod
    def loss_points(self, run_id: int) -> list[LossPoint]:
        """A run's loss points ordered by split then step."""

    @abstractmethod
    def set_system_attr(self, run_id: int, key: str, value: Any) -> None:
        """Set a JSON-able bookkeeping value on a run."""

    @abstractmethod
    def get_system_attrs(self, run_id: int) -> dict[str, Any]:
        """All bookkeeping values of a run."""

    @abstractmethod
    def record_ntk(self, features: NtkFeatures) -> int:
        """Store (or replace) NTK features; unique per model, dataset and settings."""

    @abstractmethod
    def get_ntk(
        self, *, model: str | None = None, dataset: str | None = None
    ) -> list[NtkFeatures]:
        """Stored NTK features, optionally for one model and/or dataset."""

    @abstractmethod
    def record_cost(self, cost: CostRecord) -> None:
        """Add a cost entry."""

    @abstractmethod
    def costs(self) -> list[CostRecord]:
        """Every cost entry, oldest first."""

    def check_intact(self) -> None:
        """Raise :class:`~lensllm.exceptions.StoreError` when the store's file was deleted
        or replaced since it was opened (a no-op for stores without a file). Writes check
        it themselves; a command that read its results calls it before reporting them."""

    def close(self) -> None:
        """Release resources (a no-op by default)."""

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
