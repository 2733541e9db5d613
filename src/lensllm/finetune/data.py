"""Task data: loading task sources, nested subsets, splits, tokenisation and scored bytes.

A task is read from a local JSONL, CSV or Parquet file, a directory saved by ``datasets``,
or a ``datasets`` dataset (:mod:`lensllm.finetune.sources`), and mapped onto examples of
one kind (:mod:`lensllm.finetune.fields`): ``causal`` (``text``), ``seq2seq``
(``source``/``target``, instruction records through a prompt template) or ``chat``
(``messages``). A missing or non-string field is an error naming the source, record and
field, because a silently skipped example would change which examples the subsets hold.

Subsets are nested by construction: one seeded permutation of the training pool, and the
D-example subset is its first D entries, so the 2D-example subset contains the D-example one
for every seed.

Losses comparable across tokenizers: every scored token belongs to a known piece of text
(a causal example's whole text, a target, the assistant turns of a chat), so a run can
divide its summed loss by the UTF-8 bytes of that text (:func:`scored_bytes`), a count that
does not depend on the tokenizer. For that, a causal example is scored from its first
token on: it is read after a start token (the tokenizer's BOS, else its EOS) and ends with
EOS, the same rule a seq2seq target follows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lensllm.exceptions import ConfigError, InputError
from lensllm.finetune.chat import chat_row, encode, start_token_id
from lensllm.finetune.config import file_sha256
from lensllm.finetune.fields import TASK_KINDS, map_records
from lensllm.finetune.sources import read_dataset_records, read_file_records

__all__ = [
    "TASK_KINDS",
    "TaskData",
    "DataSplit",
    "load_task_data",
    "load_data",
    "split_indices",
    "nested_subset_indices",
    "encode_examples",
    "tokenize_rows",
    "scored_bytes",
    "truncated_examples",
]

#: How causal examples are scored; part of every causal run's config hash, because runs
#: before it left each text's first token unscored (and are kept apart from these).
CAUSAL_SCORING = "start-token+eos"


@dataclass(frozen=True)
class TaskData:
    """The examples of one task source.

    Attributes:
        kind: ``"causal"`` (``text``), ``"seq2seq"`` (``source``/``target``) or ``"chat"``
            (``messages``).
        examples: one dict per example holding only the fields of ``kind``, in source order.
        path: the file, directory or dataset name they came from.
        fingerprint: SHA-256 of the content (the file's bytes for a plain file read without
            a mapping, else the mapped examples), for the run key.
    """

    kind: str
    examples: tuple[dict[str, Any], ...]
    path: Path
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def scoring(self) -> str:
        """What the config hash records about how examples are scored ("" when unchanged
        since the first store format)."""
        return CAUSAL_SCORING if self.kind == "causal" else ""


@dataclass(frozen=True)
class DataSplit:
    """Disjoint index sets into a task's examples, each sorted ascending.

    Attributes:
        train: the pool nested subsets are drawn from, shape ``(n_train,)``.
        validation: examples early stopping watches, shape ``(n_validation,)``.
        test: examples the reported test loss is measured on, shape ``(n_test,)``.
    """

    train: tuple[int, ...]
    validation: tuple[int, ...]
    test: tuple[int, ...]


def load_task_data(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    prompt_template: str = "",
    split: str = "train",
) -> TaskData:
    """Read a task file (``.jsonl``/``.json``, ``.csv``, ``.parquet``) or a saved dataset
    directory, and map its records onto examples.

    Without ``fields`` or ``prompt_template`` the kind is decided by the first record (see
    :mod:`lensllm.finetune.fields`); every later record must have the same fields.

    Args:
        path: the file or directory to read.
        fields: role -> column name (``{"text": "body"}``).
        prompt_template: a built-in template name or a ``{column}`` format string giving
            the source of instruction records.
        split: the split of a saved ``DatasetDict`` directory.

    Returns:
        The examples, with only the fields of their kind kept.

    Raises:
        ConfigError: the source does not exist, has an unsupported extension or needs a
            package that is missing; the mapping is invalid.
        InputError: a line is not valid JSON, a field is missing, empty or not a string, or
            the source holds no examples. The message names the source, record and field.
    """
    path = Path(path)
    records = read_file_records(path, split=split)
    kind, examples = map_records(records, str(path), fields=fields,
                                 prompt_template=prompt_template)
    plain_file = path.is_file() and not fields and not prompt_template
    return TaskData(kind=kind, examples=tuple(examples), path=path,
                    fingerprint=file_sha256(path) if plain_file else _content_sha256(
                        kind, examples))


def load_data(config) -> TaskData:
    """The task of a :class:`lensllm.finetune.config.DataConfig`: its ``path`` or its
    ``datasets`` source, mapped by its ``fields`` and ``prompt_template``."""
    if not config.dataset:
        return load_task_data(config.path, fields=config.fields,
                              prompt_template=config.prompt_template, split=config.split)
    records = read_dataset_records(config.dataset, config=config.dataset_config,
                                   split=config.split)
    label = config.dataset + (f" ({config.dataset_config})" if config.dataset_config else "")
    kind, examples = map_records(records, f"{label}, split {config.split}",
                                 fields=config.fields, prompt_template=config.prompt_template)
    return TaskData(kind, tuple(examples), Path(config.dataset), _content_sha256(kind, examples))


def _content_sha256(kind: str, examples: Sequence[Mapping[str, Any]]) -> str:
    text = json.dumps({"kind": kind, "examples": list(examples)}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_indices(
    n_total: int, *, n_validation: int, n_test: int, seed: int = 0
) -> DataSplit:
    """Split ``n_total`` examples into train, validation and test, deterministically.

    One permutation seeded by ``seed`` (the *split* seed, fixed for a whole experiment so
    every run is scored on the same test examples): the first ``n_test`` indices are the
    test split, the next ``n_validation`` the validation split, the rest the training pool.

    Args:
        n_total: number of examples in the task.
        n_validation: size of the validation split (>= 1).
        n_test: size of the test split (>= 1).
        seed: the split seed.

    Returns:
        The three disjoint index sets.

    Raises:
        ConfigError: the splits leave no training examples or a size is < 1.
    """
    if n_validation < 1 or n_test < 1:
        raise ConfigError(
            f"`validation_size` and `test_size` must be >= 1, got {n_validation} and {n_test}"
        )
    if n_validation + n_test >= n_total:
        raise ConfigError(
            f"`validation_size` + `test_size` = {n_validation + n_test} leaves no training "
            f"examples out of {n_total}"
        )
    perm = np.random.default_rng(seed).permutation(n_total)
    test = perm[:n_test]
    validation = perm[n_test : n_test + n_validation]
    train = perm[n_test + n_validation :]
    return DataSplit(
        train=tuple(int(i) for i in np.sort(train)),
        validation=tuple(int(i) for i in np.sort(validation)),
        test=tuple(int(i) for i in np.sort(test)),
    )


def nested_subset_indices(
    n_total: int, sizes: Sequence[int], seed: int
) -> dict[int, tuple[int, ...]]:
    """Seeded nested subsets of ``range(n_total)``: each is a prefix of one permutation.

    The permutation depends only on ``(n_total, seed)``, never on ``sizes``, so a run of
    size D draws the same examples whichever other sizes the experiment asks for, and the
    subset of size 2D contains the one of size D.

    Args:
        n_total: size of the pool (the training split).
        sizes: subset sizes, each in ``[1, n_total]``.
        seed: the run seed.

    Returns:
        A map from each size to its indices into the pool, in permutation order (the order
        the examples are first seen in).

    Raises:
        ConfigError: a size is < 1 or larger than the pool.
    """
    for size in sizes:
        if not 1 <= int(size) <= n_total:
            raise ConfigError(
                f"subset size {size} must be between 1 and the training pool size {n_total}"
            )
    perm = np.random.default_rng(seed).permutation(n_total)
    return {int(size): tuple(int(i) for i in perm[: int(size)]) for size in sizes}


def encode_examples(
    tokenizer,
    examples: Sequence[Mapping[str, str]],
    kind: str,
    *,
    max_length: int,
    is_encoder_decoder: bool,
) -> dict[str, torch.Tensor]:
    """Tokenise examples into one right-padded batch with the positions to score.

    - causal model, ``text``: the input is a start token (BOS, else EOS), the text, then
      EOS; ``labels`` equal ``input_ids`` (the model shifts them) except the start token's
      -100, so every text token and the EOS are targets.
    - causal model, ``source``/``target``: the input is source then target (then EOS); only
      the target tokens are scored, source positions get label -100.
    - encoder-decoder model, ``source``/``target``: ``input_ids`` is the source, ``labels``
      the target ids (then EOS); the model builds the decoder inputs from the labels.
    - causal model, ``messages``: the chat rendered by the tokenizer's chat template, only
      the assistant turns scored (:func:`lensllm.finetune.chat.chat_row`).

    Args:
        tokenizer: a Hugging Face tokenizer.
        examples: dicts with ``text``, ``source``/``target`` or ``messages``.
        kind: ``"causal"``, ``"seq2seq"`` or ``"chat"``, as in :class:`TaskData`.
        max_length: maximum tokens per sequence (per side for encoder-decoder models);
            longer sequences are truncated on the right.
        is_encoder_decoder: whether the model is an encoder-decoder.

    Returns:
        ``input_ids`` and ``attention_mask`` of shape ``(n_examples, seq_len)`` and
        ``labels`` of shape ``(n_examples, seq_len)`` (``(n_examples, target_len)`` for
        encoder-decoder models), -100 where a position is not scored (padding included).

    Raises:
        ConfigError: an encoder-decoder model on ``text`` or chat data, an unknown kind,
            ``max_length`` < 2, or chat data for a tokenizer without a chat template.
    """
    if not examples:
        raise InputError("no examples to encode")
    rows = tokenize_rows(tokenizer, examples, kind, max_length=max_length,
                         is_encoder_decoder=is_encoder_decoder)
    input_ids, attention_mask = _pad([ids for ids, _ in rows], pad_token_id(tokenizer))
    labels, _ = _pad([labels for _, labels in rows], -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def tokenize_rows(
    tokenizer,
    examples: Sequence[Mapping[str, Any]],
    kind: str,
    *,
    max_length: int,
    is_encoder_decoder: bool,
) -> list[tuple[list[int], list[int]]]:
    """Tokenise examples without padding: one ``(input_ids, labels)`` pair per example.

    The rules are those of :func:`encode_examples` (which pads these rows into a batch);
    a training run calls this once and pads each batch to its own longest row. Chat
    examples follow :func:`lensllm.finetune.chat.chat_row` (labels -100 outside the
    assistant turns).
    """
    if kind not in TASK_KINDS:
        raise ConfigError(f"task kind must be one of {sorted(TASK_KINDS)}, got '{kind}'")
    if max_length < 2:
        raise ConfigError(f"`max_length` must be >= 2, got {max_length}")
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if is_encoder_decoder:
        if kind != "seq2seq":
            raise ConfigError(
                f"an encoder-decoder model needs 'source'/'target' data, got {kind} data"
            )
        return [(encode(tokenizer, ex["source"], True)[:max_length],
                 (encode(tokenizer, ex["target"], False) + eos)[:max_length])
                for ex in examples]
    if kind == "chat":
        return [chat_row(tokenizer, ex["messages"], max_length=max_length) for ex in examples]
    rows: list[tuple[list[int], list[int]]] = []
    for ex in examples:
        if kind == "causal":
            start = start_token_id(tokenizer)
            ids = ([start] + encode(tokenizer, ex["text"], False) + eos)[:max_length]
            rows.append((ids, [-100] + ids[1:]))
            continue
        src = encode(tokenizer, ex["source"], True)
        if eos and src and src[-1] == eos[0]:
            src = src[:-1]  # tokenizers that end every text with EOS (T5, ByT5)
        tgt = encode(tokenizer, ex["target"], False) + eos
        if len(src) + len(tgt) > max_length:
            # Keep at least half the window for the target, so something is scored.
            n_tgt = min(len(tgt), max(max_length - len(src), max_length // 2))
            tgt = tgt[:n_tgt]
            src = src[: max_length - n_tgt]
        rows.append((src + tgt, [-100] * len(src) + tgt))
    return rows


def scored_bytes(examples: Sequence[Mapping[str, Any]], kind: str) -> list[int]:
    """UTF-8 bytes of the text whose tokens are scored, per example, whatever the tokenizer.

    A causal example's whole ``text``, a seq2seq ``target``, the ``content`` of a chat's
    assistant turns. End markers (EOS, a chat template's end of turn) are scored but hold
    no bytes of the text. Dividing a run's summed loss (nats) by these bytes gives nats per
    byte, comparable across tokenizers as long as no scored text was truncated (see
    :func:`truncated_examples`).
    """
    if kind == "causal":
        return [len(ex["text"].encode("utf-8")) for ex in examples]
    if kind == "seq2seq":
        return [len(ex["target"].encode("utf-8")) for ex in examples]
    if kind == "chat":
        return [sum(len(m["content"].encode("utf-8")) for m in ex["messages"]
                    if m["role"] == "assistant") for ex in examples]
    raise ConfigError(f"task kind must be one of {sorted(TASK_KINDS)}, got '{kind}'")


def truncated_examples(
    tokenizer,
    examples: Sequence[Mapping[str, Any]],
    kind: str,
    *,
    max_length: int,
    is_encoder_decoder: bool,
) -> int:
    """How many examples lose scored tokens to ``max_length`` (their scored bytes are then
    not all scored, and a per-byte loss would undercount bytes' worth of loss)."""
    def n_scored(rows):
        return [sum(1 for t in labels if t != -100) for _, labels in rows]

    cut = tokenize_rows(tokenizer, examples, kind, max_length=max_length,
                        is_encoder_decoder=is_encoder_decoder)
    full = tokenize_rows(tokenizer, examples, kind, max_length=1 << 30,
                         is_encoder_decoder=is_encoder_decoder)
    return sum(a != b for a, b in zip(n_scored(cut), n_scored(full)))


def pad_token_id(tokenizer) -> int:
    """The id padding uses: the pad token, else EOS, else 0 (padding is never scored)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _pad(rows: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad integer rows to one tensor; also return the 0/1 mask of real entries."""
    width = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return out, mask
