"""The ``lensllm`` command line.

Each subcommand lives in its own module under :mod:`lensllm.commands` and exposes
``register(subparsers)``; this module only assembles them and maps errors to exit codes.
Command modules import heavy dependencies (torch, transformers, matplotlib) inside their
handlers, so ``lensllm --help`` and ``lensllm bench`` start fast and work without torch.
"""

from __future__ import annotations

import os
import signal
import sys

#: Signals that stop a command the way Ctrl-C does: the runs it holds are given back and
#: it says so in one line. SIGHUP (the terminal closed) and SIGUSR1/SIGUSR2 would
#: otherwise kill the process on the spot and leave its runs ``running`` until their
#: leases expire.
STOP_SIGNALS = tuple(getattr(signal, name) for name in
                     ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
                     if hasattr(signal, name))


def _exit_quietly(signum, frame):  # nothing to clean up yet (or a second signal): no traceback
    os.write(2, b"lensllm: interrupted\n")
    os._exit(128 + signum)


if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "lensllm":
    # Run as the program (not imported by a test or a library): cover start-up from here.
    for _signum in STOP_SIGNALS:
        signal.signal(_signum, _exit_quietly)

import argparse  # noqa: E402 - the handlers above cover these imports too
import importlib  # noqa: E402
import sqlite3  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from lensllm._version import __version__  # noqa: E402
from lensllm.exceptions import LensLLMError  # noqa: E402


class Interrupted(KeyboardInterrupt):
    """A stop signal (:data:`STOP_SIGNALS`) while a command works: raised so that
    ``finally`` blocks run (an experiment gives its runs back), then the command exits
    ``128 + signal``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: True while :func:`_redeliver_stop` runs. A signal handled then (the one it delivers
#: again can land before it returns: starting the helper thread waits on a lock) cannot
#: raise either, since it would escape the hook and be lost; it is delivered once more.
_IN_HOOK = [False]


def _deliver_later(signum: int) -> None:
    """Raise ``signum`` again from a helper thread, shortly: its handler then runs in the
    main thread at a point where :class:`Interrupted` can propagate."""
    def later():
        time.sleep(0.01)
        signal.raise_signal(signum)

    threading.Thread(target=later, daemon=True).start()


def _interrupt(signum, frame):
    if _IN_HOOK[0]:
        _deliver_later(signum)
        return
    # A second signal while cleaning up exits at once (the store stays consistent: every
    # change is one transaction, and an unreleased run's lease expires).
    for other in STOP_SIGNALS:
        signal.signal(other, _exit_quietly)
    raise Interrupted(signum)


def _redeliver_stop(unraisable) -> None:
    """``sys.unraisablehook`` while a command works: a stop signal whose handler ran inside
    a callback that cannot raise (a weakref callback of the import system, a ``__del__``)
    would be printed with a traceback and then lost, and the command would go on. Instead
    the signal is delivered again from a helper thread; its handler then runs in the main
    thread at the next point where :class:`Interrupted` can propagate (runs given back, one
    line, ``128 + signal``). Anything else goes to the hook that was there before."""
    exc = unraisable.exc_value
    if not isinstance(exc, Interrupted):
        _PREVIOUS_HOOK[-1](unraisable)
        return
    _IN_HOOK[0] = True
    try:
        _install(_interrupt)  # the handler had switched to exiting at once: a first stop
        _deliver_later(exc.signum)
    finally:
        _IN_HOOK[0] = False


#: The unraisable hooks :func:`main` replaced (a stack: main may be called re-entrantly).
_PREVIOUS_HOOK: list = [sys.unraisablehook]


def _finished(status: int):
    """The handler once the work is done and its output written: a signal now changes
    nothing the user gets, so the process ends with the work's own status, quietly."""
    def handler(signum, frame):
        try:
            sys.stdout.flush()
        finally:
            os._exit(status)

    return handler

# Order is the order shown by --help.
COMMAND_MODULES = (
    "lensllm.commands.bench",
    "lensllm.commands.fit",
    "lensllm.commands.fit_quality",
    "lensllm.commands.run",
    "lensllm.commands.export",
    "lensllm.commands.ntk",
    "lensllm.commands.select",
    "lensllm.commands.validate",
    "lensllm.commands.demo",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse hook
        sys.stderr.write(f"lensllm: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lensllm",
        description=(
            "Pick the LLM to fine-tune before paying to fine-tune them all: fit fine-tuning "
            "scaling laws to small runs, predict each candidate's loss at the full data size "
            "with an interval, and rank the candidates at a fraction of the compute."
        ),
        epilog="Start with `lensllm bench` (published loss tables, no GPU, seconds).",
    )
    parser.add_argument("--version", action="version", version=f"lensllm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lensllm`` script. Returns the process exit status.

    A stop signal while the command works is :class:`Interrupted` (runs given back, one
    line, ``128 + signal``). Once the command is done and its output written, a signal
    no longer changes the outcome: the program ends with the command's own status.
    """
    handlers = _install(_interrupt)
    _PREVIOUS_HOOK.append(sys.unraisablehook)
    sys.unraisablehook = _redeliver_stop
    status = 2
    try:
        status = _run(argv)
        return status
    finally:
        sys.unraisablehook = _PREVIOUS_HOOK.pop()
        if _is_program():  # done: a signal from here on ends the process with this status
            sys.stdout.flush()
            handlers = {signum: _finished(status) for signum in STOP_SIGNALS}
        _install(handlers)


def _run(argv: Sequence[str] | None) -> int:
    """Parse ``argv``, run the command, map its errors to one line and an exit status."""
    command = "lensllm"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help()
            return 2
        command = f"lensllm {args.command}"
        return int(args.handler(args) or 0)
    except LensLLMError as exc:
        sys.stderr.write(f"{command}: error: {exc}\n")
        return 2
    except sqlite3.DatabaseError as exc:  # a corrupted page, a full disk under SQLite
        sys.stderr.write(f"{command}: error: store: {exc} (the SQLite file is damaged or "
                         "its disk is full; `sqlite3 FILE 'PRAGMA integrity_check'` tells "
                         "which)\n")
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        what = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}.get(
            signum, f"stopped by {signal.Signals(signum).name}")
        sys.stderr.write(f"{command}: {what}; finished runs are kept, rerun to go on\n")
        return 128 + int(signum)
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a full disk or a vanished file outside lensllm's own checks
        where = f" '{exc.filename}'" if exc.filename else ""
        sys.stderr.write(f"{command}: error:{where} {exc.strerror or exc}\n")
        return 2


def _is_program() -> bool:
    """Whether this process is the ``lensllm`` program (not a test or a library calling
    :func:`main`, whose own handlers are given back when it returns)."""
    return os.path.basename(sys.argv[0]) == "lensllm" or (
        sys.argv[0].endswith(os.path.join("lensllm", "cli.py")))


def _install(handler) -> dict:
    """Set the handlers of :data:`STOP_SIGNALS` (a dict: one per signal); return the
    previous ones. Only the main thread may (a main() called from another thread changes
    nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in STOP_SIGNALS:
        new = handler.get(signum) if isinstance(handler, dict) else handler
        if new is not None:
            previous[signum] = signal.signal(signum, new)
    return previous


if __name__ == "__main__":
    raise SystemExit(main())
