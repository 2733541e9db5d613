"""A :class:`~lensllm.selection.SelectionView` backed by real fine-tuning runs.

Selectors written for loss tables run unchanged on real models: where a
:class:`~lensllm.bench.budget.BudgetView` looks a loss up in a table, :class:`RunView`
makes sure the runs ``(candidate, size, every seed)`` are finished in the store, running
them through :func:`lensllm.finetune.experiment.run_experiment` if not, and returns their
mean test loss. Finished runs are read back, never repeated (a second ``lensllm select``
on the same store runs nothing new).

Cost is counted, not modelled: :meth:`RunView.cost` sums the FLOPs the store recorded for
the runs a selector paid for (every seed, every evaluation pass included). The denominator
of the cost fraction, :meth:`RunView.full_cost`, is the *training* FLOPs of fine-tuning
every candidate once on ``D*`` with the same recipe: counted on the candidate's real runs
at ``D*`` when the store has them (``full_cost_source == "measured"``), otherwise the
recipe's price of that run (``"estimated"``, see
:func:`lensllm.finetune.recipe.estimate_run_flops`): the epochs the candidate's largest
finished run trained, carried to ``D*`` by how the epochs of every candidate's runs fall
with size, times the tokens per example measured on that run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.exceptions import InputError, LensLLMError
from lensllm.store import BaseStore, RunKey, RunRecord, RunResult

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
        zero_shot: zero-shot test loss per candidate ``(C,)``, in ``loss_unit``.
        n_params: base parameter count per candidate ``(C,)``.
        ntk: NTK spectra per candidate, or None.
        paid: shared set of ``(model id, size)`` already paid for (kept across views when
            a failed candidate is dropped and the selection restarts).
        threads: torch threads per run.
        progress: receives run events (see :class:`lensllm.finetune.experiment.Progress`).
        executor_factory: builds an executor for ``prepared`` (default: local, in process).
        loss_unit: the unit of every loss the view returns: ``"nats_per_token"`` (the runs'
            test loss) or ``"nats_per_byte"`` (divided by the bytes of scored test text).
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
        loss_unit: str = "nats_per_token",
        retry_failed: bool = False,
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
        self.loss_unit = loss_unit
        self._retry_failed = retry_failed
        self._prints = {p.key.model: p.key.fingerprint for p in prepared.runs}
        self._cache: dict[RunKey, RunRecord] = {}
        self._frozen_full: list[float] | None = None
        self._frozen_horizon: float | None = None
        self._frozen_source: str | None = None
        self._frozen_estimate: float | None = None

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
        """Training FLOPs of fine-tuning every candidate once on ``D*`` (see the module
        docstring)."""
        return float(sum(self.full_run_flops(i) for i in range(self.n_models)))

    def estimated_full_cost(self) -> float:
        """What the recipe estimates for :meth:`full_cost`, even when the ``D*`` runs are
        in the store (the report sets the two side by side)."""
        if self._frozen_estimate is not None:
            return self._frozen_estimate
        return float(sum(self.full_run_flops(i, measured=False) for i in range(self.n_models)))

    @property
    def full_cost_source(self) -> str:
        """``"measured"`` when every candidate's ``D*`` run is in the store, else
        ``"estimated"``."""
        if self._frozen_source is not None:
            return self._frozen_source
        measured = all(self._measured_full(i) is not None for i in range(self.n_models))
        return "measured" if measured else "estimated"

    # ------------------------------------------------------------------ extras
    @property
    def recipe(self) -> Any:
        """The fine-tuning settings every run of this view trains with
        (:class:`lensllm.finetune.config.FinetuneConfig`)."""
        return self._prepared.config.finetune

    @property
    def store_path(self) -> Path:
        """The store file the runs are in (reopened read-only by readers after a selection,
        for example to log loss curves)."""
        return Path(self._prepared.store_path)

    @property
    def n_seeds(self) -> int:
        """Seeds per fine-tuning run (a paid ``(candidate, size)`` is one run per seed)."""
        return len(self._prepared.config.seeds)

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

    def validation_losses(self, run_id: int) -> list[tuple[int, float]]:
        """A stored run's validation losses ``(step, loss)`` in step order (the convergence
        check replays the recipe's trend check on them)."""
        return sorted((p.step, p.loss) for p in self._store.loss_points(run_id)
                      if p.split == "validation")

    @property
    def paid_runs(self) -> frozenset[tuple[str, int]]:
        """The ``(model id, size)`` runs paid for through this view (a copy)."""
        return frozenset(self._paid_keys)

    def stored_sizes(self) -> list[int]:
        """Training sizes with a finished run of some candidate in the store (same task and
        settings), any size, affordable or not; increasing."""
        runs = self._store.get_runs(status="finished", dataset=self.dataset,
                                    config_hash=self._prepared.config_hash)
        return sorted({r.key.size for r in runs if r.key.size > 0 and r.key.model in
                       self.models})

    def restricted(self, sizes: Sequence[int], target: float) -> RunView:
        """A view of the same candidates and store where only ``sizes`` are affordable and
        ``target`` is ``D*``, with its own record of paid runs (back-tests and validation
        runs use it; this view's cost is untouched)."""
        sizes = sorted(int(s) for s in sizes)
        return RunView(
            self._prepared, self._store, models=self.models, families=self.family,
            sizes=sizes, target=target, max_data_num=sizes[-1] if sizes else 0,
            zero_shot=self.zero_shot, n_params=self.n_params, ntk=self.ntk,
            threads=self._threads, progress=self._progress,
            executor_factory=self._executor_factory, loss_unit=self.loss_unit)

    def freeze(self) -> None:
        """Read everything cost and reports need from the store, so the view stays usable
        after the store is closed."""
        for i in range(self.n_models):
            self.records(i, 0)
        for m, s in list(self._paid_keys):
            self.records(m, s)
        self._frozen_full = [self.full_run_flops(i) for i in range(self.n_models)]
        self._frozen_source = self.full_cost_source
        self._frozen_estimate = self.estimated_full_cost()
        self._frozen_horizon = self.full_cost_at_horizon()

    def mean_loss(self, model: int, size: int) -> float:
        recs = [r for r in self.records(model, size) if r.status == "finished"]
        if not recs:
            raise CandidateFailed(self.models[model], f"no finished run at size {size}")
        losses = [r.result.loss(self.loss_unit) for r in recs]
        if any(v is None for v in losses):
            raise CandidateFailed(self.models[model], f"a run at size {size} has no byte "
                                                      "count for a loss per byte")
        return float(np.mean(losses))

    def flops(self, model: int | str, size: int) -> float:
        return float(sum(r.result.flops for r in self.records(model, size)
                         if r.status == "finished"))

    def full_run_flops(self, model: int, *, measured: bool = True,
                       horizon: bool = False) -> float:
        """FLOPs of fine-tuning candidate ``model`` once on ``D*``: measured when the store
        has the run (and ``measured``), else estimated from its largest finished run below
        ``D*``; scaled from the other candidates by parameter count when it has no training
        run yet. ``horizon``: an estimated run trains to the recipe's horizon (the most it
        can cost)."""
        if measured and not horizon and self._frozen_full is not None:
            return self._frozen_full[model]
        real = self._measured_full(model) if measured else None
        if real is not None:
            return real
        own = self._estimate_full(model, horizon=horizon)
        if own is not None:
            return own
        per_param = [est / self.n_params[i] for i in range(self.n_models)
                     if (est := self._estimate_full(i, horizon=horizon)) is not None]
        if per_param:
            return float(np.median(per_param) * self.n_params[model])
        return self._estimate_untrained(model, horizon=horizon)

    def full_cost_at_horizon(self) -> float:
        """The most :meth:`full_cost` can be under the recipe: every candidate's ``D*`` run
        as measured when the store has it, else trained to the recipe's horizon. Over it,
        the cost fraction's floor (before the ``D*`` runs exist, the estimated denominator
        is in practice too small; :meth:`estimate_run`)."""
        if self._frozen_horizon is not None:
            return self._frozen_horizon
        return float(sum(self.full_run_flops(i, horizon=True) for i in range(self.n_models)))

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
        return RunKey(model, self.dataset, int(size), int(seed), self._prepared.config_hash,
                      self._prints.get(model, ""))

    def _training_runs(self) -> dict[str, list[RunRecord]]:
        """The finished training runs of this experiment, by candidate (one store read)."""
        out: dict[str, list[RunRecord]] = {}
        for r in self._store.get_runs(status="finished", dataset=self.dataset,
                                      config_hash=self._prepared.config_hash):
            if r.key.size > 0 and r.key.fingerprint == self._prints.get(r.key.model, ""):
                out.setdefault(r.key.model, []).append(r)
        return out

    def _finished_training_runs(self, model: str) -> list[RunRecord]:
        return self._training_runs().get(model, [])

    def _measured_full(self, model: int) -> float | None:
        """Training FLOPs (``6 N`` per training token, evaluation passes left out) of the
        candidate's runs at ``D*``, mean over seeds; None without one."""
        if self.target != int(self.target):
            return None
        runs = [r for r in self._finished_training_runs(self.models[model])
                if r.key.size == int(self.target)]
        return (float(np.mean([6.0 * r.result.n_params * r.result.train_tokens
                               for r in runs])) if runs else None)

    def _largest_runs(self, model: int,
                      runs: dict[str, list[RunRecord]]) -> tuple[int, list[RunResult]]:
        """The candidate's largest finished training size below ``D*`` and every seed's
        result there (``(0, [])`` when it has none), from :meth:`_training_runs`."""
        below = [r for r in runs.get(self.models[model], []) if r.key.size < self.target]
        if not below:
            return 0, []
        size = max(r.key.size for r in below)
        return size, [r.result for r in below if r.key.size == size]

    def _estimate_full(self, model: int, *, horizon: bool = False) -> float | None:
        return self.estimate_run(model, int(math.ceil(self.target)), training_only=True,
                                 horizon=horizon)

    def estimate_run(self, model: int, size: int, *, training_only: bool = False,
                     horizon: bool = False) -> float | None:
        """The recipe's price (FLOPs) of a run of candidate ``model`` on ``size`` examples
        that was not made: as many epochs as its largest finished run trained, times the
        tokens per example measured on that run (None when it has no finished training
        run). ``training_only``: without the evaluation passes. ``horizon``: the run
        trains to the recipe's horizon instead (the most it can cost). Reads the store.

        Why as many epochs: the smallest runs train the most epochs (a few examples are
        fitted over many passes), but on every task measured the runs at ``D*`` trained
        as many epochs as the largest run below it, or more (a larger subset keeps
        teaching longer). Carrying the falling epochs of the small runs on to ``D*`` (the
        earlier rule: the slope of ``log epochs`` on ``log D``, clamped to ``[-1, 0]``)
        estimated 0.76, 0.27, 0.62 and 0.18 of the measured ``D*`` training on the zoo's
        docstrings, comments and word lists and a docstring-to-name task; the same epochs
        estimate 0.79, 0.32, 0.62 and 0.38 (``docs/running.md``). So before the ``D*``
        runs exist the cost fraction is read against a denominator that is, in practice,
        too small: the fraction is an upper estimate, and :meth:`full_cost_at_horizon`
        gives its floor."""
        from lensllm.finetune.recipe import estimate_run_flops, examples_processed

        target = size
        runs = self._training_runs()
        size, largest = self._largest_runs(model, runs)
        zero = [r for r in self.records(model, 0) if r.status == "finished"]
        if not largest or not zero:
            return None
        recipe = self.recipe
        plan = recipe.plan(size)
        test_tokens = zero[0].result.eval_tokens  # zero-shot scores the test split only
        per_example, validation, epochs = [], [], []
        for res in largest:
            evaluations = 1 + sum(1 for s in plan.eval_steps() if s <= res.steps)
            per_example.append(res.train_tokens / examples_processed(plan, res.steps))
            validation.append((res.eval_tokens - test_tokens) / evaluations)
            epochs.append(res.steps * recipe.batch_size / size)
        target_plan = recipe.plan(target)
        steps = (float(target_plan.planned_steps) if horizon
                 else float(np.mean(epochs)) * target / recipe.batch_size)
        per_validation = float(np.mean(validation)) * (
            target_plan.validation_count(self._prepared.config.data.validation_size)
            / plan.validation_count(self._prepared.config.data.validation_size))
        return estimate_run_flops(
            target_plan, n_params=largest[0].n_params,
            tokens_per_example=float(np.mean(per_example)), steps=steps,
            validation_tokens=per_validation, test_tokens=test_tokens,
            training_only=training_only)

    def _estimate_untrained(self, model: int, *, horizon: bool = False) -> float:
        """No training run anywhere (zero-shot-only methods): tokens per example from the
        zero-shot evaluation of the test split, training to the recipe's guaranteed epochs
        plus its patience (the least a plateau-stopped run trains), or to its horizon."""
        from lensllm.finetune.recipe import estimate_run_flops

        (rec,) = self.records(model, 0) or (None,)
        if rec is None or rec.status != "finished":
            return float("nan")
        config = self._prepared.config
        plan = config.finetune.plan(int(math.ceil(self.target)))
        per_example = rec.result.eval_tokens / config.data.test_size
        return estimate_run_flops(
            plan, n_params=rec.result.n_params, tokens_per_example=per_example,
            steps=(plan.planned_steps if horizon
                   else plan.guaranteed_steps + plan.patience_steps),
            validation_tokens=0.0, test_tokens=0.0, training_only=True)

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
            run_experiment(prepared, self._store, executor=executor, progress=self._progress,
                           retry_failed=self._retry_failed)
        for m, s in pairs:
            for rec in self.records(m, s):
                if rec.status != "finished":
                    reason = (rec.error or f"run ended {rec.status}").strip().splitlines()[0]
                    raise CandidateFailed(self.models[m], reason)
            self._paid_keys.add((self.models[m], s))
