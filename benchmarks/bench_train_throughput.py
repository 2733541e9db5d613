"""Training throughput: lensllm's engine against ``transformers.Trainer`` on identical batches.

Both train the same Llama-shaped, randomly initialised model (no download; the weights are
copied so both start from the same state) on the same fixed-length token batches, with the
same optimizer settings: AdamW (fused), peak learning rate 1e-4 with warmup and cosine
decay, gradient clipping at 1.0; bf16 autocast on CUDA, fp32 on CPU. Each side runs a few
warm-up steps (not timed), then ``--steps`` timed steps; the two alternate ``--repeats``
times and the best throughput of each is kept.

Throughput counts the tokens of the timed steps (batch x sequence length) per second of
wall time, synchronised with the device at both ends. Model FLOPs utilisation (MFU) counts
``6 N + 12 n_layers d_model seq_len`` FLOPs per token (weights plus attention scores,
the PaLM convention) against the device's dense bf16 peak (``--peak-tflops``; known for
H100/H200 SXM: 989).

Usage::

    python benchmarks/bench_train_throughput.py                       # CPU, small, 1 thread
    python benchmarks/bench_train_throughput.py --device cuda --model 300m

Last line: ``train_tok_per_s_ratio=<lensllm/Trainer> lensllm_tok_per_s=<x>
trainer_tok_per_s=<y>`` followed by MFU and peak memory figures.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402

from lensllm.finetune.batches import TokenizedSplit  # noqa: E402
from lensllm.finetune.config import FinetuneConfig  # noqa: E402
from lensllm.finetune.engine import TrainEngine  # noqa: E402

#: Llama shapes: (hidden, layers, heads, intermediate). 300m is 309M parameters with the
#: 384-id byte vocabulary; small runs on one CPU thread in seconds.
MODELS = {
    "small": (128, 4, 4, 352),
    "25m": (512, 8, 8, 1376),
    "300m": (1024, 24, 16, 2816),
}
VOCAB = 384
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}


def build_model(name: str, seed: int) -> transformers.PreTrainedModel:
    hidden, layers, heads, inter = MODELS[name]
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=inter,
        max_position_embeddings=4096, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(config)


def make_rows(n: int, seq: int, seed: int) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (n, seq), generator=gen).tolist()


def finetune_config(device: torch.device, total_steps: int) -> FinetuneConfig:
    return FinetuneConfig(learning_rate=1e-4, warmup_ratio=0.1, lr_schedule="cosine",
                          max_grad_norm=1.0, precision="auto", device=device.type,
                          min_steps=total_steps)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_lensllm(model, rows, batch, warmup, steps, device) -> tuple[float, float, float]:
    """Seconds of the timed steps, peak GiB and mean training loss, through lensllm's
    engine and batching."""
    model = model.to(device)
    split = TokenizedSplit([(r, r) for r in rows], pad_id=0, encoder_decoder=False)
    engine = TrainEngine(model, finetune_config(device, warmup + steps), device,
                         planned_steps=warmup + steps, warmup_steps=(warmup + steps) // 10)
    _reset_peak(device)
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        first = (step * batch) % len(rows)
        engine.step([split.batch(range(first, first + batch)).to(device)])
    loss = engine.read_train_loss()  # the loop's only host synchronisation, as in a run
    sync(device)
    return time.perf_counter() - start, _peak(device), loss


class _StepClock(transformers.TrainerCallback):
    """Wall time from the end of the warm-up steps to the end of training."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.start = warmup, device, 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()


def run_trainer(model, rows, batch, warmup, steps, device) -> tuple[float, float, float]:
    """Seconds of the timed steps, peak GiB and mean training loss, through
    ``transformers.Trainer``."""
    data = [{"input_ids": torch.tensor(r), "labels": torch.tensor(r)} for r in rows]
    clock = _StepClock(warmup, device)
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch, max_steps=warmup + steps,
            learning_rate=1e-4, warmup_steps=(warmup + steps) // 10,
            lr_scheduler_type="cosine", max_grad_norm=1.0, weight_decay=0.0,
            optim="adamw_torch_fused", bf16=device.type == "cuda",
            use_cpu=device.type == "cpu", logging_strategy="no", disable_tqdm=True, save_strategy="no",
            report_to=[], dataloader_num_workers=0, seed=0,
        )
        trainer = transformers.Trainer(model=model, args=args, train_dataset=data,
                                       callbacks=[clock])
        _reset_peak(device)
        loss = trainer.train().training_loss
        sync(device)
    return time.perf_counter() - clock.start, _peak(device), loss


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model", default="small", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=None, help="default 16 on CUDA, 8 on CPU")
    parser.add_argument("--seq", type=int, default=None, help="default 512 on CUDA, 128 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (32 CUDA, 12 CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="alternations; best kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense bf16 peak for MFU (default: known H100/H200 value)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (16 if cuda else 8)
    seq = args.seq or (512 if cuda else 128)
    steps = args.steps or (32 if cuda else 12)
    torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    base = build_model(args.model, seed=0)
    n_params = sum(p.numel() for p in base.parameters())
    rows = make_rows(batch * (args.warmup + steps), seq, seed=1)
    tokens = batch * seq * steps
    best = {"lensllm": (0.0, 0.0), "trainer": (0.0, 0.0)}
    for _ in range(args.repeats):
        for name, fn in (("lensllm", run_lensllm), ("trainer", run_trainer)):
            seconds, peak, loss = fn(copy.deepcopy(base), rows, batch, args.warmup, steps,
                                     device)
            rate = tokens / seconds
            print(f"{name:8s} {rate:10.0f} tok/s  {seconds:7.3f} s  peak {peak:.2f} GiB  "
                  f"mean train loss {loss:.4f}", flush=True)
            if rate > best[name][0]:
                best[name] = (rate, peak)
    hidden, layers, _, _ = MODELS[args.model]
    flops_per_token = 6 * n_params + 12 * layers * hidden * seq
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak_tflops = args.peak_tflops or next(
        (v for k, v in PEAK_TFLOPS.items() if k in name), None)
    mfu = {k: (v[0] * flops_per_token / (peak_tflops * 1e12) if peak_tflops else float("nan"))
           for k, v in best.items()}
    print(f"device {name}; model {args.model} ({n_params / 1e6:.1f}M parameters); "
          f"batch {batch} x {seq} tokens; {steps} timed steps; torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    ours, theirs = best["lensllm"][0], best["trainer"][0]
    print(f"train_tok_per_s_ratio={ours / theirs:.3f} lensllm_tok_per_s={ours:.0f} "
          f"trainer_tok_per_s={theirs:.0f} lensllm_mfu={mfu['lensllm']:.3f} "
          f"trainer_mfu={mfu['trainer']:.3f} lensllm_peak_gib={best['lensllm'][1]:.2f} "
          f"trainer_peak_gib={best['trainer'][1]:.2f}")


if __name__ == "__main__":
    main()
