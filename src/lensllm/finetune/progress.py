"""Live progress of ``lensllm run``: runs done, the current loss, an ETA.

A rich progress bar when the output is a terminal, one plain line per event otherwise (logs,
CI, pipes), so the same command is readable in both.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from lensllm.exceptions import LensLLMError
from lensllm.store import RunRecord, RunResult

__all__ = ["LineProgress", "RichProgress", "make_progress"]


def _describe(record: RunRecord) -> str:
    key = record.key
    what = "zero-shot" if key.size == 0 else f"size={key.size} seed={key.seed}"
    return f"{key.model} {what}"


def _converged(record: RunRecord, result: RunResult) -> bool:
    """The recipe's verdict (:meth:`TrainingPlan.converged`) from the run's stored settings;
    a best step before the last where those cannot be read back."""
    from lensllm.finetune.config import FinetuneConfig

    try:
        plan = FinetuneConfig(**record.config["finetune"]).plan(record.key.size)
    except (KeyError, TypeError, ValueError, LensLLMError):
        return result.early_stop_step < result.steps
    return plan.converged(result.early_stop_step, result.steps)


def _steps(record: RunRecord, result: RunResult) -> str:
    """Where a run stopped: its best step of its steps, flagged when the plateau rule did not
    end it (still improving at its end: not converged)."""
    if result.steps == 0:
        return "zero-shot"
    text = f"best step {result.early_stop_step} of {result.steps}"
    if not _converged(record, result):
        text += ", NOT converged: still improving at its end"
    return text


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _Counter:
    """Counts and the ETA both displays share."""

    def begin(self, total: int, finished: int, capacity: int) -> None:
        self.total, self.done, self.capacity = total, finished, max(1, capacity)
        self.ran_here, self.failed = 0, 0
        self.started = time.perf_counter()

    def eta(self) -> str:
        if self.ran_here == 0:
            return "?"
        per_run = (time.perf_counter() - self.started) / self.ran_here
        remaining = self.total - self.done - self.failed
        return _fmt_seconds(per_run * remaining)


class LineProgress(_Counter):
    """One line per finished, failed or waiting event; nothing per step."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last_wait = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, total: int, finished: int, capacity: int) -> None:
        super().begin(total, finished, capacity)
        left = total - finished
        self._print(f"{total} runs planned, {finished} already finished, {left} to run")

    def run_started(self, record: RunRecord) -> None:
        pass

    def step(self, step: int, total_steps: int, loss: float) -> None:
        pass

    def run_finished(self, record: RunRecord, result: RunResult) -> None:
        self.done += 1
        self.ran_here += 1
        self._print(
            f"[{self.done}/{self.total}] {_describe(record)}: test loss "
            f"{result.test_loss:.4f}, {_steps(record, result)}, {result.wall_time:.1f}s "
            f"(ETA {self.eta()})"
        )

    def run_failed(self, record: RunRecord, message: str) -> None:
        self.failed += 1
        self._print(f"[failed] {_describe(record)}: {message}")

    def waiting(self, held_elsewhere: int) -> None:
        now = time.perf_counter()
        if now - self._last_wait > 10:
            self._last_wait = now
            self._print(f"waiting for {held_elsewhere} run(s) held by other processes")

    def end(self) -> None:
        pass


class RichProgress(_Counter):
    """A rich progress bar: runs done, the current run and its latest training loss, ETA."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), transient=False,
        )
        self._task = None
        self._current = ""

    def begin(self, total: int, finished: int, capacity: int) -> None:
        super().begin(total, finished, capacity)
        self._progress.start()
        self._task = self._progress.add_task(
            "runs", total=total, completed=finished, status="starting"
        )

    def _update(self, status: str) -> None:
        self._progress.update(self._task, completed=self.done, status=status)

    def run_started(self, record: RunRecord) -> None:
        self._current = _describe(record)
        self._update(f"{self._current}  ETA {self.eta()}")

    def step(self, step: int, total_steps: int, loss: float) -> None:
        self._update(
            f"{self._current} step {step} (horizon {total_steps}) loss {loss:.3f}  "
            f"ETA {self.eta()}"
        )

    def run_finished(self, record: RunRecord, result: RunResult) -> None:
        self.done += 1
        self.ran_here += 1
        self._progress.console.print(
            f"{_describe(record)}: test loss {result.test_loss:.4f} ({_steps(record, result)}, "
            f"{result.wall_time:.1f}s)"
        )
        self._update(f"ETA {self.eta()}")

    def run_failed(self, record: RunRecord, message: str) -> None:
        self.failed += 1
        self._progress.console.print(f"[red]failed[/red] {_describe(record)}: {message}")

    def waiting(self, held_elsewhere: int) -> None:
        self._update(f"waiting for {held_elsewhere} run(s) held by other processes")

    def end(self) -> None:
        self._progress.stop()


def make_progress(stream: TextIO | None = None) -> LineProgress | RichProgress:
    """A rich display on a terminal (when rich is installed), plain lines otherwise."""
    stream = stream or sys.stdout
    if stream.isatty():
        try:
            return RichProgress()
        except ImportError:
            pass
    return LineProgress(stream)
