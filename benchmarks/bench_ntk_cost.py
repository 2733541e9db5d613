"""Cost of NTK features against fine-tuning, and what sets their peak memory.

Measured in one run, each configuration in its own subprocess (so peak RSS is per
configuration):

1. ``finetune``: fine-tune the model on 200 examples with the default schedule of the
   project's runner (:func:`lensllm.finetune.train.finetune` with a default
   :class:`~lensllm.finetune.config.FinetuneConfig`: full fine-tuning, AdamW lr 1e-3, batch 8,
   at most 3 epochs, validation every 10 steps with early stopping, 64 validation and 128
   test examples). Wall time includes loading the model, as the runner reports it.
2. ``ntk``: NTK features with the library defaults (n = 64 probes, LoRA parameters,
   d = 4096, chunk 8), wall time from loading the model to the spectrum, i.e. what
   ``lensllm ntk`` spends. Both clocks start after lensllm's modules are imported and
   before the task file and the model are loaded (the runner's ``wall_time``).
3. peak RSS of the feature step with all parameters differentiated (where per-example
   gradients dominate memory) for two chunk sizes at n = 64 and for n = 32 vs 64 at the larger
   chunk, next to the RSS of a process that loads the model and encodes the probes only.

The default model is a GPT-2 of 3.3M parameters (d = 256, 4 layers, byte-level tokenizer)
saved to a temporary directory and loaded by path like any local model; the text is the
standard library's ``pydoc_data.topics``. Pass ``--model`` for another id (``tiny:llama``, a
local path...).

Both runs pay the same cold start (importing transformers' model code, loading the model,
tokenising), which on a fresh process can exceed the feature computation itself; it is
measured once by a process that only loads and encodes. The last line is
``ntk_cost_ratio=<x> peak_rss_mb=<y>``: ``x`` = feature time (loaded model to spectrum) /
(fine-tuning wall time - cold start), compute against compute; the end-to-end ratio with a
cold start on each side is printed above it. ``y`` = peak RSS (MB) of the default NTK
process. Run ``python benchmarks/bench_ntk_cost.py`` (about 2 minutes on one CPU thread).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

N_TRAIN = 200
VALIDATION = 64
TEST = 128


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _write_task(path: Path, n_examples: int) -> None:
    """Causal task: consecutive ~200-character windows of the stdlib's pydoc topics."""
    from pydoc_data.topics import topics

    text = " ".join(" ".join(v.split()) for _, v in sorted(topics.items()))
    with path.open("w") as f:
        for i in range(n_examples):
            f.write(json.dumps({"text": text[i * 211 : i * 211 + 200]}) + "\n")


def _write_model(path: Path) -> None:
    import torch
    import transformers as tf

    tokenizer = tf.ByT5Tokenizer()
    config = tf.GPT2Config(
        vocab_size=len(tokenizer), n_embd=256, n_layer=4, n_head=4, n_positions=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    tf.GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


# ----------------------------------------------------------------------------- workers


def _worker_finetune(args: argparse.Namespace) -> dict:
    from lensllm.finetune.config import FinetuneConfig
    from lensllm.finetune.data import load_task_data
    from lensllm.finetune.train import finetune

    task = load_task_data(args.data)
    config = FinetuneConfig(device=args.device)
    result = finetune(args.model, task, size=N_TRAIN, seed=0, config=config,
                      validation_size=VALIDATION, test_size=TEST, threads=args.threads)
    return {"wall_s": result.wall_time, "steps": result.steps, "test_loss": result.test_loss,
            "n_params": result.n_params, "schedule": config.as_dict()}


def _worker_ntk(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from lensllm.finetune.data import encode_examples, load_task_data
    from lensllm.finetune.models import is_encoder_decoder, load_model
    from lensllm.ntk import compute_ntk_features, select_probe

    # Timed from the same point as the runner's wall_time: modules imported, nothing loaded
    # (transformers and peft are imported lazily inside, in both).
    task = load_task_data(args.data)  # the runner gets the task already loaded too
    start = time.perf_counter()
    probe = select_probe(task.examples, args.n, 0)
    model, tokenizer = load_model(args.model, attn_implementation="eager")
    batch = encode_examples(tokenizer, probe, task.kind, max_length=128,
                            is_encoder_decoder=is_encoder_decoder(model))
    model.to(args.device)  # the runner moves its model too; prepare_batch moves the batch
    loaded = time.perf_counter()
    rss_loaded = _peak_rss_mb()
    if args.load_only:
        return {"wall_s": loaded - start, "peak_rss_mb": rss_loaded}
    spec = compute_ntk_features(model, batch, params=args.params, dim=args.dim,
                                chunk_size=args.chunk_size, seed=0)
    if args.device == "cuda":
        torch.cuda.synchronize()
    end = time.perf_counter()
    return {"wall_s": end - start, "features_s": end - loaded, "n_params": spec.meta["n_params"],
            "rss_after_load_mb": rss_loaded}


def _run_worker(kind: str, common: list[str], extra: list[str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, *common, *(extra or [])]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {kind} {extra} failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="model id or path (default: a 3.3M-parameter GPT-2 built here)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="device of both the fine-tuning run and the features")
    parser.add_argument("--worker", choices=("finetune", "ntk"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=4096, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="lora", help=argparse.SUPPRESS)
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        out = _worker_finetune(args) if args.worker == "finetune" else _worker_ntk(args)
        out["peak_rss_mb"] = out.get("peak_rss_mb", _peak_rss_mb())
        print(json.dumps(out))
        return

    with tempfile.TemporaryDirectory(prefix="bench_ntk_") as tmp:
        data = Path(tmp) / "task.jsonl"
        _write_task(data, N_TRAIN + VALIDATION + TEST + 20)
        model = args.model
        if model is None:
            model = str(Path(tmp) / "gpt2-3m")
            _write_model(Path(model))
        common = ["--model", model, "--data", str(data), "--threads", str(args.threads),
                  "--device", args.device]
        print(f"model {args.model or 'GPT-2 d=256 x 4 layers (built here)'}, "
              f"{args.threads} thread(s), device {args.device}", flush=True)

        ft = _run_worker("finetune", common)
        print(f"fine-tune {N_TRAIN} examples, default schedule: {ft['wall_s']:.2f} s, "
              f"{ft['steps']} steps, {ft['n_params']:,} params, "
              f"peak RSS {ft['peak_rss_mb']:.0f} MB", flush=True)
        ntk = _run_worker("ntk", common)
        base = _run_worker("ntk", common, ["--load-only"])
        load_s = base["wall_s"]
        print(f"cold start: import transformers, load the model, encode the probes: "
              f"{load_s:.2f} s, peak RSS {base['peak_rss_mb']:.0f} MB", flush=True)
        print(f"NTK features n=64 lora d=4096 chunk=8: {ntk['features_s']:.2f} s from the "
              f"loaded model to the spectrum (peft import and LoRA wrap included; "
              f"{ntk['n_params']:,} LoRA params); {ntk['wall_s']:.2f} s with the cold start; "
              f"peak RSS {ntk['peak_rss_mb']:.0f} MB", flush=True)
        ft_compute = ft["wall_s"] - load_s
        ratio = ntk["features_s"] / ft_compute
        ratio_cold = ntk["wall_s"] / ft["wall_s"]
        print(f"cost ratio, compute only (features / (fine-tune wall - cold start)): "
              f"{ntk['features_s']:.2f} / {ft_compute:.2f} = {ratio:.3f}", flush=True)
        print(f"cost ratio, each with its own cold start (end-to-end processes): "
              f"{ntk['wall_s']:.2f} / {ft['wall_s']:.2f} = {ratio_cold:.3f}", flush=True)

        print("peak RSS with all parameters differentiated (d=4096):", flush=True)
        rows = []
        for n, chunk in ((64, 2), (64, 16), (32, 16)):
            r = _run_worker("ntk", common, ["--params", "all", "--n", str(n),
                                            "--chunk-size", str(chunk)])
            rows.append((n, chunk, r))
            print(f"  n={n:3d} chunk={chunk:3d}: peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(+{r['peak_rss_mb'] - base['peak_rss_mb']:.0f} MB over loading), "
                  f"features {r['features_s']:.2f} s, {r['n_params']:,} params", flush=True)
        (_, _, c2), (_, _, c16), (_, _, n32) = rows
        print(f"  chunk 2 -> 16 at n=64: {c16['peak_rss_mb'] - c2['peak_rss_mb']:+.0f} MB; "
              f"n 32 -> 64 at chunk 16: {c16['peak_rss_mb'] - n32['peak_rss_mb']:+.0f} MB",
              flush=True)
    print(f"ntk_cost_ratio={ratio:.4f} peak_rss_mb={ntk['peak_rss_mb']:.1f}")


if __name__ == "__main__":
    main()
