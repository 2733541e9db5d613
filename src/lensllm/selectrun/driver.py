"""The ``lensllm select`` pipeline: check candidates, zero-shot, NTK, select, fit, cost.

1. Every candidate id is resolved (configs only); one that cannot be is *failed* with its
   reason and the others go on.
2. Zero-shot evaluation of every candidate (a size-0 run: the free ``D = 0`` point, and the
   check that the model loads and runs on the task). A failure fails that candidate.
3. NTK features per candidate (:mod:`lensllm.selectrun.features`), when enabled.
4. The configured selector runs on a :class:`~lensllm.selectrun.view.RunView`; the runs it
   asks for are executed (or read from the store). If a run of a candidate fails, that
   candidate is dropped and the selector starts again on the others; finished runs are not
   repeated, so a restart costs only the selector's own arithmetic.
5. For the report, the laws (power, rectified, LensLLM with ``t`` fitted and with ``t``
   fixed) are fitted to each candidate's observed points.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.exceptions import InputError, LensLLMError
from lensllm.selectrun.config import SelectConfig
from lensllm.selectrun.view import CandidateFailed, RunView

__all__ = ["LAW_LABELS", "LawCurves", "SelectOutcome", "fit_laws", "run_select"]

#: Laws fitted for the report and their labels.
LAW_LABELS = {"power": "power law", "rectified": "rectified law",
              "lens_fit_t": "LensLLM law (t fitted)", "lens_fixed_t": "LensLLM law (t = steps)"}


@dataclass
class LawCurves:
    """One law fitted to each candidate's observed points (None where it could not be).

    Attributes:
        name: key of :data:`LAW_LABELS`.
        predicted: ``L(D*)`` per candidate ``(C,)`` (NaN where not fitted).
        curves: per candidate, ``curve(d) -> L(d)`` or None.
        transition: per candidate, the end of the pre-power phase (NaN if none).
        notes: per candidate, why it was not fitted ("" when fitted).
    """

    name: str
    predicted: np.ndarray
    curves: list[Callable[[np.ndarray], np.ndarray] | None]
    transition: np.ndarray
    notes: list[str]


@dataclass
class SelectOutcome:
    """Everything ``lensllm select`` found.

    Attributes:
        config: the config.
        view: the final view (surviving candidates).
        selection: the selector's result on it.
        failed: ``(model id, reason)`` of failed candidates.
        laws: law fits per law name, for the report.
        observed: per candidate, ``(sizes, losses)`` of the paid runs ``(k,)`` each.
        ntk_flops, zero_shot_flops: compute spent outside fine-tuning.
        wall_time: seconds.
        ran: runs executed by this invocation (0 when everything came from the store).
    """

    config: SelectConfig
    view: RunView
    selection: Any
    failed: list[tuple[str, str]]
    laws: dict[str, LawCurves] = field(default_factory=dict)
    observed: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    ntk_flops: float = 0.0
    zero_shot_flops: float = 0.0
    wall_time: float = 0.0
    ran: int = 0

    @property
    def cost_fraction(self) -> float:
        return self.view.cost() / self.view.full_cost()


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
            self.log(f"  run {Path(k.model).name} {what}: test loss {result.test_loss:.4f} "
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
) -> SelectOutcome:
    """Run the whole selection (see the module docstring).

    Args:
        config: a validated config.
        store_path: overrides the config's store.
        threads: torch threads per run (default: the config's, else 1).
        log: receives progress lines.
        executor_factory: builds the run executor (default: in process).

    Returns:
        The outcome; ``failed`` lists the candidates that failed.

    Raises:
        LensLLMError: a bad config, or every candidate failed.
    """
    from lensllm.finetune.experiment import prepare_experiment, run_experiment
    from lensllm.finetune.models import resolve_model
    from lensllm.selection import get_selector
    from lensllm.store import open_store

    start = time.perf_counter()
    quiet_transformers()
    say = log or (lambda s: None)
    threads = threads or config.experiment.threads or 1
    failed: list[tuple[str, str]] = []
    ok = []
    for cand in config.experiment.candidates:
        try:
            resolve_model(cand.model)
            ok.append(cand)
        except LensLLMError as exc:
            failed.append((cand.model, str(exc).splitlines()[0]))
            say(f"candidate {cand.model} failed: {failed[-1][1]}")
    if not ok:
        raise InputError("every candidate failed: " + "; ".join(f"{m}: {r}" for m, r in failed))
    experiment = dataclasses.replace(config.experiment, candidates=tuple(ok), zero_shot=True)
    prepared = prepare_experiment(experiment, store_path=store_path)
    families = {p.key.model: p.family for p in prepared.runs}
    counter = _RunCounter(log=say)
    import torch

    torch.set_num_threads(threads)
    store = open_store(prepared.store_path)
    try:
        # 2. zero-shot (also the load check)
        zs_runs = tuple(p for p in prepared.runs if p.key.size == 0)
        say(f"zero-shot evaluation of {len(zs_runs)} candidate(s)")
        run_experiment(dataclasses.replace(prepared, runs=zs_runs), store,
                       executor=_executor(prepared, executor_factory, threads), progress=counter)
        alive, zero_shot, n_params, zs_flops = [], [], [], 0.0
        for p in zs_runs:
            rec = store.get_run(p.key)
            if rec is None or rec.status != "finished":
                reason = ((rec.error if rec else None) or "not run").strip().splitlines()[0]
                failed.append((p.key.model, reason))
                say(f"candidate {p.key.model} failed: {reason}")
                continue
            alive.append(p.key.model)
            zero_shot.append(rec.result.test_loss)
            n_params.append(rec.result.base_params)
            zs_flops += rec.result.flops
        # 3. NTK
        spectra: dict[str, Any] = {}
        ntk_flops = 0.0
        if config.ntk.enabled:
            from lensllm.selectrun.features import candidate_spectrum

            say(f"NTK features ({config.ntk.n} probe examples, params={config.ntk.params})")
            for model in alive:
                try:
                    spec = candidate_spectrum(model, prepared, config.ntk, store, threads=threads)
                except Exception as exc:  # noqa: BLE001 - a candidate failing must not stop the rest
                    reason = f"NTK features: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                    failed.append((model, reason))
                    say(f"candidate {model} failed: {reason}")
                    i = alive.index(model)
                    for lst in (alive, zero_shot, n_params):
                        del lst[i]
                    continue
                spectra[model] = spec
                ntk_flops += float(spec.meta.get("flops", 0.0))
        if not alive:
            raise InputError("every candidate failed: " +
                             "; ".join(f"{m}: {r}" for m, r in failed))
        # 4. select, dropping candidates whose runs fail
        paid: set[tuple[str, int]] = set()
        options = {**_selector_class(config.selection.method).report_options,
                   **config.selection.options}
        selector = get_selector(config.selection.method, **options)
        say(f"selecting with {config.selection.method} (budget {config.max_data:g} examples, "
            f"D* = {config.target:g})")
        while True:
            view = RunView(
                prepared, store, models=alive, families=[families[m] for m in alive],
                sizes=config.affordable_sizes, target=config.target,
                max_data_num=config.max_data, zero_shot=np.array(zero_shot),
                n_params=np.array(n_params, float),
                ntk=[spectra[m] for m in alive] if config.ntk.enabled else None, paid=paid,
                threads=threads, progress=counter, executor_factory=executor_factory)
            try:
                selection = selector.select(view)
                break
            except CandidateFailed as exc:
                failed.append((exc.model, exc.reason))
                say(f"candidate {exc.model} failed: {exc.reason}; selecting among the others")
                i = alive.index(exc.model)
                for lst in (alive, zero_shot, n_params):
                    del lst[i]
                if not alive:
                    raise InputError("every candidate failed: " +
                                     "; ".join(f"{m}: {r}" for m, r in failed)) from None
        outcome = SelectOutcome(config, view, selection, failed, ntk_flops=ntk_flops,
                                zero_shot_flops=zs_flops)
        outcome.observed = [_observed(view, i) for i in range(view.n_models)]
        outcome.laws = fit_laws(view, outcome.observed)
        outcome.ran = counter.ran
        view.freeze()
        outcome.wall_time = time.perf_counter() - start
        return outcome
    finally:
        store.close()


def quiet_transformers() -> None:
    """Silence transformers' per-load progress bars and advisory warnings (our own progress
    lines say what runs)."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")


def _executor(prepared, factory, threads):
    from lensllm.finetune.experiment import LocalExecutor

    return factory(prepared) if factory else LocalExecutor(prepared, threads=threads)


def _selector_class(name: str):
    from lensllm.selection import REGISTRY

    return REGISTRY[name]


def _observed(view: RunView, i: int) -> tuple[np.ndarray, np.ndarray]:
    paid = view.paid[i]
    sizes = view.sizes[paid]
    return sizes, np.array([view.mean_loss(i, int(s)) for s in sizes])


def _curve_of(batch) -> Callable[[np.ndarray], np.ndarray]:
    """``d -> L(d)`` of a one-curve fit."""
    return lambda d: batch.predict(np.asarray(d, float))[0]


def fit_laws(view: Any, observed: list[tuple[np.ndarray, np.ndarray]], *,
             t_fixed: np.ndarray | None = None,
             names: Sequence[str] = tuple(LAW_LABELS)) -> dict[str, LawCurves]:
    """Fit each law to each candidate's observed points (with the zero-shot point at D = 0
    for the laws defined there) and predict ``L(D*)``.

    ``t`` of the fixed-``t`` LensLLM law is, per candidate, the early-stopping step of its
    largest observed run (the step whose weights were kept), unless ``t_fixed`` is given.

    Args:
        view: a view (``n_models``, ``models``, ``zero_shot``, ``ntk``, ``target``, and
            ``steps`` unless ``t_fixed`` is given).
        observed: per candidate, ``(sizes, losses)`` of its observed runs.
        t_fixed: per candidate ``t`` for the fixed-``t`` LensLLM law.
        names: which laws (keys of :data:`LAW_LABELS`).

    Returns:
        ``{law name: LawCurves}``; a law that cannot be fitted to a candidate (too few
        points, no NTK features) has NaN there and the reason in ``notes``.
    """
    from lensllm.laws import LensLaw, PowerLaw, RectifiedLaw

    out = {}
    n = view.n_models
    for name in names:
        pred = np.full(n, np.nan)
        trans = np.full(n, np.nan)
        curves: list[Any] = [None] * n
        notes = [""] * n
        for i in range(n):
            sizes, losses = observed[i]
            d, y = np.asarray(sizes, float), np.asarray(losses, float)
            if name != "power" and view.zero_shot is not None:
                d, y = np.concatenate([[0.0], d]), np.concatenate([[view.zero_shot[i]], y])
            kwargs: dict[str, Any] = {}
            if name == "power":
                law = PowerLaw()
            elif name == "rectified":
                law = RectifiedLaw()
            else:
                if view.ntk is None:
                    notes[i] = "no NTK features"
                    continue
                kwargs["spectra"] = [view.ntk[i]]
                if name == "lens_fit_t":
                    law = LensLaw(fit_t=True)
                else:
                    law = LensLaw(fit_t=False)
                    if t_fixed is not None:
                        t = float(t_fixed[i])
                    elif len(sizes):
                        t = view.steps(i, int(sizes[-1]), "early_stop_step")
                    else:
                        t = float("nan")
                    kwargs["t"] = [t]
            if d.size < law.n_params:
                notes[i] = f"{d.size} points < {law.n_params} parameters"
                continue
            try:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    batch = law.fit_many(d, y[None, :], names=[view.models[i]], **kwargs)
            except LensLLMError as exc:
                notes[i] = str(exc).splitlines()[0]
                continue
            pred[i] = float(batch.predict([view.target])[0, 0])
            curves[i] = _curve_of(batch)
            if batch.transition is not None:
                trans[i] = float(batch.transition[0])
        out[name] = LawCurves(name, pred, curves, trans, notes)
    return out
