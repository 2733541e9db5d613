"""End to end on a GPU: a zoo of six 20M-300M models, `lensllm select` against brute force.

1. Builds a zoo of six causal LMs (GPT-2, Llama and OPT shapes, 22M to 292M parameters)
   with :func:`lensllm.zoo.build_zoo` on the device: the zoo's BPE tokenizer, a few hundred
   steps of pretraining each on the standard library's ``pydoc_data.topics`` (offline),
   different step counts so that the candidates differ in quality.
2. Writes the zoo's docstring task (:mod:`lensllm.zoo.docstrings`: a callable's name -> the
   first sentence of its docstring) with ``D*`` training examples, and two configs sharing
   one store and one recipe (the default plateau recipe; only the learning rate, batch size,
   ``max_length`` and device set).
3. Brute force: ``lensllm run`` fine-tunes every candidate on ``D*`` examples (the truth).
4. ``lensllm select --json`` (the default selector, budget ``D*/ratio``, NTK features of the
   LoRA adapters) on the same store: it pays for its own runs only, and its report checks
   itself against the runs at ``D*`` it finds there.

Both steps run the CLI in a subprocess, as a user would, and are timed from outside. The
last line is ``select_wall_s=<s> brute_force_wall_s=<s> cost_fraction=<x> relacc=<y>``:
``cost_fraction`` is the selection's counted FLOPs (runs, zero-shot, NTK) over the counted
FLOPs of the D* runs (``lensllm select``'s measured denominator), ``relacc`` the RelAcc of
the selected model at ``D*``.

Designed to finish within 8 minutes on one H200 (``--device cuda``, the default when CUDA
is present); ``--small`` runs the same steps on the CPU with a zoo of 0.1M-parameter models
and ``D*`` = 96 (a test runs it). Run::

    python benchmarks/gpu_select.py [--work DIR]     # GPU
    python benchmarks/gpu_select.py --small          # CPU, minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def zoo_specs(small: bool) -> list:
    """The six candidates: (arch, hidden, layers, pretraining steps, heads)."""
    from lensllm.zoo import ZooModel

    if small:
        return [ZooModel("gpt2", 32, 2, 40), ZooModel("llama", 32, 2, 40),
                ZooModel("opt", 32, 2, 20), ZooModel("gpt2", 48, 2, 60, heads=4),
                ZooModel("llama", 48, 2, 20, heads=4), ZooModel("opt", 64, 2, 60, heads=4)]
    return [ZooModel("llama", 384, 12, 300, heads=6),     # 22.0M parameters
            ZooModel("gpt2", 512, 8, 300, heads=8),       # 25.9M
            ZooModel("opt", 640, 10, 150, heads=10),      # 50.1M
            ZooModel("llama", 768, 12, 300, heads=12),    # 86.5M
            ZooModel("gpt2", 1024, 12, 150, heads=16),    # 152.5M
            ZooModel("llama", 1024, 23, 300, heads=16)]   # 291.5M


#: Per mode: D*, the selector's subset sizes, validation and test sizes, budget ratio,
#: NTK probes and dimension, and the recipe's learning rate.
SETTINGS = {
    "gpu": {"target": 512, "sizes": [8, 16, 32, 64], "val": 128, "test": 128, "ratio": 8,
            "ntk_n": 32, "ntk_dim": 4096, "lr": "3e-4"},
    "small": {"target": 96, "sizes": [12, 24, 48], "val": 32, "test": 48, "ratio": 2,
              "ntk_n": 8, "ntk_dim": 256, "lr": "1e-3"},
}


def write_configs(work: Path, paths: dict[str, Path], s: dict, device: str) -> tuple[Path, Path]:
    """The task and the two configs (brute force at D*; selection up to the budget)."""
    from lensllm.zoo import write_task

    data = work / "docstrings.jsonl"
    write_task(data, s["target"] + s["val"] + s["test"], seed=0, task="docstrings")
    cands = "\n".join(f'[[candidates]]\nmodel = "{p}"\nfamily = "{n.split("-")[0]}"\n'
                      for n, p in paths.items())
    common = f"""[data]
path = "{data.name}"
name = "docstrings"
validation_size = {s["val"]}
test_size = {s["test"]}

{cands}
[finetune]
method = "full"
learning_rate = {s["lr"]}
batch_size = 8
max_length = 128
device = "{device}"
"""
    run_cfg = work / "brute_force.toml"
    run_cfg.write_text(f"""[experiment]
sizes = [{s["target"]}]
seeds = [0]
zero_shot = false
store = "select.sqlite"
threads = 1

{common}""")
    sel_cfg = work / "select.toml"
    sel_cfg.write_text(f"""[experiment]
sizes = {s["sizes"]}
seeds = [0]
store = "select.sqlite"
threads = 1

{common}
[selection]
target = {s["target"]}
max_data = {s["target"] // s["ratio"]}

[ntk]
n = {s["ntk_n"]}
dim = {s["ntk_dim"]}
params = "lora"
""")
    return run_cfg, sel_cfg


def _cli(args: list[str], log_path: Path) -> tuple[float, str]:
    """Run ``lensllm <args>`` in a subprocess; its wall time and stdout."""
    start = time.perf_counter()
    with log_path.open("w") as err:
        proc = subprocess.run([sys.executable, "-m", "lensllm.cli", *args], stdout=subprocess.PIPE,
                              stderr=err, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-5:]
        raise SystemExit(f"lensllm {args[0]} failed ({proc.returncode}): " + " | ".join(tail))
    return wall, proc.stdout


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="the same steps on the CPU with a zoo of tiny models")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="default: cuda, or cpu with --small")
    parser.add_argument("--work", type=Path, default=None,
                        help="work folder (zoo, task, store, logs); default a temporary one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    device = args.device or ("cpu" if args.small else "cuda")
    s = SETTINGS["small" if args.small else "gpu"]
    with tempfile.TemporaryDirectory(prefix="gpu_select_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        return _run(work, device, s, small=args.small)


def _run(work: Path, device: str, s: dict, *, small: bool) -> dict:
    import torch

    from lensllm.finetune.models import parameter_count
    from lensllm.zoo import build_zoo

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    start = time.perf_counter()
    specs = zoo_specs(small)
    paths = build_zoo(specs, root=work / "zoo", device="cuda" if device == "auto" and
                      torch.cuda.is_available() else device, log=print)
    zoo_s = time.perf_counter() - start
    for name, path in paths.items():
        print(f"  {name}: {parameter_count(str(path)) / 1e6:.1f}M parameters", flush=True)
    print(f"zoo of {len(paths)} models on {device}: {zoo_s:.1f} s", flush=True)
    run_cfg, sel_cfg = write_configs(work, paths, s, device)
    brute_s, _ = _cli(["run", "--config", str(run_cfg)], work / "brute_force.log")
    print(f"brute force, every candidate at D*={s['target']}: {brute_s:.1f} s", flush=True)
    select_s, out = _cli(["select", "--config", str(sel_cfg), "--json", "--quiet"],
                         work / "select.log")
    record = json.loads(out)
    (work / "select.json").write_text(out)
    truth = record.get("truth") or {}
    relacc = truth.get("relacc")
    budget = s["target"] // s["ratio"]
    print(f"select ({record.get('method')}, budget D*/{s['ratio']} = {budget}): "
          f"{select_s:.1f} s, selected {Path(record['selected']).name}, cost source "
          f"{record['full_cost_source']}, PearCorr {truth.get('pearcorr')}, converged "
          f"{(record.get('convergence') or {}).get('share_converged')}; "
          f"{record.get('headline')}", flush=True)
    print(f"select_wall_s={select_s:.1f} brute_force_wall_s={brute_s:.1f} "
          f"cost_fraction={record['cost_fraction']:.4f} "
          f"relacc={'nan' if relacc is None else format(relacc, '.4f')}", flush=True)
    return {"select_wall_s": select_s, "brute_force_wall_s": brute_s, "zoo_s": zoo_s,
            "cost_fraction": record["cost_fraction"], "relacc": relacc, "record": record}


if __name__ == "__main__":
    main()
