"""Training throughput: a run's training loop against ``transformers.Trainer`` on the same batches.

lensllm's side is the code a ``lensllm run`` executes, not a loop written for the benchmark:
the model is loaded by :class:`lensllm.finetune.train._RunSetup` from a folder (as any local
model), the task file is read by :func:`lensllm.finetune.data.load_task_data` and tokenised
by the run, the steps come from the run's own batching (``_step_batches``: seeded epochs,
micro-batches grouped by length) and go through :meth:`TrainEngine.step` (its output layer
at the scored positions only). The Trainer is given exactly the batches lensllm trained
on, in the same order, as a user would feed it: padded ``input_ids``, ``attention_mask``
and ``labels`` (-100 outside the scored tokens), one batch per step; it computes the
model's own loss over full logits.

Both start from the same saved Llama-shaped random-init model with the same optimizer
settings: AdamW (fused), learning rate 1e-4 with cosine decay and no warmup (the two
libraries' warmups differ by one step), gradient clipping at 1.0; bf16 autocast on CUDA,
fp32 on CPU. Each side runs ``--warmup`` steps (not timed), then ``--steps`` timed ones;
the two alternate ``--repeats`` times and the best throughput of each is kept. The mean
training loss of the timed steps (token-weighted) is compared: the two compute the same
thing, so they must agree (``loss_rel_diff``).

Tasks (``--task``):

- ``causal``: windows of the standard library's ``pydoc_data.topics``, every example
  ``--seq`` tokens (byte-level tokenizer), every position scored;
- ``seq2seq``: the zoo's docstring task (``lensllm.zoo.docstrings``: a callable's name ->
  the first sentence of its docstring), decoder-only as lensllm trains it: source and
  target concatenated, only the target scored; lengths vary from example to example.

``--vocab`` sets the output layer's size (tied to the embeddings above 384 ids, as Gemma-3
does): ``--vocab 262144`` is a Gemma-3-sized head, where computing logits at every
position is most of a small model's step.

Throughput counts the non-padding tokens of the timed steps per second of wall time,
synchronised with the device at both ends. MFU counts ``6 N + 12 n_layers d_model seq_len``
FLOPs per token against the device's dense bf16 peak (``--peak-tflops``; known for
H100/H200 SXM: 989).

Usage::

    python benchmarks/bench_train_throughput.py                       # CPU, small, 1 thread
    python benchmarks/bench_train_throughput.py --task seq2seq --vocab 262144
    python benchmarks/bench_train_throughput.py --device cuda --model 300m

Last line: ``train_tok_per_s_ratio=<lensllm/Trainer> lensllm_tok_per_s=<x>
trainer_tok_per_s=<y> loss_rel_diff=<z>`` followed by MFU and peak memory figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402

from lensllm.finetune.batches import IGNORE  # noqa: E402
from lensllm.finetune.config import FinetuneConfig  # noqa: E402
from lensllm.finetune.data import load_task_data  # noqa: E402
from lensllm.finetune.train import _RunSetup, _step_batches  # noqa: E402

#: Llama shapes: (hidden, layers, heads, intermediate). 300m is 309M parameters with the
#: 384-id byte vocabulary; small runs on one CPU thread in seconds.
MODELS = {
    "small": (128, 4, 4, 352),
    "25m": (512, 8, 8, 1376),
    "300m": (1024, 24, 16, 2816),
}
BYTE_VOCAB = 384
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}


def write_model(path: Path, name: str, vocab: int) -> int:
    """Save a seeded random-init Llama of shape ``name`` with a ``vocab``-id output layer
    and the byte-level tokenizer; return its parameter count."""
    hidden, layers, heads, inter = MODELS[name]
    tokenizer = transformers.ByT5Tokenizer()
    config = transformers.LlamaConfig(
        vocab_size=max(vocab, BYTE_VOCAB), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=inter,
        max_position_embeddings=4096, pad_token_id=0, eos_token_id=1, bos_token_id=1,
        tie_word_embeddings=vocab > BYTE_VOCAB,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def write_task(path: Path, kind: str, n: int, seq: int) -> None:
    """``n`` examples of the task ``kind`` as a JSON-lines file."""
    if kind == "seq2seq":
        from lensllm.zoo.docstrings import make_docstring_task

        rows = make_docstring_task(n, seed=0)
    else:
        from pydoc_data.topics import topics

        text = " ".join(" ".join(v.split()) for _, v in sorted(topics.items()))
        chars = seq - 2  # + start token + EOS = seq byte-level tokens
        rows = [{"text": text[i * (chars + 7): i * (chars + 7) + chars]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def finetune_config(device: torch.device, batch: int, seq: int) -> FinetuneConfig:
    """One epoch over exactly the benchmark's steps, cosine decay, no warmup."""
    return FinetuneConfig(learning_rate=1e-4, warmup_ratio=0.0, lr_schedule="cosine",
                          max_grad_norm=1.0, precision="auto", device=device.type,
                          batch_size=batch, epochs=1.0, min_steps=1, max_length=seq)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_lensllm(model_path: str, data: Path, args, device) -> dict:
    """The run's own path: load, tokenise, batch, step. Returns seconds and tokens of the
    timed steps, peak GiB, the timed steps' mean loss and the batches (for the Trainer)."""
    task = load_task_data(data)
    config = finetune_config(device, args.batch, args.seq)
    total = args.warmup + args.steps
    plan = config.plan(len(task))
    if plan.planned_steps != total:
        raise SystemExit(f"the recipe plans {plan.planned_steps} steps, not {total}")
    run = _RunSetup.load(model_path, task, config, "", training=True, seed=0)
    split = run.split(list(task.examples))
    engine = run.engine(plan)
    steps: list[list] = []
    _reset_peak(device)
    for micro in _step_batches(split, plan, config, 0):
        if len(steps) == args.warmup:
            engine.read_train_loss()
            sync(device)
            start = time.perf_counter()
        engine.step([b.to(device) for b in micro])
        steps.append(micro)
    loss = engine.read_train_loss()  # the loop's only host synchronisation, as in a run
    sync(device)
    seconds = time.perf_counter() - start
    tokens = sum(b.tokens for micro in steps[args.warmup:] for b in micro)
    del engine, run
    return {"seconds": seconds, "tokens": tokens, "peak": _peak(device), "loss": loss,
            "steps": steps}


def _hf_batch(batch) -> dict[str, torch.Tensor]:
    """A decoder-only lensllm batch as a Trainer user feeds it: unshifted labels (-100
    where nothing is scored) and the attention mask of the right padding."""
    ids = batch.inputs["input_ids"]
    labels = torch.full_like(ids, IGNORE)
    labels[:, 1:] = batch.targets[:, :-1]
    scored = batch.targets != IGNORE
    # every row ends with a scored token (its EOS predicted at its second-to-last position)
    last = torch.where(scored, torch.arange(ids.shape[1]), -1).max(dim=1).values + 2
    mask = (torch.arange(ids.shape[1])[None, :] < last[:, None]).long()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class _InOrder(transformers.Trainer):
    """A Trainer that takes its dataset in order (the batches lensllm trained on) and
    keeps each step's loss on the device."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.step_losses: list[torch.Tensor] = []

    def _get_train_sampler(self, *args, **kwargs):
        return torch.utils.data.SequentialSampler(self.train_dataset)

    def compute_loss(self, model, inputs, *args, **kwargs):
        loss = super().compute_loss(model, inputs, *args, **kwargs)
        value = loss[0] if isinstance(loss, tuple) else loss
        self.step_losses.append(value.detach())
        return loss


class _StepClock(transformers.TrainerCallback):
    """Wall time from the end of the warm-up steps to the end of training."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.start = warmup, device, 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()


def run_trainer(model_path: str, steps: list[list], args, device) -> dict:
    """``transformers.Trainer`` on the same batches, in the same order."""
    if any(len(micro) != 1 for micro in steps):
        raise SystemExit("the Trainer side needs one micro-batch per step")
    data = [_hf_batch(micro[0]) for micro in steps]
    model = transformers.AutoModelForCausalLM.from_pretrained(model_path,
                                                              attn_implementation="sdpa")
    clock = _StepClock(args.warmup, device)
    with tempfile.TemporaryDirectory() as out:
        targs = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=1, max_steps=len(steps),
            learning_rate=1e-4, warmup_steps=0, lr_scheduler_type="cosine",
            max_grad_norm=1.0, weight_decay=0.0, optim="adamw_torch_fused",
            bf16=device.type == "cuda", use_cpu=device.type == "cpu", logging_strategy="no",
            disable_tqdm=True, save_strategy="no", report_to=[], dataloader_num_workers=0,
            seed=0,
        )
        trainer = _InOrder(model=model, args=targs, train_dataset=data,
                           data_collator=lambda items: items[0], callbacks=[clock])
        _reset_peak(device)
        trainer.train()
        sync(device)
    seconds = time.perf_counter() - clock.start
    timed = steps[args.warmup:]
    weights = [micro[0].scored for micro in timed]
    losses = [float(x) for x in trainer.step_losses[args.warmup:]]
    loss = sum(w * x for w, x in zip(weights, losses, strict=True)) / sum(weights)
    tokens = sum(micro[0].tokens for micro in timed)
    return {"seconds": seconds, "tokens": tokens, "peak": _peak(device), "loss": loss}


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model", default="small", choices=sorted(MODELS))
    parser.add_argument("--task", default="causal", choices=("causal", "seq2seq"))
    parser.add_argument("--vocab", type=int, default=BYTE_VOCAB,
                        help="output layer size (default: %(default)s, the byte vocabulary)")
    parser.add_argument("--batch", type=int, default=None, help="default 16 on CUDA, 8 on CPU")
    parser.add_argument("--seq", type=int, default=None,
                        help="tokens per example, the max_length of seq2seq (default 512 on "
                             "CUDA, 128 on CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (32 CUDA, 12 CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="alternations; best kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense bf16 peak for MFU (default: known H100/H200 value)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    args.batch = args.batch or (16 if cuda else 8)
    args.seq = args.seq or (512 if cuda else 128)
    args.steps = args.steps or (32 if cuda else 12)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    best = {"lensllm": None, "trainer": None}
    with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp:
        model_path = str(Path(tmp) / "model")
        n_params = write_model(Path(model_path), args.model, args.vocab)
        data = Path(tmp) / "task.jsonl"
        write_task(data, args.task, args.batch * (args.warmup + args.steps), args.seq)
        for _ in range(args.repeats):
            ours = run_lensllm(model_path, data, args, device)
            theirs = run_trainer(model_path, ours.pop("steps"), args, device)
            for name, r in (("lensllm", ours), ("trainer", theirs)):
                r["rate"] = r["tokens"] / r["seconds"]
                print(f"{name:8s} {r['rate']:10.0f} tok/s  {r['seconds']:7.3f} s  peak "
                      f"{r['peak']:.2f} GiB  mean train loss {r['loss']:.6f}", flush=True)
                if best[name] is None or r["rate"] > best[name]["rate"]:
                    best[name] = r
    return _report(args, best, n_params, device)


def _report(args, best: dict, n_params: int, device: torch.device) -> dict:
    hidden, layers, _, _ = MODELS[args.model]
    flops_per_token = 6 * n_params + 12 * layers * hidden * args.seq
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak_tflops = args.peak_tflops or next(
        (v for k, v in PEAK_TFLOPS.items() if k in name), None)
    mfu = {k: (v["rate"] * flops_per_token / (peak_tflops * 1e12) if peak_tflops
               else float("nan")) for k, v in best.items()}
    ours, theirs = best["lensllm"], best["trainer"]
    rel = abs(ours["loss"] - theirs["loss"]) / abs(theirs["loss"])
    print(f"device {name}; model {args.model} ({n_params / 1e6:.1f}M parameters, vocabulary "
          f"{max(args.vocab, BYTE_VOCAB)}); task {args.task}; batch {args.batch}, max "
          f"{args.seq} tokens; {args.steps} timed steps; torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    print(f"train_tok_per_s_ratio={ours['rate'] / theirs['rate']:.3f} "
          f"lensllm_tok_per_s={ours['rate']:.0f} trainer_tok_per_s={theirs['rate']:.0f} "
          f"loss_rel_diff={rel:.2e} lensllm_mfu={mfu['lensllm']:.3f} "
          f"trainer_mfu={mfu['trainer']:.3f} lensllm_peak_gib={ours['peak']:.2f} "
          f"trainer_peak_gib={theirs['peak']:.2f}")
    sys.stdout.flush()
    return {"ratio": ours["rate"] / theirs["rate"], "loss_rel_diff": rel,
            "lensllm": ours, "trainer": theirs}


if __name__ == "__main__":
    main()
