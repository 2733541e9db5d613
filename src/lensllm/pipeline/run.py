"""``lensllm select`` from end to end: the stages of :mod:`lensllm.pipeline.stages`, then
the laws of :mod:`lensllm.pipeline.laws` for the report.

1. resolve every candidate id (and skip those above ``max_params``); 2. zero-shot evaluation; 3. NTK features (when enabled);
4. the selector on a run-backed view (failed candidates dropped, selection restarted);
5. the report's laws fitted to each candidate's observed points.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.outputs.numbers import loss_text
from lensllm.pipeline import stages
from lensllm.pipeline.config import SelectConfig
from lensllm.pipeline.convergence import PointConvergence, convergence, convergence_text
from lensllm.pipeline.laws import LawCurves, fit_laws
from lensllm.pipeline.predictive import calibrate_outcome, decide, joint_ties
from lensllm.pipeline.rungs import RunLadder, run_ladder
from lensllm.pipeline.trust import Trust, assess_trust, validate_runs
from lensllm.pipeline.view import RunView

__all__ = ["SelectOutcome", "run_select"]


@dataclass
class SelectOutcome:
    """Everything ``lensllm select`` found.

    Attributes:
        config: the config.
        view: the final view (surviving candidates).
        selection: the selector's result on it.
        failed: ``(model id, reason)`` of failed candidates.
        skipped: ``(model id, parameters, reason)`` of candidates above
            ``[selection] max_params``, skipped before any run.
        laws: law fits per law name, for the report.
        observed: per candidate, ``(sizes, losses)`` of the paid runs ``(k,)`` each.
        ntk_flops, zero_shot_flops: compute spent outside fine-tuning.
        wall_time: seconds.
        ran: runs executed by this invocation (0 when everything came from the store).
        ladder: runs paid per candidate and size, where each stopped, and the cost that
            stopping early saved (:mod:`lensllm.pipeline.rungs`).
        trust: back-tests, truth checks and ties (:mod:`lensllm.pipeline.trust`).
        convergence: per paid run, whether it converged
            (:mod:`lensllm.pipeline.convergence`).
        predictive: the selector's joint predictive distribution of ``L(D*)``
            (:mod:`lensllm.pipeline.predictive`); the selection carries its intervals.
        decisive: the run that would decide the best per FLOP when none is clear.
        calibration_runs, calibration_flops: runs the calibration's back-tests paid for
            that the selection had not, and their FLOPs.
    """

    config: SelectConfig
    view: RunView
    selection: Any
    failed: list[tuple[str, str]]
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    laws: dict[str, LawCurves] = field(default_factory=dict)
    observed: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    ntk_flops: float = 0.0
    zero_shot_flops: float = 0.0
    wall_time: float = 0.0
    ran: int = 0
    ladder: RunLadder | None = None
    trust: Trust | None = None
    convergence: list[PointConvergence] = field(default_factory=list)
    predictive: Any = None
    decisive: Any = None
    calibration_runs: int = 0
    calibration_flops: float = 0.0

    @property
    def extra_flops(self) -> float:
        """FLOPs of the smaller runs the back-tests and the calibration paid for that the
        selection itself did not."""
        trust = self.trust.extra_flops if self.trust is not None else 0.0
        return trust + self.calibration_flops

    @property
    def total_cost_flops(self) -> float:
        """Every FLOP the selection paid: its fine-tuning runs (training and every
        evaluation pass), zero-shot evaluations, NTK features, and the runs its
        calibration and its back-tests paid for."""
        return self.view.cost() + self.zero_shot_flops + self.ntk_flops + self.extra_flops

    @property
    def cost_fraction(self) -> float:
        """:attr:`total_cost_flops` over the training FLOPs of fine-tuning every candidate
        on ``D*`` with the same recipe (:meth:`RunView.full_cost`)."""
        return self.total_cost_flops / self.view.full_cost()

    @property
    def cost_fraction_at_least(self) -> float:
        """:attr:`total_cost_flops` over the most fine-tuning every candidate on ``D*``
        can cost under the recipe (:meth:`RunView.full_cost_at_horizon`: the ``D*`` runs
        not in the store trained to the horizon): the floor of :attr:`cost_fraction`."""
        return self.total_cost_flops / self.view.full_cost_at_horizon()

    @property
    def fine_tuning_cost_fraction(self) -> float:
        """The selection's fine-tuning runs alone over the same denominator."""
        return self.view.cost() / self.view.full_cost()


def loss_words(result: Any) -> str:
    """A run's test loss with its unit, per token and (when the byte count is known) per
    byte, so progress lines read like the ranking whichever unit it uses."""
    text = f"{loss_text(result.test_loss)} nats/token"
    per_byte = getattr(result, "test_loss_per_byte", None)
    return text + (f" = {loss_text(per_byte)} nats/byte" if per_byte is not None else "")


class _RunCounter:
    """Progress wrapper counting the runs executed here, forwarding events."""

    def __init__(self, inner: Any = None, log: Callable[[str], None] | None = None) -> None:
        self.inner, self.log, self.ran = inner, log, 0

    def begin(self, *a): pass  # noqa: E704
    def run_started(self, record): pass  # noqa: E704
    def step(self, *a): pass  # noqa: E704
    def waiting(self, n): pass  # noqa: E704
    def end(self): pass  # noqa: E704

    def run_finished(self, record, result) -> None:
        self.ran += 1
        if self.log:
            k = record.key
            what = "zero-shot" if k.size == 0 else f"D={k.size} seed={k.seed}"
            self.log(f"  run {Path(k.model).name} {what}: test loss {loss_words(result)} "
                     f"({result.steps} steps, {result.wall_time:.1f} s)")

    def run_failed(self, record, message) -> None:
        if self.log:
            self.log(f"  run {Path(record.key.model).name} size={record.key.size} failed: "
                     f"{message}")


def run_select(
    config: SelectConfig,
    *,
    store_path: str | Path | None = None,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    executor_factory: Callable[[Any], Any] | None = None,
    validate: tuple[int, int] | None = None,
    retry_failed: bool = False,
) -> SelectOutcome:
    """Run the whole selection (see the module docstring).

    Args:
        config: a validated config.
        store_path: overrides the config's store.
        threads: torch threads per run (default: the config's, else 1).
        log: receives progress lines.
        executor_factory: builds the run executor (default: in process).
        validate: ``(size, top)``: also pay for runs at ``size`` (above the budget) for the
            ``top`` best-ranked candidates, so that the truth check reads them.
        retry_failed: run again the runs that failed in an earlier call (default: their
            candidates fail again with the stored reason).

    Returns:
        The outcome; ``failed`` lists the candidates that failed.

    Raises:
        LensLLMError: a bad config, or every candidate failed.
    """
    import torch

    from lensllm.finetune.experiment import prepare_experiment
    from lensllm.finetune.models import quiet_transformers
    from lensllm.store import open_store

    start = time.perf_counter()
    quiet_transformers()
    failures = stages.Failures(log or (lambda s: None))
    threads = threads or config.experiment.threads or 1
    ok, skipped = stages.skip_large(config, stages.resolve_candidates(config, failures),
                                    failures)
    experiment = dataclasses.replace(config.experiment, candidates=ok, zero_shot=True)
    prepared = prepare_experiment(experiment, store_path=store_path)
    stages.check_ntk_pool(config, prepared)
    note = stages.grid_note(config, len(ok))
    if note:
        failures.say(note)
    counter = _RunCounter(log=failures.say)
    torch.set_num_threads(threads)
    store = open_store(prepared.store_path)
    try:
        alive, zs_flops = stages.zero_shot(
            prepared, store, _executor(prepared, executor_factory, threads), counter, failures,
            retry_failed)
        alive, ntk_flops = stages.add_spectra(alive, prepared, config, store, threads, failures)
        failures.check_alive(alive)
        unit = stages.choose_loss_unit(config.selection.loss_unit, alive)
        failures.say(f"ranking losses in {unit.replace('_', ' ')}")
        make_view = stages.view_factory(prepared, store, config, threads=threads,
                                        progress=counter, executor_factory=executor_factory,
                                        loss_unit=unit, retry_failed=retry_failed)
        view, selection = stages.select(config, alive, make_view, failures)
        outcome = _assess(config, view, selection, failures, skipped, validate, prepared,
                          ntk_flops=ntk_flops, zero_shot_flops=zs_flops)
        outcome.ran = counter.ran
        view.freeze()
        store.check_intact()  # a ranking is never printed over a store that is gone
        outcome.wall_time = time.perf_counter() - start
        return outcome
    finally:
        store.close()


def _assess(config: SelectConfig, view: RunView, selection: Any, failures: Any, skipped: list,
            validate: tuple[int, int] | None, prepared: Any, *, ntk_flops: float,
            zero_shot_flops: float) -> SelectOutcome:
    """Everything after the selection: the calibrated predictive distribution and P(best),
    the validation runs, back-tests and ties, the laws for the report, the runs ladder and
    the convergence of every run used (a warning names the unconverged ones)."""
    selection, predictive, cal_paid = calibrate_outcome(
        view, selection, lambda: config.selection.selector, log=failures.say)
    outcome = SelectOutcome(config, view, selection, list(failures), skipped,
                            ntk_flops=ntk_flops, zero_shot_flops=zero_shot_flops,
                            predictive=predictive, decisive=decide(view, predictive))
    cal_extra = cal_paid - view.paid_runs
    outcome.calibration_runs = len(cal_extra)
    outcome.calibration_flops = float(sum(view.flops(m, s) for m, s in cal_extra))
    notes = _validate(view, selection, validate, prepared, failures.say)
    outcome.trust = assess_trust(view, selection, config.selection.selector, log=failures.say,
                                 predictive=predictive)
    outcome.trust.notes += notes
    if predictive.known:  # ties from the joint distribution, like P(best)
        outcome.trust.tied = joint_ties(predictive, selection.selected)
    outcome.observed = [_observed(view, i) for i in range(view.n_models)]
    outcome.laws = fit_laws(view, outcome.observed)
    outcome.ladder = run_ladder(view, selection)
    outcome.convergence = convergence(view)
    if any(not p.converged for p in outcome.convergence):
        failures.say("warning: " + convergence_text(outcome.convergence))
    return outcome


def _validate(view: RunView, selection: Any, validate: tuple[int, int] | None, prepared: Any,
              say: Callable[[str], None]) -> list[str]:
    """The validation runs of ``lensllm validate`` (none when ``validate`` is None)."""
    if validate is None:
        return []
    from lensllm.finetune.data import split_indices

    size, top = validate
    data = prepared.config.data
    pool = len(split_indices(len(prepared.task), n_validation=data.validation_size,
                             n_test=data.test_size, seed=data.split_seed).train)
    say(f"validation: runs at D={size} for the top {top} candidate(s)")
    return validate_runs(view, selection, size, top, pool)


def _executor(prepared, factory, threads):
    from lensllm.finetune.experiment import LocalExecutor

    return factory(prepared) if factory else LocalExecutor(prepared, threads=threads)


def _observed(view: RunView, i: int) -> tuple[np.ndarray, np.ndarray]:
    paid = view.paid[i]
    sizes = view.sizes[paid]
    return sizes, np.array([view.mean_loss(i, int(s)) for s in sizes])
