"""Task data: loading JSONL/CSV files, nested subsets, splits and tokenisation.

A task file holds one example per JSONL line or CSV row, either with a ``text`` field
(a *causal* task: the model learns to continue the text) or with ``source`` and ``target``
fields (a *seq2seq* task: the model learns to produce the target from the source). Other
fields are ignored; a missing or non-string field is an error naming the file, line and
field, because a silently skipped example would change which examples the subsets hold.

Subsets are nested by construction: one seeded permutation of the training pool, and the
D-example subset is its first D entries, so the 2D-example subset contains the D-example one
for every seed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lensllm.exceptions import ConfigError, InputError

__all__ = [
    "TASK_KINDS",
    "TaskData",
    "DataSplit",
    "load_task_data",
    "split_indices",
    "nested_subset_indices",
    "encode_examples",
    "tokenize_rows",
]

#: The two kinds of task data and the fields each one needs.
TASK_KINDS: dict[str, tuple[str, ...]] = {"causal": ("text",), "seq2seq": ("source", "target")}


@dataclass(frozen=True)
class TaskData:
    """The examples of one task file.

    Attributes:
        kind: ``"causal"`` (examples have ``text``) or ``"seq2seq"`` (``source``/``target``).
        examples: one dict per example holding only the fields of ``kind``, in file order.
        path: the file they came from.
    """

    kind: str
    examples: tuple[dict[str, str], ...]
    path: Path

    def __len__(self) -> int:
        return len(self.examples)


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


def load_task_data(path: str | Path) -> TaskData:
    """Read a JSONL (``.jsonl``/``.json``) or CSV (``.csv``) task file.

    The kind is decided by the first example: a ``text`` field makes it causal, ``source``
    and ``target`` fields make it seq2seq; every later example must have the same fields.

    Args:
        path: the file to read.

    Returns:
        The examples, with only the fields of their kind kept.

    Raises:
        ConfigError: the file does not exist or has an unsupported extension.
        InputError: a line is not valid JSON, a field is missing, empty or not a string, or
            the file holds no examples. The message names the file, line and field.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file '{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        records = _read_jsonl(path)
    elif suffix == ".csv":
        records = _read_csv(path)
    else:
        raise ConfigError(
            f"data file '{path}' has extension '{suffix}'; use .jsonl (one JSON object per "
            "line) or .csv"
        )
    kind: str | None = None
    examples: list[dict[str, str]] = []
    for line, record in records:
        if kind is None:
            kind = _detect_kind(path, line, record)
        fields = TASK_KINDS[kind]
        example: dict[str, str] = {}
        for field in fields:
            value = record.get(field)
            if not isinstance(value, str) or not value:
                got = "missing" if field not in record else f"{type(value).__name__} {value!r}"
                raise InputError(
                    f"{path}, line {line}: field '{field}' must be a non-empty string "
                    f"(a {kind} task needs {_fields_text(fields)}), got {got}"
                )
            example[field] = value
        examples.append(example)
    if kind is None:
        raise InputError(f"data file '{path}' holds no examples")
    return TaskData(kind=kind, examples=tuple(examples), path=path)


def _fields_text(fields: Sequence[str]) -> str:
    return " and ".join(f"'{f}'" for f in fields)


def _detect_kind(path: Path, line: int, record: Mapping[str, object]) -> str:
    if "text" in record:
        return "causal"
    if "source" in record and "target" in record:
        return "seq2seq"
    found = ", ".join(f"'{k}'" for k in record) or "none"
    raise InputError(
        f"{path}, line {line}: an example needs a 'text' field (causal task) or 'source' and "
        f"'target' fields (seq2seq task); found fields {found}"
    )


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(
                    f"{path}, line {line_no}: expected a JSON object, got "
                    f"{type(record).__name__}"
                )
            records.append((line_no, record))
    return records


def _read_csv(path: Path) -> list[tuple[int, dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        # Line numbers count the header as line 1, as a spreadsheet shows them.
        return [(reader.line_num, dict(row)) for row in reader]


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

    - causal model, ``text``: ``labels`` equal ``input_ids`` (the model shifts them), so
      every token after the first is a target.
    - causal model, ``source``/``target``: the input is source then target (then EOS); only
      the target tokens are scored, source positions get label -100.
    - encoder-decoder model, ``source``/``target``: ``input_ids`` is the source, ``labels``
      the target ids (then EOS); the model builds the decoder inputs from the labels.

    Args:
        tokenizer: a Hugging Face tokenizer.
        examples: dicts with ``text`` or ``source``/``target``.
        kind: ``"causal"`` or ``"seq2seq"``, as in :class:`TaskData`.
        max_length: maximum tokens per sequence (per side for encoder-decoder models);
            longer sequences are truncated on the right.
        is_encoder_decoder: whether the model is an encoder-decoder.

    Returns:
        ``input_ids`` and ``attention_mask`` of shape ``(n_examples, seq_len)`` and
        ``labels`` of shape ``(n_examples, seq_len)`` (``(n_examples, target_len)`` for
        encoder-decoder models), -100 where a position is not scored (padding included).

    Raises:
        ConfigError: an encoder-decoder model on causal ``text`` data, an unknown kind, or
            ``max_length`` < 2.
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
    examples: Sequence[Mapping[str, str]],
    kind: str,
    *,
    max_length: int,
    is_encoder_decoder: bool,
) -> list[tuple[list[int], list[int]]]:
    """Tokenise examples without padding: one ``(input_ids, labels)`` pair per example.

    The rules are those of :func:`encode_examples` (which pads these rows into a batch);
    a training run calls this once and pads each batch to its own longest row.
    """
    if kind not in TASK_KINDS:
        raise ConfigError(f"task kind must be one of {sorted(TASK_KINDS)}, got '{kind}'")
    if max_length < 2:
        raise ConfigError(f"`max_length` must be >= 2, got {max_length}")
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if is_encoder_decoder:
        if kind != "seq2seq":
            raise ConfigError(
                "an encoder-decoder model needs 'source'/'target' data, got causal 'text' data"
            )
        return [(_encode(tokenizer, ex["source"], True)[:max_length],
                 (_encode(tokenizer, ex["target"], False) + eos)[:max_length])
                for ex in examples]
    rows: list[tuple[list[int], list[int]]] = []
    for ex in examples:
        if kind == "causal":
            ids = _encode(tokenizer, ex["text"], True)[:max_length]
            rows.append((ids, list(ids)))
            continue
        src = _encode(tokenizer, ex["source"], True)
        if eos and src and src[-1] == eos[0]:
            src = src[:-1]  # tokenizers that end every text with EOS (T5, ByT5)
        tgt = _encode(tokenizer, ex["target"], False) + eos
        if len(src) + len(tgt) > max_length:
            # Keep at least half the window for the target, so something is scored.
            n_tgt = min(len(tgt), max(max_length - len(src), max_length // 2))
            tgt = tgt[:n_tgt]
            src = src[: max_length - n_tgt]
        rows.append((src + tgt, [-100] * len(src) + tgt))
    return rows


def _encode(tokenizer, text: str, add_special_tokens: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


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
