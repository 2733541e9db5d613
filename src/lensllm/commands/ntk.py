"""``lensllm ntk``: empirical NTK features of a model on a probe set drawn from task data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

EPILOG = """\
examples:
  lensllm ntk --model tiny:gpt2 --data task.jsonl --out gpt2.ntk.json     # seconds on a CPU
  lensllm ntk --model ./my-model --data train.csv --n 64 --dim 4096 --params lora \\
      --eta 2e-4 --device cuda --out my-model.ntk.json --store runs.sqlite

The output is JSON: the kernel's eigenvalues and the squared projections of the initial
residual on its eigenvectors (2n numbers), with the model id, probe seed, n, d, parameter
subset and dtype. `--eta` should be the learning rate of the fine-tuning runs; F(t) then uses
t = optimizer steps. Definitions and costs: docs/ntk.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ntk", help="empirical NTK features of a model (eigenvalues, residual projections)",
        description=(
            "Draw a seeded probe set from a task file, compute per-example gradients of each "
            "example's mean target log-likelihood (LoRA adapters or all parameters), sketch "
            "them to --dim dimensions, and save the spectrum of the kernel Theta = G G^T and "
            "the squared projections of the initial loss residual: the features the LensLLM "
            "law's F(Theta, t) needs."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="ID_OR_PATH",
                   help="model: a local path, a hub id (cached), gguf:NAME or tiny:ARCH")
    p.add_argument("--data", required=True, type=Path, metavar="FILE",
                   help="training task data (.jsonl or .csv with 'text', or 'source' and "
                        "'target'); the probe examples are drawn from all of it")
    p.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help="JSON file to write the features to")
    p.add_argument("--n", type=int, default=64, metavar="N",
                   help="probe examples, >= 2 (default: %(default)s)")
    p.add_argument("--dim", type=int, default=4096, metavar="D",
                   help="projection dimension; 0 = no projection, the exact kernel (small "
                        "models only) (default: %(default)s)")
    p.add_argument("--params", choices=("lora", "all"), default="lora",
                   help="parameters to differentiate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the probe set, the projection and the LoRA init "
                        "(default: %(default)s)")
    p.add_argument("--eta", type=float, metavar="LR",
                   help="learning rate of the fine-tuning runs, stored with the features")
    p.add_argument("--chunk-size", type=int, default=None, metavar="K",
                   help="examples per forward/backward pass; peak memory grows with K, not "
                        "with N (default: chosen from free memory, at most 8 on a CPU)")
    p.add_argument("--engine", choices=("auto", "batched", "vmap"), default="auto",
                   help="per-example gradients: 'batched' (one batched pass, hooks on "
                        "linear layers: LoRA), 'vmap' (torch.func, any parameter); 'auto' "
                        "takes batched whenever it applies (default: %(default)s)")
    p.add_argument("--precision", choices=("auto", "model", "float32", "bfloat16", "float16"),
                   default="auto",
                   help="matrix products of the passes; the kernel is accumulated in float64 "
                        "('auto': bfloat16 autocast on CUDA, else the model's dtype) "
                        "(default: %(default)s)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                   help="where the passes run: 'auto' is CUDA when present, else the CPU, "
                        "as `[finetune] device` of the runs (default: %(default)s)")
    p.add_argument("--curvature", action="store_true",
                   help="also measure the Hessian of the probe loss: top eigenvalue "
                        "(Lanczos) and per-layer traces (exact up to 1024 parameters, else "
                        "deflated Hutchinson with standard errors), saved in the features' "
                        "meta['curvature']; costs ~60 Hessian-vector products on 8 probes")
    p.add_argument("--max-length", type=int, default=128, metavar="TOKENS",
                   help="tokens per probe sequence (per side for seq2seq) "
                        "(default: %(default)s)")
    p.add_argument("--dtype", choices=("float32", "float64", "bfloat16"), default="float32",
                   help="parameter dtype (default: %(default)s)")
    p.add_argument("--lora-r", type=int, default=None, metavar="R",
                   help="LoRA rank (default: 8); match your fine-tuning runs")
    p.add_argument("--lora-alpha", type=float, default=None, metavar="ALPHA",
                   help="LoRA alpha (default: 16)")
    p.add_argument("--lora-targets", default=None, metavar="NAMES",
                   help="comma-separated module names or 'all-linear' (default: all-linear, "
                        "the adapters the fine-tuning runs train)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="also record the features (and their cost) in this SQLite store")
    p.add_argument("--dataset", metavar="NAME",
                   help="dataset name for the store (default: the data file's stem)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def _check_args(args: argparse.Namespace) -> None:
    from lensllm.commands._common import positive_number
    from lensllm.exceptions import CLIUsageError

    for option, value, low, high in (("--n", args.n, 2, 100_000),
                                     ("--dim", args.dim, 0, 10**8),
                                     ("--chunk-size", args.chunk_size, 1, 100_000),
                                     ("--max-length", args.max_length, 2, 1_000_000),
                                     ("--threads", args.threads, 1, 100_000),
                                     ("--lora-r", args.lora_r, 1, 1_000_000)):
        if value is not None and not low <= value <= high:
            extra = {"--n": " (a kernel needs two examples)",
                     "--dim": "; 0 = no projection"}.get(option, "")
            raise CLIUsageError(f"{option} must be an integer in [{low}, {high}]{extra}, "
                                f"got {value}")
    positive_number(args.eta, "--eta")
    positive_number(args.lora_alpha, "--lora-alpha")
    if args.params == "all" and any(
        v is not None for v in (args.lora_r, args.lora_alpha, args.lora_targets)
    ):
        raise CLIUsageError("--lora-r/--lora-alpha/--lora-targets need --params lora")
    _check_outputs(args)


def _check_outputs(args: argparse.Namespace) -> None:
    """Seed, threads, the data file, the store and the output paths, before any model is
    loaded: an output is never an input (the data, the model, the store's files), and a
    store that is not a lensllm store (or of a newer schema) is refused before any work."""
    from lensllm.commands._common import check_seed, check_threads
    from lensllm.inputs import check_input_path
    from lensllm.outputs import check_apart, check_output_file

    check_seed(args.seed, "--seed")
    check_threads(args.threads, "--threads")
    check_input_path(args.data, "--data", folder_ok=True)
    check_output_file(args.out, "--out")
    model = args.model if Path(args.model).exists() else None
    check_apart({"--out": args.out, "--store": args.store},
                {"--data": args.data, "--model": model, "--store": args.store},
                stores=["--store"])
    if args.store is not None:
        from lensllm.store import check_store

        check_store(args.store)


def _lora(args: argparse.Namespace):
    """``model -> LoraConfig`` when a --lora-* option is given, else None (the default)."""
    if all(v is None for v in (args.lora_r, args.lora_alpha, args.lora_targets)):
        return None
    from lensllm.finetune.lora import DEFAULT_LORA_ALPHA, DEFAULT_LORA_RANK, lora_config

    targets = args.lora_targets
    if targets is not None and targets.strip() != "all-linear":
        targets = sorted(t.strip() for t in targets.split(",") if t.strip())
    elif targets is not None:
        targets = "all-linear"
    return lambda model: lora_config(
        r=args.lora_r or DEFAULT_LORA_RANK, alpha=args.lora_alpha or DEFAULT_LORA_ALPHA,
        targets=targets, model_type=getattr(model.config, "model_type", None))


def _progress_bar(args: argparse.Namespace):
    """A tqdm bar on stderr and its ``progress(done, total)`` callback (None, None if off)."""
    if args.no_progress:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=args.n, desc="per-example gradients", unit="ex", file=sys.stderr,
               leave=False)
    return bar, lambda done, total: bar.update(done - bar.n)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    import torch

    from lensllm.exceptions import InputError
    from lensllm.finetune.data import load_task_data
    from lensllm.ntk import measure_ntk, record_ntk, select_probe

    from lensllm.finetune.engine import resolve_device

    resolve_device(args.device)  # a missing device: one line, before the data is read
    torch.set_num_threads(args.threads)
    task = load_task_data(args.data)
    if len(task) < args.n:
        raise InputError(
            f"--n {args.n}: the data file '{args.data}' holds only {len(task)} example(s); "
            f"pass a smaller --n or a larger file"
        )
    meta = {"model_id": args.model, "probe_seed": args.seed, "data": str(args.data),
            "max_length": args.max_length}  # chunk_size, engine, precision: filled in
    lora = _lora(args) if args.params == "lora" else None
    bar, progress = _progress_bar(args)
    try:
        spectrum = measure_ntk(
            args.model, select_probe(task.examples, args.n, args.seed), task.kind,
            params=args.params, dim=args.dim or None, seed=args.seed, eta=args.eta,
            max_length=args.max_length, chunk_size=args.chunk_size, dtype=args.dtype,
            lora=_recording(lora, meta), progress=progress, meta=meta, engine=args.engine,
            precision=args.precision, curvature=args.curvature, device=args.device)
    finally:
        if bar is not None:
            bar.close()
    out = spectrum.save(args.out)
    if args.store is not None:
        from lensllm.store import open_store

        with open_store(args.store) as store:
            record_ntk(store, spectrum, dataset=args.dataset or args.data.stem)
    lam = spectrum.eigenvalues
    print(f"{args.model}: n={spectrum.n} d={args.dim or 'exact'} params={args.params} "
          f"({spectrum.meta['n_params']:,} differentiated) lambda_max={lam[0]:.4g} "
          f"trace={lam.sum():.4g} F(0)={spectrum.residual_sq:.4g} in "
          f"{spectrum.meta['wall_time_s']:.1f} s on {spectrum.meta['device']} -> {out}")
    return 0


def _recording(lora, meta: dict):
    """``lora`` that also records the adapters' settings in ``meta`` (None stays None)."""
    if lora is None:
        return None

    def build(model):
        config = lora(model)
        meta["lora"] = {"r": config.r, "alpha": config.lora_alpha,
                        "targets": config.target_modules}
        return config

    return build
