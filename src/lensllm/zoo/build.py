"""Pretraining the zoo: a BPE tokenizer and small causal LMs trained on the offline corpus.

Models that share an architecture and seed (a *trunk*) share one pretraining run that is
checkpointed at every step count asked for, so ``gpt2-d128-L4-p60`` and
``gpt2-d128-L4-p400`` are the same network after 60 and 400 steps. Checkpoints are saved
as ordinary Hugging Face directories (config, safetensors, tokenizer) under
:func:`zoo_dir`, which any ``[[candidates]] model = "<path>"`` can name; a checkpoint that
exists is never rebuilt (the directory name carries a hash of every setting).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "DEMO_ZOO",
    "FULL_ZOO",
    "PRETRAIN",
    "ZooModel",
    "build_zoo",
    "train_tokenizer",
    "zoo_dir",
]

#: Pretraining settings shared by every zoo model (part of the cache key).
PRETRAIN = {"seq_len": 64, "batch_size": 8, "learning_rate": 2e-3, "warmup": 20,
            "vocab_size": 1024, "corpus": "pydoc_data.topics"}
_ARCHS = ("gpt2", "llama", "opt")
_SPECIALS = ("<pad>", "<eos>", "<unk>")


@dataclass(frozen=True)
class ZooModel:
    """One zoo candidate.

    Attributes:
        arch: ``gpt2``, ``llama`` or ``opt``.
        hidden: hidden size.
        layers: transformer blocks.
        pretrain_steps: optimiser steps of pretraining (0: random initialisation).
        heads: attention heads.
        seed: initialisation and data-order seed.
    """

    arch: str
    hidden: int
    layers: int
    pretrain_steps: int
    heads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.arch not in _ARCHS:
            raise ValueError(f"`arch` must be one of {', '.join(_ARCHS)}, got {self.arch!r}")
        if self.hidden % self.heads or self.hidden < 8 or self.layers < 1:
            raise ValueError(f"bad shape hidden={self.hidden} layers={self.layers} "
                             f"heads={self.heads}")
        if self.pretrain_steps < 0:
            raise ValueError(f"`pretrain_steps` must be >= 0, got {self.pretrain_steps}")

    @property
    def trunk(self) -> str:
        """The shared pretraining run: architecture, shape and seed."""
        return f"{self.arch}-d{self.hidden}-L{self.layers}-h{self.heads}-s{self.seed}"

    @property
    def name(self) -> str:
        """The directory (and table) name, e.g. ``gpt2-d128-L4-p400``."""
        seed = f"-s{self.seed}" if self.seed else ""
        return f"{self.arch}-d{self.hidden}-L{self.layers}-p{self.pretrain_steps}{seed}"


#: The benchmark zoo (``benchmarks/zoo_bench.py``): 9 candidates, 3 architectures,
#: 0.17M to 3.5M parameters, 0 to 400 pretraining steps.
FULL_ZOO: tuple[ZooModel, ...] = (
    ZooModel("gpt2", 64, 2, 400),
    ZooModel("gpt2", 96, 3, 0),
    ZooModel("gpt2", 128, 4, 60),
    ZooModel("gpt2", 128, 4, 400),
    ZooModel("llama", 128, 4, 400),
    ZooModel("opt", 128, 4, 200),
    ZooModel("llama", 192, 4, 300),
    ZooModel("gpt2", 256, 4, 200, heads=4),
    ZooModel("opt", 256, 4, 60, heads=4),
)

#: ``lensllm demo``: four tiny candidates that pretrain in seconds.
DEMO_ZOO: tuple[ZooModel, ...] = (
    ZooModel("gpt2", 48, 2, 0),
    ZooModel("gpt2", 48, 2, 150),
    ZooModel("llama", 64, 2, 150),
    ZooModel("opt", 64, 2, 60),
)


def zoo_dir(root: str | Path | None = None) -> Path:
    """Where checkpoints live: ``root``, else ``$LENSLLM_CACHE/zoo``, else
    ``~/.cache/lensllm/zoo`` (``$XDG_CACHE_HOME`` respected), in a subdirectory named by a
    hash of :data:`PRETRAIN` so a change of settings never reuses stale checkpoints."""
    if root is None:
        base = os.environ.get("LENSLLM_CACHE")
        if base:
            root = Path(base) / "zoo"
        else:
            xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            root = Path(xdg) / "lensllm" / "zoo"
    digest = hashlib.sha256(json.dumps(PRETRAIN, sort_keys=True).encode()).hexdigest()[:10]
    return Path(root) / f"v1-{digest}"


def train_tokenizer(out_dir: Path):
    """Train (once) the byte-level BPE tokenizer on the corpus; return it (a fast HF one)."""
    from transformers import PreTrainedTokenizerFast

    if (out_dir / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(str(out_dir))
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from lensllm.zoo.corpus import pretraining_text

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=PRETRAIN["vocab_size"], special_tokens=list(_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(pretraining_text().split("\n\n"), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>",
                                   eos_token="<eos>", unk_token="<unk>")
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    fast.save_pretrained(str(tmp))
    _publish(tmp, out_dir)
    return fast


def _model_config(spec: ZooModel, tokenizer):
    import transformers as tf

    common = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
              "eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.eos_token_id}
    d, n = spec.hidden, spec.layers
    if spec.arch == "gpt2":
        return tf.GPT2Config(n_embd=d, n_layer=n, n_head=spec.heads, n_positions=256, **common)
    if spec.arch == "llama":
        return tf.LlamaConfig(hidden_size=d, num_hidden_layers=n, num_attention_heads=spec.heads,
                              num_key_value_heads=spec.heads, intermediate_size=int(8 * d / 3),
                              max_position_embeddings=256, **common)
    return tf.OPTConfig(hidden_size=d, num_hidden_layers=n, num_attention_heads=spec.heads,
                        ffn_dim=4 * d, word_embed_proj_dim=d, max_position_embeddings=256,
                        **common)


def _pretrain_trunk(specs: Sequence[ZooModel], root: Path, threads: int,
                    device: str = "cpu") -> dict[str, float]:
    """One pretraining run for models sharing a trunk, on ``device``; saves each requested
    checkpoint (as float32 weights on the host, whatever the device)."""
    import numpy as np
    import torch
    import transformers as tf

    from lensllm.finetune.models import quiet_transformers
    from lensllm.zoo.corpus import pretraining_text

    quiet_transformers()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    tokenizer = train_tokenizer(root / "tokenizer")
    todo = sorted({s.pretrain_steps for s in specs if not (root / s.name / "config.json")
                   .is_file()})
    if not todo:
        return {}
    spec = specs[0]
    config = _model_config(spec, tokenizer)
    torch.manual_seed(zlib.crc32(spec.trunk.encode()))
    model = tf.AutoModelForCausalLM.from_config(config).to(device)
    ids = np.asarray(tokenizer(pretraining_text())["input_ids"], dtype=np.int64)
    seq, batch = PRETRAIN["seq_len"], PRETRAIN["batch_size"]
    rng = np.random.default_rng([spec.seed, 7])
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN["learning_rate"])
    times: dict[str, float] = {}

    def save(step: int) -> None:
        name = ZooModel(spec.arch, spec.hidden, spec.layers, step, spec.heads, spec.seed).name
        tmp = root / f".{name}.tmp{os.getpid()}"
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "zoo.json").write_text(json.dumps(
            {**asdict(spec), "pretrain_steps": step, "pretrain": PRETRAIN}, indent=1))
        _publish(tmp, root / name)
        times[name] = time.perf_counter() - start

    step = 0
    model.train()
    for target in todo:
        while step < target:
            starts = rng.integers(0, ids.size - seq - 1, size=batch)
            x = torch.from_numpy(np.stack([ids[s : s + seq] for s in starts])).to(device)
            lr = PRETRAIN["learning_rate"] * min(1.0, (step + 1) / PRETRAIN["warmup"])
            for group in opt.param_groups:
                group["lr"] = lr
            loss = model(input_ids=x, labels=x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        save(target)
        model.train()
    return times


def _publish(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)


def build_zoo(
    models: Sequence[ZooModel] = FULL_ZOO,
    *,
    root: str | Path | None = None,
    threads: int = 1,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> dict[str, Path]:
    """Pretrain (or find in the cache) every model; return ``{name: checkpoint dir}``.

    Args:
        models: the zoo.
        root: cache root (see :func:`zoo_dir`).
        threads: torch threads per pretraining process.
        workers: trunks pretrained in parallel (separate processes).
        log: receives one line per trunk.
        device: where pretraining runs (``"cuda"`` for a GPU zoo); the checkpoints are the
            same ordinary folders either way.
    """
    root = zoo_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    train_tokenizer(root / "tokenizer")
    trunks: dict[str, list[ZooModel]] = {}
    for m in models:
        trunks.setdefault(m.trunk, []).append(m)
    pending = [specs for specs in trunks.values()
               if not all((root / s.name / "config.json").is_file() for s in specs)]
    if pending:
        start = time.perf_counter()
        if workers > 1 and len(pending) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # biggest trunks first, so the two workers finish together
            pending.sort(key=lambda s: -s[0].hidden ** 2 * s[0].layers * max(
                x.pretrain_steps for x in s))
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_pretrain_trunk, specs, root, threads, device)
                           for specs in pending]
                for fut in futures:
                    for name, sec in fut.result().items():
                        if log:
                            log(f"pretrained {name} ({sec:.0f} s)")
        else:
            for specs in pending:
                for name, sec in _pretrain_trunk(specs, root, threads, device).items():
                    if log:
                        log(f"pretrained {name} ({sec:.0f} s)")
        if log:
            log(f"zoo built in {time.perf_counter() - start:.0f} s under {root}")
    return {m.name: root / m.name for m in models}
