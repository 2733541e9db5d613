"""The ``lensllm`` command line.

Each subcommand lives in its own module under :mod:`lensllm.commands` and exposes
``register(subparsers)``; this module only assembles them and maps errors to exit codes.
Command modules import heavy dependencies (torch, transformers, matplotlib) inside their
handlers, so ``lensllm --help`` and ``lensllm bench`` start fast and work without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lensllm import __version__
from lensllm.exceptions import LensLLMError

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
    """Entry point of the ``lensllm`` script. Returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except LensLLMError as exc:
        sys.stderr.write(f"lensllm {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("lensllm: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
