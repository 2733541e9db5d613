"""``lensllm demo``: the whole product on four tiny models, in under a minute on a laptop."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["demo_config", "register"]

EPILOG = """\
examples:
  lensllm demo                   # under a minute on 2 CPU cores; writes reports/demo/index.html
  lensllm demo --out /tmp/demo --no-open
  lensllm demo --method lensllm        # rank with the LensLLM law instead of `adaptive`

What it does: pretrains four tiny language models (GPT-2, Llama and OPT shapes, 0 to 150
steps) on the Python documentation that ships with Python (pydoc_data), generates a
downstream task (word-list instructions, different from the pretraining text), then runs
`lensllm select` on them: small fine-tuning runs on 50-400 examples, NTK features, scaling-law
fits, and a ranking by predicted loss at D* = 6400 examples. Everything stays offline.
Running it again reuses the pretrained models and the finished runs (seconds).
"""

#: Subset sizes, budget and target of the demo.
DEMO_SIZES = (50, 100, 200, 400)
DEMO_TARGET = 6400


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run `lensllm select` end to end on tiny self-pretrained models",
        description=(
            "Build a tiny model zoo offline, fine-tune it on small subsets of a generated "
            "task, fit scaling laws with NTK features, print the ranking and write an HTML "
            "report with plots (the same code path as `lensllm select`)."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("reports/demo"), metavar="DIR",
                   help="report directory; the task, config and store go to DIR/work "
                        "(default: %(default)s)")
    p.add_argument("--method", default="adaptive", metavar="NAME",
                   help="selection method (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads (default: %(default)s)")
    p.add_argument("--no-open", action="store_true",
                   help="do not open the report in a browser")
    p.set_defaults(handler=run)


def demo_config(work: Path, models: dict[str, Path], method: str) -> Path:
    """Write the demo's task file and TOML config under ``work``; return the config path."""
    from lensllm.outputs import write_text
    from lensllm.zoo import write_task

    work.mkdir(parents=True, exist_ok=True)
    n_val, n_test = 64, 128
    data = work / "wordlist_task.jsonl"
    if not data.is_file():
        # D* training examples, so that `lensllm validate --size 6400` can run
        write_task(data, DEMO_TARGET + n_val + n_test, seed=0)
    # JSON strings are TOML basic strings: quotes and backslashes in a path stay text
    cands = "\n".join(f'[[candidates]]\nmodel = {json.dumps(str(p))}\n'
                      for p in models.values())
    text = f"""# Written by `lensllm demo`.
[experiment]
sizes = {list(DEMO_SIZES)}
seeds = [0]
store = "demo.sqlite"
threads = 1

[data]
path = {json.dumps(data.name)}
validation_size = {n_val}
test_size = {n_test}

{cands}
[finetune]
method = "full"
learning_rate = 2e-3
batch_size = 8
# the default recipe: a constant rate until the validation loss stops improving
max_length = 48
attn_implementation = "eager"

[selection]
method = {json.dumps(method)}
target = {DEMO_TARGET}
max_data = {DEMO_SIZES[-1]}

[ntk]
n = 16
dim = 4096
params = "all"
"""
    path = work / "demo.toml"
    write_text(path, text, "demo config")
    return path


def _can_open_browser() -> bool:
    if not sys.stdout.isatty():
        return False
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:

    from lensllm.commands._common import check_threads
    from lensllm.outputs import check_output_dir

    check_threads(args.threads, "--threads")
    check_output_dir(args.out, "--out")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    from lensllm.commands.select import print_outcome
    from lensllm.pipeline import load_select_config, run_select
    from lensllm.outputs import html_text
    from lensllm.report.select_report import write_select_report
    from lensllm.zoo import DEMO_ZOO, build_zoo

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    log("1/3 pretraining 4 tiny models on pydoc_data (cached after the first time)")
    models = build_zoo(DEMO_ZOO, threads=args.threads, log=log)
    config_path = demo_config(args.out / "work", models, args.method)
    config = load_select_config(config_path)
    log("2/3 lensllm select (fine-tuning runs, NTK features, fits)")
    outcome = run_select(config, threads=args.threads, log=log)
    print_outcome(outcome)
    log("3/3 writing the report")
    intro = ("<p>Four tiny models pretrained by lensllm for 0 to 150 steps on the Python "
             "documentation (<code>pydoc_data</code>), fine-tuned on a generated word-list task "
             "(reverse, sort, first, last, count). Config: <code>work/demo.toml</code>; "
             "re-run with <code>lensllm select --config "
             f"{html_text(config_path)}</code>.</p>")
    path = write_select_report(outcome, args.out, title="lensllm demo", intro=intro)
    print(f"report: {path.resolve()}  ({time.perf_counter() - start:.0f} s in all)")
    if not args.no_open and _can_open_browser():
        import webbrowser

        try:
            webbrowser.open(path.resolve().as_uri(), new=2)
        except Exception:  # noqa: BLE001, S110 - opening a browser is a convenience only
            pass
    return 1 if outcome.failed else 0
