"""A :class:`~lensllm.bench.budget.SelectionView` backed by real fine-tuning runs.

Selectors written for loss tables run unchanged on real models: where a
:class:`~lensllm.bench.budget.BudgetView` looks a loss up in a table, :class:`RunView`
makes sure the runs ``(candidate, size, every seed)`` are finished in the store, running
them through :func:`lensllm.finetune.experiment.run_experiment` if not, and returns their
mean test loss. Finished runs are read back, never repeated (a second ``lensllm select``
on the same store runs nothing new).

Cost is counted, not modelled: :meth:`RunView.cost` sums the FLOPs the store recorded for
the runs a selector paid for (every seed). The denominator of the cost fraction,
:meth:`RunView.full_cost`, is each candidate's measured training FLOPs per example of its
largest finished run (``6 * n_params * train_tokens / size``) times ``D*``, summed over
candidates: fine-tuning every candidate once on the full data, with the same epochs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lensllm.exceptions import InputError, LensLLMError
from lensllm.store import BaseStore, RunKey, RunRecord

__all__ = ["CandidateFailed", "RunView"]


class CandidateFailed(LensLLMError):
    """A run of one candidate failed; the caller drops the candidate and goes on.

    Attributes:
        model: the candidate's model id.
        reason: the first line of the error.
    """

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(f"{model}: {reason}")
        self.model = model
        self.reason = reason


class RunView:
    """The candidates of a ``lensllm select`` experiment as a selector sees them.

    Args:
        prepared: the prepared experiment (its ``runs`` are ignored; runs are planned here).
        store: the open store.
        models: candidate model ids, in ranking order.
        families: family name per candidate.
        sizes: the affordable subset sizes, increasing.
        target: ``D*``.
        max_data_num: the budget.
        zero_shot: zero-shot test loss per candidate ``(C,)``.
        n_params: base parameter count per candidate ``(C,)``.
        ntk: NTK spectra per candidate, or None.
        paid: shared set of ``(model id, size)`` already paid for (kept across views when
            a failed candidate is dropped and the selection restarts).
        threads: torch threads per run.
        progress: receives run events (see :class:`lensllm.finetune.experiment.Progress`).
        executor_factory: builds an executor for ``prepared`` (default: local, in process).
    """

    def __init__(
        self,
        prepared: Any,
        store: BaseStore,
        *,
        models: Sequence[str],
        families: Sequence[str],
        sizes: Sequence[int],
        target: float,
        max_data_num: float,
        zero_shot: np.ndarray,
        n_params: np.ndarray,
        ntk: Sequence[object] | None = None,
        paid: set[tuple[str, int]] | None = None,
        threads: int | None = 1,
        progress: Any = None,
        executor_factory: Callable[[Any], Any] | None = None,
    ) -> None:
        if not models:
            raise InputError("no candidate left to select from")
        self._prepared = prepared
        self._store = store
        self.dataset = prepared.config.data.name
        self.max_data_num = float(max_data_num)
        self.target = float(target)
        self.models = tuple(models)
        self.family = tuple(families)
        self.sizes = np.asarray(sizes, float)
        self.zero_shot = np.asarray(zero_shot, float).copy()
        self.n_params = np.asarray(n_params, float).copy()
        self.ntk = None if ntk is None else tuple(ntk)
        self._paid_keys = paid if paid is not None else set()
        self._threads = threads
        self._progress = progress
        self._executor_factory = executor_factory
        self._cache: dict[RunKey, RunRecord] = {}
        self._frozen_fpe: list[float] | None = None

    # ------------------------------------------------------------------ protocol
    @property
    def n_models(self) -> int:
        return len(self.models)

    def observe(self, model: int | np.ndarray, size: float | np.ndarray) -> np.ndarray:
        """Make sure runs ``(model, size)`` (every seed) are finished; return mean test losses.

        Raises:
            InputError: a size that is not affordable.
            CandidateFailed: a run of a candidate failed.
        """
        model, size = np.broadcast_arrays(np.asarray(model), np.asarray(size, dtype=float))
        for s in np.unique(size):
            if s not in self.sizes:
                raise InputError(f"size {s:g} is not an affordable size (budget "
                                 f"{self.max_data_num:g}; affordable: "
                                 f"{', '.join(f'{x:g}' for x in self.sizes)})")
        pairs = sorted({(int(m), int(s)) for m, s in zip(model.ravel(), size.ravel())},
                       key=lambda p: (p[1], p[0]))
        self._ensure(pairs)
        out = np.empty(model.shape)
        for idx in np.ndindex(model.shape):
            out[idx] = self.mean_loss(int(model[idx]), int(size[idx]))
        return out

    def observe_all(self) -> np.ndarray:
        """Pay for every affordable run; losses ``(C, S)``."""
        m, s = np.meshgrid(np.arange(self.n_models), self.sizes, indexing="ij")
        return self.observe(m, s)

    def cost(self) -> float:
        """Counted FLOPs of the paid runs (every seed, evaluation passes included)."""
        return float(sum(self.flops(m, s) for m, s in self._paid_keys))

    def full_cost(self) -> float:
        """Fine-tuning every candidate once on ``D*``: measured FLOPs per example x ``D*``."""
        return float(sum(self.flops_per_example(i) for i in range(self.n_models))
                     * self.target)

    # ------------------------------------------------------------------ extras
    @property
    def paid(self) -> np.ndarray:
        """Which ``(candidate, affordable size)`` runs were paid for ``(C, S)``."""
        return np.array([[(m, int(s)) in self._paid_keys for s in self.sizes]
                         for m in self.models], dtype=bool)

    def records(self, model: int | str, size: int) -> list[RunRecord]:
        """The store's records of ``(model, size)``, one per seed (missing ones left out)."""
        mid = self.models[model] if isinstance(model, (int, np.integer)) else model
        out = []
        for seed in self._seeds(size):
            key = self._key(mid, size, seed)
            rec = self._cache.get(key)
            if rec is None:
                rec = self._store.get_run(key)
                if rec is not None and rec.status == "finished":
                    self._cache[key] = rec  # a finished run never changes
            if rec is not None:
                out.append(rec)
        return out

    def freeze(self) -> None:
        """Read everything cost and reports need from the store, so the view stays usable
        after the store is closed."""
        for i in range(self.n_models):
            self.records(i, 0)
        for m, s in list(self._paid_keys):
            self.records(m, s)
        self._frozen_fpe = [self.flops_per_example(i) for i in range(self.n_models)]

    def mean_loss(self, model: int, size: int) -> float:
        recs = [r for r in self.records(model, size) if r.status == "finished"]
        if not recs:
            raise CandidateFailed(self.models[model], f"no finished run at size {size}")
        return float(np.mean([r.result.test_loss for r in recs]))

    def flops(self, model: int | str, size: int) -> float:
        return float(sum(r.result.flops for r in self.records(model, size)
                         if r.status == "finished"))

    def flops_per_example(self, model: int) -> float:
        """Training FLOPs per subset example, measured on the candidate's largest finished
        run (any size in the store); scaled from the other candidates by parameter count
        when the candidate has no finished training run yet."""
        if self._frozen_fpe is not None:
            return self._frozen_fpe[model]
        own = self._per_example(self.models[model])
        if own is not None:
            return own
        per_param = [pe / self.n_params[i] for i in range(self.n_models)
                     if (pe := self._per_example(self.models[i])) is not None]
        if per_param:
            return float(np.median(per_param) * self.n_params[model])
        # No training run at all (zero-shot-only methods): tokens per example from the
        # zero-shot evaluation of the test split, times every epoch.
        (rec,) = self.records(model, 0) or (None,)
        if rec is None or rec.status != "finished":
            return float("nan")
        config = self._prepared.config
        per_example = rec.result.eval_tokens / config.data.test_size
        return 6.0 * rec.result.n_params * per_example * config.finetune.max_epochs

    def steps(self, model: int, size: int, which: str = "early_stop_step") -> float:
        """Mean optimizer steps (``steps`` or ``early_stop_step``) of a finished run."""
        recs = [r for r in self.records(model, size) if r.status == "finished"]
        return float(np.mean([getattr(r.result, which) for r in recs])) if recs else float("nan")

    def load_weights(self, model: int):
        """The candidate's pretrained torch model (before fine-tuning), for weight metrics."""
        from lensllm.finetune.models import load_model

        return load_model(self.models[model])[0]

    # ------------------------------------------------------------------ internals
    def _seeds(self, size: int) -> tuple[int, ...]:
        seeds = self._prepared.config.seeds
        return seeds[:1] if size == 0 else seeds

    def _key(self, model: str, size: int, seed: int) -> RunKey:
        return RunKey(model, self.dataset, int(size), int(seed), self._prepared.config_hash)

    def _per_example(self, model: str) -> float | None:
        runs = [r for r in self._store.get_runs(status="finished", dataset=self.dataset,
                                                config_hash=self._prepared.config_hash)
                if r.key.model == model and r.key.size > 0]
        if not runs:
            return None
        best = max(runs, key=lambda r: r.key.size)
        return 6.0 * best.result.n_params * best.result.train_tokens / best.key.size

    def _ensure(self, pairs: list[tuple[int, int]]) -> None:
        from lensllm.finetune.experiment import LocalExecutor, PlannedRun, run_experiment

        plan = []
        for m, s in pairs:
            for seed in self._seeds(s):
                key = self._key(self.models[m], s, seed)
                rec = self._store.get_run(key)
                if rec is None or rec.status != "finished":
                    plan.append(PlannedRun(key, self.family[m]))
        if plan:
            prepared = dataclasses.replace(self._prepared, runs=tuple(plan))
            executor = (self._executor_factory(prepared) if self._executor_factory else
                        LocalExecutor(prepared, threads=self._threads))
            run_experiment(prepared, self._store, executor=executor, progress=self._progress)
        for m, s in pairs:
            for rec in self.records(m, s):
                if rec.status != "finished":
                    reason = (rec.error or f"run ended {rec.status}").strip().splitlines()[0]
                    raise CandidateFailed(self.models[m], reason)
            self._paid_keys.add((self.models[m], s))
