"""Stages 1 to 4 of ``lensllm select``, each passing one :class:`CandidateRecord` per model.

1. :func:`resolve_candidates`: every candidate id is resolved (configs only); one that
   cannot be is *failed* with its reason and the others go on. :func:`skip_large` then
   *skips* the candidates above ``[selection] max_params`` (parameters counted from
   configs or GGUF headers, no weights loaded), before any run is paid.
2. :func:`zero_shot`: a size-0 run per candidate (the free ``D = 0`` point, and the check
   that the model loads and runs on the task). A failure fails that candidate.
3. :func:`add_spectra`: NTK features per candidate (:mod:`lensllm.pipeline.ntk_features`).
   A storage error (the store or its disk failing, :func:`is_storage_error`) is never a
   failed candidate: it stops the selection with one line.
4. :func:`select`: the configured selector on a :class:`~lensllm.pipeline.view.RunView`; the
   runs it asks for are executed (or read from the store). If a run of a candidate fails,
   that candidate is dropped and the selector starts again on the others; finished runs are
   not repeated, so a restart costs only the selector's own arithmetic.

A failed run is missing data, and a selector cannot rank a candidate on data it asked for
and did not get (a fit without that point would be a different, unasked-for protocol), so
the candidate is dropped with the failed run's reason; the others are selected exactly as
in an experiment without it (their runs and the selector's arithmetic do not depend on it).
A failed run stays failed in the store: a later ``select`` reports the same reason without
retrying, unless ``--retry-failed``.
"""

from __future__ import annotations

import dataclasses
import errno
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lensllm.exceptions import ConfigError, InputError, LensLLMError, StoreError
from lensllm.finetune.config import Candidate
from lensllm.pipeline.config import SelectConfig
from lensllm.pipeline.view import CandidateFailed, RunView
from lensllm.selection import NotApplicable

__all__ = ["CandidateRecord", "Failures", "add_spectra", "check_ntk_pool", "choose_loss_unit",
           "grid_note", "is_storage_error", "resolve_candidates", "select", "skip_large",
           "zero_shot"]


@dataclass
class CandidateRecord:
    """One candidate (:class:`lensllm.finetune.config.Candidate`, the one class of a
    candidate) with what the stages measured of it.

    Attributes:
        candidate: the configured candidate (model id and family).
        zero_shot: zero-shot test loss in nats per token (stage 2).
        n_params: base parameter count (stage 2).
        spectrum: NTK spectrum (stage 3), None when NTK features are off.
        zero_shot_result: the zero-shot run's result (stage 2): its scored tokens and bytes
            tell whether the candidates' tokenizers differ.
    """

    candidate: Candidate
    zero_shot: float = float("nan")
    n_params: float = float("nan")
    spectrum: Any = None
    zero_shot_result: Any = None

    @property
    def model(self) -> str:
        """The model id."""
        return self.candidate.model

    @property
    def family(self) -> str:
        """The family name."""
        return self.candidate.family


class Failures(list):
    """``(model id, reason)`` of failed candidates; :meth:`add` also logs the failure."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__()
        self.say = say

    def add(self, model: str, reason: str, suffix: str = "") -> None:
        self.append((model, reason))
        self.say(f"candidate {model} failed: {reason}{suffix}")

    def check_alive(self, alive: list) -> None:
        """Raise if no candidate is left."""
        if not alive:
            raise InputError("every candidate failed: " +
                             "; ".join(f"{m}: {r}" for m, r in self))


def resolve_candidates(config: SelectConfig, failures: Failures) -> tuple:
    """The experiment's candidate configs whose ids resolve (the others are failed)."""
    from lensllm.finetune.models import resolve_model

    ok = []
    for cand in config.experiment.candidates:
        try:
            resolve_model(cand.model)
            ok.append(cand)
        except LensLLMError as exc:
            failures.add(cand.model, str(exc).splitlines()[0])
    failures.check_alive(ok)
    return tuple(ok)


def skip_large(config: SelectConfig, candidates: tuple, failures: Failures
               ) -> tuple[tuple, list[tuple[str, int, str]]]:
    """The candidates within ``[selection] max_params``, and ``(model id, parameters,
    reason)`` of those skipped; nothing is skipped without a limit.

    Raises:
        InputError: every candidate is above the limit.
    """
    limit = config.selection.max_params
    if limit is None:
        return candidates, []
    from lensllm.finetune.models import parameter_count

    ok, skipped = [], []
    for cand in candidates:
        n = parameter_count(cand.model)
        if n <= limit:
            ok.append(cand)
            continue
        reason = f"{n:,} parameters > max_params {limit:.4g}"
        skipped.append((cand.model, n, reason))
        failures.say(f"candidate {cand.model} skipped: {reason}")
    if not ok:
        raise InputError(f"`selection.max_params` = {limit:.4g} skips every candidate "
                         f"(smallest: {min(n for _, n, _ in skipped):,} parameters)")
    return tuple(ok), skipped


def zero_shot(prepared: Any, store: Any, executor: Any, progress: Any,
              failures: Failures, retry_failed: bool = False) -> tuple[list[CandidateRecord], float]:
    """Run the zero-shot evaluations; the candidates that passed and their FLOPs."""
    from lensllm.finetune.experiment import run_experiment

    runs = tuple(p for p in prepared.runs if p.key.size == 0)
    failures.say(f"zero-shot evaluation of {len(runs)} candidate(s)")
    run_experiment(dataclasses.replace(prepared, runs=runs), store, executor=executor,
                   progress=progress, retry_failed=retry_failed)
    alive, flops = [], 0.0
    for p in runs:
        rec = store.get_run(p.key)
        if rec is None or rec.status != "finished":
            failures.add(p.key.model, ((rec.error if rec else None) or "not run")
                         .strip().splitlines()[0])
            continue
        alive.append(CandidateRecord(Candidate(p.key.model, p.family), rec.result.test_loss,
                                     rec.result.base_params, zero_shot_result=rec.result))
        flops += rec.result.flops
    return alive, flops


def choose_loss_unit(setting: str, candidates: list[CandidateRecord]) -> str:
    """The unit losses are ranked in: ``"nats_per_token"`` or ``"nats_per_byte"``.

    Every candidate is scored on the same test text. Its zero-shot run counted the scored
    tokens and the bytes of that text; when the token counts differ, the tokenizers cut the
    text differently and losses per token are not comparable, so ``"auto"`` ranks per byte.
    When they agree, per token and per byte give the same ranking (one common factor) and
    ``"auto"`` keeps per token.

    Raises:
        InputError: per byte is needed or asked for but a candidate's zero-shot run has no
            byte count (a store from before byte counts) or truncated its scored test text.
    """
    results = [c.zero_shot_result for c in candidates]
    counts = {r.test_scored_tokens for r in results}
    if setting == "token" or (setting == "auto" and len(counts) <= 1):
        return "nats_per_token"
    why = ("the candidates' tokenizers differ (scored test tokens: "
           f"{', '.join(str(n) for n in sorted(counts, key=str))})" if setting == "auto"
           else "`selection.loss_unit` is 'byte'")
    for cand, result in zip(candidates, results):
        if result.test_loss_per_byte is None:
            raise InputError(f"{why}, so losses must be compared per byte, but the zero-shot "
                             f"run of {cand.model} has no byte count (a store written before "
                             "byte counts); use a new store")
        if result.test_truncated:
            raise InputError(f"{why}, so losses must be compared per byte, but the zero-shot "
                             f"run of {cand.model} truncated the scored text of "
                             f"{result.test_truncated} test examples; raise "
                             "`finetune.max_length`")
    return "nats_per_byte"


def add_spectra(candidates: list[CandidateRecord], prepared: Any, config: SelectConfig, store: Any,
                threads: int, failures: Failures) -> tuple[list[CandidateRecord], float]:
    """NTK features of each candidate (when enabled); the survivors and the FLOPs spent."""
    if not config.ntk.enabled:
        return candidates, 0.0
    from lensllm.pipeline.ntk_features import candidate_spectrum

    failures.say(f"NTK features ({config.ntk.n} probe examples, params={config.ntk.params})")
    alive, flops = [], 0.0
    for cand in candidates:
        try:
            cand.spectrum = candidate_spectrum(cand.model, prepared, config.ntk, store,
                                               threads=threads)
        except Exception as exc:  # noqa: BLE001 - a candidate failing must not stop the rest
            if is_storage_error(exc):  # the store's fault, not the candidate's: stop
                raise
            first = (str(exc).splitlines() or [""])[0]  # a bare MemoryError has no text
            failures.add(cand.model, f"NTK features: {type(exc).__name__}: {first}".rstrip(": "))
            continue
        alive.append(cand)
        flops += float(cand.spectrum.meta.get("flops", 0.0))
    return alive, flops


#: ``errno`` values of an :class:`OSError` that are the machine's storage failing (a full
#: disk, a quota, an I/O error, a read-only filesystem), never a candidate's fault.
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the store or the disk failing (a :class:`StoreError`, any SQLite
    error, an :class:`OSError` of a full disk, a quota, I/O or a read-only filesystem).
    Such an error stops the command with one line; catching it as a failed candidate
    would rank the others on a store that is not there."""
    if isinstance(exc, (StoreError, sqlite3.Error)):
        return True
    return isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS


def check_ntk_pool(config: SelectConfig, prepared: Any) -> None:
    """Refuse, before any run, ``ntk.n`` larger than the training pool it is drawn from
    (it would silently shrink to the pool while every message showed ``ntk.n``)."""
    if not config.ntk.enabled:
        return
    from lensllm.finetune.data import split_indices

    data = prepared.config.data
    pool = len(split_indices(len(prepared.task), n_validation=data.validation_size,
                             n_test=data.test_size, seed=data.split_seed).train)
    if config.ntk.n > pool:
        raise ConfigError(f"`ntk.n` = {config.ntk.n} probe examples, but the training pool "
                          f"holds {pool} (the data's {len(prepared.task)} examples less "
                          f"validation_size and test_size); lower `ntk.n` to at most {pool}")


def grid_note(config: SelectConfig, n_candidates: int) -> str | None:
    """A note, before any run, when the selector prunes but the sizes within the budget
    leave it no rung to prune on (every candidate then pays for every size)."""
    first_rung = getattr(config.selection.selector, "first_rung", None)
    n = len(config.affordable_sizes)
    if first_rung is None or n_candidates < 2 or first_rung(n) < n - 1:
        return None
    need = next(m for m in range(n + 1, n + 10) if first_rung(m) < m - 1)
    return (f"note: {config.selection.method} has {n} size(s) within the budget "
            f"(max_data {config.max_data:g}), too few to stop any candidate early: every "
            f"candidate pays for every size; with {need} or more (add smaller sizes to "
            f"[experiment] sizes) it can prune")


def select(config: SelectConfig, candidates: list[CandidateRecord],
           make_view: Callable[..., RunView],
           failures: Failures) -> tuple[RunView, Any]:
    """Run the selector, dropping candidates whose runs fail; the final view and result."""
    method = config.selection.method
    selector = config.selection.selector
    failures.say(f"selecting with {method} (budget {config.max_data:g} examples, "
                 f"D* = {config.target:g})")
    alive = list(candidates)
    while True:
        view = make_view(alive)
        try:
            return view, selector.select(view)
        except NotApplicable as exc:  # the method, not a candidate: nothing to rank with
            raise InputError(
                f"`selection.method` {method!r} cannot rank these candidates: {exc} "
                f"(selection.max_data = {config.max_data:g} admits sizes "
                f"{', '.join(f'{s:g}' for s in view.sizes) or 'none'}); raise "
                "`selection.max_data`, add smaller `experiment.sizes`, or choose another "
                "method") from None
        except CandidateFailed as exc:
            failures.add(exc.model, exc.reason, "; selecting among the others")
            alive = [c for c in alive if c.model != exc.model]
            try:
                failures.check_alive(alive)
            except InputError as err:
                raise err from None


def view_factory(prepared: Any, store: Any, config: SelectConfig, *, threads: int,
                 progress: Any, executor_factory: Any,
                 loss_unit: str = "nats_per_token", retry_failed: bool = False
                 ) -> Callable[[list[CandidateRecord]], RunView]:
    """``make_view(candidates)``: a :class:`RunView` over the candidates, in ``loss_unit``,
    sharing one set of paid runs across the views of a selection that restarts."""
    paid: set[tuple[str, int]] = set()

    def make_view(candidates: list[CandidateRecord]) -> RunView:
        return RunView(
            prepared, store, models=[c.model for c in candidates],
            families=[c.family for c in candidates], sizes=config.affordable_sizes,
            target=config.target, max_data_num=config.max_data, loss_unit=loss_unit,
            zero_shot=np.array([c.zero_shot_result.loss(loss_unit) for c in candidates]),
            n_params=np.array([c.n_params for c in candidates], float),
            ntk=[c.spectrum for c in candidates] if config.ntk.enabled else None, paid=paid,
            threads=threads, progress=progress, executor_factory=executor_factory,
            retry_failed=retry_failed)

    return make_view
