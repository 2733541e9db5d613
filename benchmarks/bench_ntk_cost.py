"""Cost of NTK features against fine-tuning, and what sets their peak memory.

Measured in one run, each configuration in its own subprocess (so peak memory is per
configuration):

1. ``finetune``: fine-tune the model on 200 examples under the project's default recipe
   (:func:`lensllm.finetune.finetune` with a default
   :class:`~lensllm.finetune.config.FinetuneConfig`, only ``device`` and ``max_length`` set;
   64 validation and 128 test examples). Wall time includes loading the model, as the runner
   reports it.
2. ``ntk``: ``lensllm ntk`` itself (its ``main``, called in the worker process) with the
   defaults (n = 64 probes, LoRA on every linear layer as the runs train it, d = 4096,
   engine and chunk size chosen automatically, bf16 autocast on CUDA, ``--device`` the
   benchmark's); the figure is the command's own clock (the time it prints and stores,
   from loading the model to the spectrum), so the benchmark cannot be fast while the
   command is slow (``tests/benchmarks_tests`` checks the command run by hand against it).
   Both clocks (this one and the runner's ``wall_time``) include loading the model's code
   and peft, as a user's first run does.
3. the two per-example gradient engines on the same model (``batched``: one batched pass
   with hooks on the linear layers; ``vmap``: ``torch.func``), seconds per probe example;
4. the bf16 kernel's eigenvalues against the float32 kernel's (same probes, same sketch);
5. the cost of the curvature diagnostics (Lanczos + deflated Hutchinson, their defaults);
6. for the default model only: peak RSS with all parameters differentiated for two chunk
   sizes at n = 64 and for n = 32 vs 64.

Models (``--model``): default, a GPT-2 of 3.3M parameters (d = 256, 4 layers, byte-level
tokenizer) at 128 tokens; ``25m``, a Llama-shaped random-init model of 25.7M parameters
(d = 512, 8 layers, MLP 1376) at 256 tokens; ``300m``, Llama-shaped, 309M parameters
(d = 1024, 24 layers, MLP 2816) at 512 tokens, for a GPU (``--device cuda``). They are saved
to a temporary directory and loaded by path like any local model; any other id or path
works too. The text is the standard library's ``pydoc_data.topics``, in windows of as many
bytes as the model's token length.

Both runs pay the same cold start (importing transformers' model code, loading the model,
tokenising), measured once by a process that only loads and encodes. The last line is
``ntk_cost_ratio=<x> peak_rss_mb=<y>``: ``x`` = feature time (loaded model to spectrum) /
(fine-tuning wall time - cold start), compute against compute; the end-to-end ratio with a
cold start on each side is printed above it. ``y`` = peak RSS (MB) of the default NTK
process; on CUDA the peak GPU memory allocated is printed above it. Run
``python benchmarks/bench_ntk_cost.py [--model 25m] [--device cuda] [--skip curvature]``;
``--ntk-only`` times the command alone and prints ``ntk_wall_s=``.
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
#: Built-in models: (description, tokens per example, builder arguments).
PRESETS = {
    "gpt2-3m": ("GPT-2 d=256 x 4 layers, 3.3M params (built here)", 128,
                {"arch": "gpt2", "hidden": 256, "layers": 4, "heads": 4}),
    "25m": ("Llama-shaped d=512 x 8 layers, MLP 1376, ~25.7M params (built here)", 256,
            {"arch": "llama", "hidden": 512, "layers": 8, "heads": 8, "mlp": 1376}),
    "300m": ("Llama-shaped d=1024 x 24 layers, MLP 2816, ~309M params (built here)", 512,
             {"arch": "llama", "hidden": 1024, "layers": 24, "heads": 16, "mlp": 2816}),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _peak_gpu_mb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def _gpu(record: dict) -> str:
    """``", peak GPU <x> MB"`` for a worker's record on CUDA, else nothing."""
    return f", peak GPU {record['peak_gpu_mb']:.0f} MB" if record.get("peak_gpu_mb") else ""


def _write_task(path: Path, n_examples: int, chars: int) -> None:
    """Causal task: consecutive windows of ``chars`` characters of the stdlib's pydoc topics."""
    from pydoc_data.topics import topics

    text = " ".join(" ".join(v.split()) for _, v in sorted(topics.items()))
    stride = chars + 11
    if n_examples * stride > len(text):
        raise SystemExit(f"pydoc topics hold {len(text)} characters, need {n_examples * stride}")
    with path.open("w") as f:
        for i in range(n_examples):
            f.write(json.dumps({"text": text[i * stride : i * stride + chars]}) + "\n")


def _write_model(path: Path, arch: str, hidden: int, layers: int, heads: int,
                 mlp: int = 0) -> None:
    import torch
    import transformers as tf

    tokenizer = tf.ByT5Tokenizer()
    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
           "bos_token_id": tokenizer.eos_token_id}
    if arch == "gpt2":
        config = tf.GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers,
                               n_head=heads, n_positions=256, **ids)
        cls = tf.GPT2LMHeadModel
    else:
        config = tf.LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                                num_hidden_layers=layers, num_attention_heads=heads,
                                num_key_value_heads=heads, intermediate_size=mlp,
                                max_position_embeddings=1024, tie_word_embeddings=False, **ids)
        cls = tf.LlamaForCausalLM
    torch.manual_seed(0)
    cls(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


# ----------------------------------------------------------------------------- workers


def _worker_finetune(args: argparse.Namespace) -> dict:
    try:  # the public entry point (the lead's recipe applies automatically)
        from lensllm.finetune import finetune
    except ImportError:  # before the package re-exports it
        from lensllm.finetune.train import finetune
    from lensllm.finetune.config import FinetuneConfig
    from lensllm.finetune.data import load_task_data

    task = load_task_data(args.data)
    config = FinetuneConfig(device=args.device, max_length=args.tokens)
    result = finetune(args.model, task, size=N_TRAIN, seed=0, config=config,
                      validation_size=VALIDATION, test_size=TEST, threads=args.threads)
    return {"wall_s": result.wall_time, "steps": result.steps, "test_loss": result.test_loss,
            "n_params": result.n_params, "schedule": config.as_dict(),
            "peak_gpu_mb": _peak_gpu_mb(args.device)}


def _load_probe(args: argparse.Namespace):
    """Task, probe set, model and encoded probes, loaded and placed by the code
    :func:`lensllm.ntk.measure_ntk` runs (``sdpa`` attention, the run's device)."""
    from lensllm.finetune.data import load_task_data
    from lensllm.ntk import select_probe
    from lensllm.ntk.features import _load_probe as load_like_the_command

    task = load_task_data(args.data)  # the runner gets the task already loaded too
    start = time.perf_counter()
    probe = select_probe(task.examples, args.n, 0)
    model, batch, _, _ = load_like_the_command(args.model, probe, task.kind, dtype="float32",
                                               device=args.device, max_length=args.tokens)
    return start, model, batch


def cli_argv(args: argparse.Namespace, out: Path) -> list[str]:
    """The ``lensllm ntk`` command line of a configuration (what a user types)."""
    argv = ["ntk", "--model", args.model, "--data", str(args.data), "--n", str(args.n),
            "--dim", str(args.dim), "--params", args.params, "--engine", args.engine,
            "--precision", args.precision, "--max-length", str(args.tokens), "--device",
            args.device, "--threads", str(args.threads), "--seed", "0", "--out", str(out),
            "--no-progress"]
    if args.chunk_size is not None:
        argv += ["--chunk-size", str(args.chunk_size)]
    return argv


def _worker_ntk(args: argparse.Namespace) -> dict:
    """The features as a user gets them: ``lensllm ntk`` itself (its ``main``, in this
    process), timed from the call to its return; the cold start is measured apart."""
    import torch

    from lensllm.cli import main as lensllm_main
    from lensllm.ntk.spectrum import NTKSpectrum

    # Nothing is imported ahead of the command's clock but what `lensllm.cli` imports
    # itself: peft and transformers' model code (about 5 s on a busy 2-core machine) are
    # part of what a user waits for, on both sides (the fine-tune loads its model and peft
    # inside its clock too).
    if args.load_only:
        start, _, _ = _load_probe(args)
        return {"wall_s": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}
    with tempfile.TemporaryDirectory(prefix="bench_ntk_out_") as tmp:
        out = Path(tmp) / "features.json"
        start = time.perf_counter()
        if lensllm_main(cli_argv(args, out)) != 0:
            raise SystemExit("lensllm ntk failed")
        if args.device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        spec = NTKSpectrum.load(out)
    meta = spec.meta
    # the figure is the command's own clock (what it prints and stores: from loading the
    # model to the spectrum); the call's wall time adds reading the task and the imports
    # the command makes before its clock starts, which the fine-tune's clock excludes too
    return {"wall_s": meta["wall_time_s"], "call_s": wall,
            "n_params": meta["n_params"], "engine": meta["engine"],
            "precision": meta["precision"], "chunk_size": meta["chunk_size"],
            "device": meta["device"], "eigenvalues": [float(x) for x in spec.eigenvalues],
            "peak_gpu_mb": _peak_gpu_mb(args.device)}


def _worker_curvature(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from lensllm.ntk import hessian_curvature

    _, model, batch = _load_probe(args)
    loaded = time.perf_counter()
    curv = hessian_curvature(model, batch, seed=0)
    if args.device == "cuda":
        torch.cuda.synchronize()
    return {"curvature_s": time.perf_counter() - loaded, "curvature": curv.to_dict(),
            "peak_gpu_mb": _peak_gpu_mb(args.device)}


def _run_worker(kind: str, common: list[str], extra: list[str] | None = None,
                *, optional: bool = False) -> dict | None:
    """Run one configuration in its own process; an optional one that fails prints why and
    returns None, so that the ratio's line is still printed."""
    cmd = [sys.executable, __file__, "--worker", kind, *common, *(extra or [])]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        if optional:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            print(f"  worker {kind} {' '.join(extra or [])} failed (status {proc.returncode}): "
                  f"{tail}", flush=True)
            return None
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {kind} {extra} failed with status {proc.returncode}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if kind == "ntk" and "--load-only" not in (extra or []):
        # compute: the command's wall time less the cold start every process pays
        out["features_s"] = max(out["wall_s"] - _COLD_START_S[0], 0.0)
    return out


#: Seconds of the cold start (load the model, encode the probes), measured once by ``main``.
_COLD_START_S = [0.0]


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="25m, 300m, or a model id or path (default: a 3.3M-parameter "
                             "GPT-2 built here)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="device of both the fine-tuning run and the features")
    parser.add_argument("--tokens", type=int, default=None,
                        help="tokens per example (default: 128, 256 for 25m, 512 for 300m)")
    parser.add_argument("--ntk-only", action="store_true",
                        help="only time `lensllm ntk` with the defaults (no fine-tune, no "
                             "sections); prints ntk_wall_s=")
    parser.add_argument("--n-probes", type=int, default=64, metavar="N",
                        help="probe examples of the default features (default: %(default)s)")
    parser.add_argument("--skip", default="", metavar="S1,S2",
                        help="sections to skip, of engines, precision, curvature (to save "
                             "device time; the ratio's line is always printed)")
    parser.add_argument("--worker", choices=("finetune", "ntk", "curvature"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=4096, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="lora", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _engines(common: list[str], batched_per_example: float) -> None:
    """Seconds per probe example of the vmap engine (8 probes) against the batched one."""
    n = 4 if "cuda" in common else 8  # issue 15: vmap took > 70 s for 16 probes at 300M
    vm = _run_worker("ntk", common, ["--engine", "vmap", "--n", str(n), "--chunk-size", str(n)],
                     optional=True)
    if vm is None:
        return
    per = vm["features_s"] / n
    print(f"engines (LoRA, seconds per probe example): batched {batched_per_example:.3f} s "
          f"(n=64, default); vmap {per:.3f} s (n={n}, chunk {n}, {vm['precision']}); "
          f"vmap / batched = {per / batched_per_example:.2f}", flush=True)


def _precision(common: list[str], device: str, ntk: dict) -> None:
    """The bf16 kernel's eigenvalues against the float32 kernel's, same probes and sketch."""
    import numpy as np

    n = "64" if device == "cuda" else "16"  # bf16 matmuls are slow on most CPUs
    f32 = ntk if (device == "cpu" and n == "64") else _run_worker(
        "ntk", common, ["--precision", "float32", "--n", n], optional=True)
    bf16 = ntk if (device == "cuda" and ntk["precision"] == "bfloat16") else _run_worker(
        "ntk", common, ["--precision", "bfloat16", "--n", n], optional=True)
    if f32 is None or bf16 is None:
        return
    lam32, lam16 = np.array(f32["eigenvalues"]), np.array(bf16["eigenvalues"])
    rel = np.abs(lam16 - lam32) / np.abs(lam32)
    top = lam32 >= 1e-2 * lam32[0]
    print(f"precision (n={n}): bf16 autocast {bf16['features_s']:.2f} s, float32 "
          f"{f32['features_s']:.2f} s; eigenvalue relative error: max over lambda >= 1% of "
          f"lambda_max ({int(top.sum())} of {lam32.size}) {rel[top].max():.4f}, largest "
          f"eigenvalue {rel[0]:.4f}, max over all {rel.max():.4f}", flush=True)


def _curvature(common: list[str], base_rss: float) -> None:
    cv = _run_worker("curvature", common, optional=True)
    if cv is None:
        return
    c = cv["curvature"]
    gpu = _gpu(cv)
    print(f"curvature (loss on {c['n_examples']} probes, {c['lanczos_steps']} Lanczos steps, "
          f"{c['probes']} probes, {c['hvps']} Hessian-vector products, {c['n_params']:,} "
          f"params): {cv['curvature_s']:.2f} s, peak RSS {cv['peak_rss_mb']:.0f} MB "
          f"(+{cv['peak_rss_mb'] - base_rss:.0f} over loading){gpu}; top eigenvalue "
          f"{c['top_eigenvalue']:.4g}, trace {c['trace']:.4g}", flush=True)


def _memory_table(common: list[str], base_rss: float) -> None:
    print("peak RSS with all parameters differentiated (vmap engine, d=4096):", flush=True)
    rows = []
    for n, chunk in ((64, 2), (64, 16), (32, 16)):
        r = _run_worker("ntk", common, ["--params", "all", "--n", str(n),
                                        "--chunk-size", str(chunk)])
        rows.append(r)
        print(f"  n={n:3d} chunk={chunk:3d}: peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(+{r['peak_rss_mb'] - base_rss:.0f} MB over loading), "
              f"features {r['features_s']:.2f} s, {r['n_params']:,} params", flush=True)
    c2, c16, n32 = rows
    print(f"  chunk 2 -> 16 at n=64: {c16['peak_rss_mb'] - c2['peak_rss_mb']:+.0f} MB; "
          f"n 32 -> 64 at chunk 16: {c16['peak_rss_mb'] - n32['peak_rss_mb']:+.0f} MB",
          flush=True)


def _setup(args: argparse.Namespace, tmp: str) -> tuple[list[str], str]:
    preset = args.model if args.model in PRESETS else ("gpt2-3m" if args.model is None else None)
    desc, tokens, build = PRESETS[preset] if preset else (args.model, 128, None)
    tokens = args.tokens or tokens
    data = Path(tmp) / "task.jsonl"
    _write_task(data, N_TRAIN + VALIDATION + TEST + 20, tokens - 1)  # + eos = tokens
    model = args.model
    if build is not None:
        model = str(Path(tmp) / preset)
        _write_model(Path(model), **build)
    common = ["--model", model, "--data", str(data), "--threads", str(args.threads),
              "--device", args.device, "--tokens", str(tokens)]
    print(f"model {desc}, {tokens} tokens per example, {args.threads} thread(s), device "
          f"{args.device}", flush=True)
    return common, preset or ""


def main() -> None:
    args = _parse()
    if args.worker:
        worker = {"finetune": _worker_finetune, "ntk": _worker_ntk,
                  "curvature": _worker_curvature}[args.worker]
        out = worker(args)
        out["peak_rss_mb"] = out.get("peak_rss_mb", _peak_rss_mb())
        print(json.dumps(out))
        return

    with tempfile.TemporaryDirectory(prefix="bench_ntk_") as tmp:
        common, preset = _setup(args, tmp)
        common += ["--n", str(args.n_probes)]
        if args.ntk_only:
            ntk = _run_worker("ntk", common)
            print(f"lensllm ntk ({ntk['engine']} engine, {ntk['precision']}, chunk "
                  f"{ntk['chunk_size']}, {ntk['device']}): {ntk['wall_s']:.3f} s on its own "
                  f"clock, {ntk['call_s']:.3f} s from the call to its return", flush=True)
            print(f"ntk_wall_s={ntk['wall_s']:.4f}")
            return
        base = _run_worker("ntk", common, ["--load-only"])
        _COLD_START_S[0] = load_s = base["wall_s"]
        ft = _run_worker("finetune", common)
        gpu = _gpu(ft)
        print(f"fine-tune {N_TRAIN} examples, default recipe: {ft['wall_s']:.2f} s, "
              f"{ft['steps']} steps, {ft['n_params']:,} params, "
              f"peak RSS {ft['peak_rss_mb']:.0f} MB{gpu}", flush=True)
        ntk = _run_worker("ntk", common)
        print(f"cold start: import transformers, load the model, encode the probes: "
              f"{load_s:.2f} s, peak RSS {base['peak_rss_mb']:.0f} MB", flush=True)
        gpu = _gpu(ntk)
        print(f"NTK features n={args.n_probes} lora d=4096, `lensllm ntk` ({ntk['engine']} engine, {ntk['precision']}, "
              f"chunk {ntk['chunk_size']}, {ntk['device']}): {ntk['features_s']:.2f} s "
              f"besides the cold start (LoRA wrap and the peft import included; "
              f"{ntk['n_params']:,} LoRA params); {ntk['wall_s']:.2f} s with the cold start; "
              f"peak RSS "
              f"{ntk['peak_rss_mb']:.0f} MB{gpu}", flush=True)
        ft_compute = ft["wall_s"] - load_s
        ratio = ntk["features_s"] / ft_compute
        ratio_cold = ntk["wall_s"] / ft["wall_s"]
        print(f"cost ratio, compute only (features / (fine-tune wall - cold start)): "
              f"{ntk['features_s']:.2f} / {ft_compute:.2f} = {ratio:.3f}", flush=True)
        print(f"cost ratio, each with its own cold start (end-to-end processes): "
              f"{ntk['wall_s']:.2f} / {ft['wall_s']:.2f} = {ratio_cold:.3f}", flush=True)
        skip = {x.strip() for x in args.skip.split(",") if x.strip()}
        if "engines" not in skip:
            _engines(common, ntk["features_s"] / args.n_probes)
        if "precision" not in skip:
            _precision(common, args.device, ntk)
        if "curvature" not in skip:
            _curvature(common, base["peak_rss_mb"])
        if preset == "gpt2-3m":
            _memory_table(common, base["peak_rss_mb"])
    print(f"ntk_cost_ratio={ratio:.4f} peak_rss_mb={ntk['peak_rss_mb']:.1f}")


if __name__ == "__main__":
    main()
