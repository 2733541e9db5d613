"""Fixed cost of a fine-tuning run: its wall time minus its training and evaluation time.

A selection is dozens of small runs of a few candidates, so what a run costs besides its
optimizer steps and its loss evaluations (loading the model, tokenising, building batches,
moving the model to the device, LoRA wrapping) is paid dozens of times. This benchmark runs
one candidate's runs the way ``lensllm run`` does (one process, :func:`lensllm.finetune.finetune`
for each, a zero-shot evaluation then nested subsets), and times, inside the real code path:

- training: every :meth:`TrainEngine.step <lensllm.finetune.engine.TrainEngine.step>`;
- evaluation: every :meth:`Scorer.evaluate <lensllm.finetune.engine.Scorer.evaluate>`
  (validation and test losses);

each synchronised with the device at both ends. The overhead of a run is its recorded
``wall_time`` minus the two. The first run of the process also pays the imports of the
model's code and the first load from disk (printed as ``cold``); the figure is the median
over the runs after it (``warm``), the cost each further run of a selection pays.

Models: ``tiny:gpt2`` by default (any id or path works), or ``300m``, a Llama-shaped model of
309M parameters saved to a temporary folder and loaded by path (for ``--device cuda``).

Last line: ``run_overhead_s=<warm median> cold_run_overhead_s=<first run> runs=<n>``.
Run ``python benchmarks/bench_run_overhead.py [--model 300m --device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from bench_ntk_cost import PRESETS, _write_model, _write_task  # noqa: E402
from lensllm.finetune.config import FinetuneConfig  # noqa: E402
from lensllm.finetune.data import load_task_data  # noqa: E402
from lensllm.finetune.engine import Scorer, TrainEngine  # noqa: E402
from lensllm.finetune.train import finetune  # noqa: E402


class _Clock:
    """Seconds spent inside the wrapped methods, synchronised with the device."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"
        self.seconds = {"train": 0.0, "eval": 0.0}

    def wrap(self, cls, name: str, bucket: str) -> None:
        inner = getattr(cls, name)

        def timed(*args, **kwargs):
            self._sync()
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._sync()
                self.seconds[bucket] += time.perf_counter() - start

        setattr(cls, name, timed)

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def take(self) -> dict[str, float]:
        out = dict(self.seconds)
        self.seconds = {"train": 0.0, "eval": 0.0}
        return out


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:gpt2",
                        help="a model id or path, or 300m (built here) (default: %(default)s)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", default="0,16,32,64,128",
                        help="the candidate's runs, in order (0: zero-shot)")
    parser.add_argument("--tokens", type=int, default=None,
                        help="tokens per example (default 64; 512 for 300m)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print one JSON line per run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        model = args.model
        tokens = args.tokens or 64
        if model in PRESETS:
            _, preset_tokens, build = PRESETS[model]
            tokens = args.tokens or preset_tokens
            model = str(Path(tmp) / args.model)
            _write_model(Path(model), **build)
        data = Path(tmp) / "task.jsonl"
        _write_task(data, max(sizes) + 64 + 64 + 8, tokens - 2)
        task = load_task_data(data)
        config = FinetuneConfig(device=args.device, max_length=tokens, batch_size=8,
                                eval_batch_size=64)
        clock = _Clock(args.device)
        clock.wrap(TrainEngine, "step", "train")
        clock.wrap(Scorer, "evaluate", "eval")
        rows = []
        for size in sizes:
            result = finetune(model, task, size=size, seed=0, config=config,
                              validation_size=64, test_size=64)
            spent = clock.take()
            overhead = result.wall_time - spent["train"] - spent["eval"]
            rows.append({"size": size, "steps": result.steps, "wall_s": result.wall_time,
                         "train_s": spent["train"], "eval_s": spent["eval"],
                         "overhead_s": overhead})
            print(f"run D={size:5d}: {result.steps:4d} steps, wall {result.wall_time:7.3f} s = "
                  f"train {spent['train']:7.3f} + eval {spent['eval']:6.3f} + overhead "
                  f"{overhead:6.3f} s", flush=True)
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
    warm = statistics.median(r["overhead_s"] for r in rows[1:]) if len(rows) > 1 else float("nan")
    print(f"model {args.model} on {args.device}, {tokens} tokens per example, "
          f"{args.threads} thread(s); torch {torch.__version__}")
    print(f"run_overhead_s={warm:.3f} cold_run_overhead_s={rows[0]['overhead_s']:.3f} "
          f"runs={len(rows)}")
    return {"run_overhead_s": warm, "cold_run_overhead_s": rows[0]["overhead_s"], "rows": rows}


if __name__ == "__main__":
    main()
