"""What one process keeps between runs: pristine weights in host memory, tokenised rows.

A selection is dozens of small runs, most of them of a candidate already run in the same
process (``lensllm run`` and ``lensllm select`` execute their runs one after another in one
process; a Ray worker keeps its process between tasks). Loading a model from disk, building
it and tokenising the validation and test splits cost the same for a 16-example run as for
a 16k-example one, so every run would pay them again. Here they are paid once:

- :func:`fresh_model` keeps the first load of each model on the host, untouched (in
  pinned memory when a CUDA device is present), and gives every run a deep copy of it
  whose tensors are copied straight to the run's device (a memory copy instead of reading
  and building the weights again; no second host copy; tied weights stay tied). The run
  wraps its copy with LoRA and trains it; the kept model never changes. Models are
  evicted least recently used first once they hold more than :data:`MAX_HOST_BYTES`.
- :func:`token_rows` tokenises each example once per tokenizer and setting
  (``kind``, ``max_length``, encoder-decoder or not) and returns the cached rows after;
  the nested subsets of a candidate's runs and its fixed validation and test splits are
  the same examples run after run.

Both are exact: a run gets the weights and rows it would have loaded and tokenised itself
(tested), so results do not depend on what ran before in the process.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["MAX_HOST_BYTES", "fresh_model", "copy_to", "token_rows", "clear", "cached_models"]


def _host_budget() -> int:
    """A quarter of the machine's memory, at most 32 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    return int(min(total // 4, 32 * 2**30))


#: Bytes of pristine models kept on the host (least recently used evicted first).
MAX_HOST_BYTES = _host_budget()
#: Tokenisation settings whose rows are kept (least recently used evicted first).
MAX_ROW_TABLES = 16
#: Rows kept per setting; a table that would grow past it starts again (a long-lived
#: process that reloads its task data gets new example objects each time).
MAX_ROWS_PER_TABLE = 200_000

_models: OrderedDict[tuple, tuple[torch.nn.Module, Any, int]] = OrderedDict()
_rows: OrderedDict[tuple, dict[int, tuple[Mapping, tuple[list[int], list[int]]]]] = \
    OrderedDict()


def _nbytes(model: torch.nn.Module) -> int:
    tensors = {t.data_ptr(): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def fresh_model(key: tuple, load: Callable[[], tuple[torch.nn.Module, Any]],
                device: torch.device | str = "cpu"):
    """A run's own copy of a model as loaded, on ``device``, and its tokenizer.

    Args:
        key: what identifies the loaded weights (model id, fingerprint, attention, dtype).
        load: ``load() -> (model, tokenizer)``, called only when ``key`` is not kept; the
            model must be on the host.
        device: where the copy's parameters and buffers are put.

    Returns:
        ``(model, tokenizer)``: a deep copy of the kept model (in eval mode) and the shared
        tokenizer (tokenizers are not modified by runs).
    """
    entry = _models.get(key)
    if entry is None:
        model, tokenizer = load()
        size = _nbytes(model)
        if size > MAX_HOST_BYTES:  # too large to keep: the run takes the loaded model itself
            return model.to(device), tokenizer
        if torch.cuda.is_available():
            _pin(model)
        entry = (model, tokenizer, size)
        _models[key] = entry
        _evict()
    else:
        _models.move_to_end(key)
    model, tokenizer, _ = entry
    return copy_to(model, torch.device(device)), tokenizer


def copy_to(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are copied to ``device``
    directly (``deepcopy`` with those tensors in its memo: one copy each, shared tensors
    stay shared)."""
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if id(tensor) in memo:
            continue
        moved = tensor.detach().to(device, copy=True, non_blocking=tensor.is_pinned())
        if isinstance(tensor, torch.nn.Parameter):
            moved = torch.nn.Parameter(moved, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = moved
    return copy.deepcopy(model, memo)


def _pin(model: torch.nn.Module) -> None:
    """Page-lock the kept weights, so that copies to a GPU are fast and asynchronous."""
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.device.type == "cpu" and not tensor.is_pinned():
                tensor.data = tensor.data.pin_memory()


def _evict() -> None:
    while len(_models) > 1 and sum(e[2] for e in _models.values()) > MAX_HOST_BYTES:
        _models.popitem(last=False)


def token_rows(key: tuple, examples: Sequence[Mapping],
               tokenize: Callable[[Sequence[Mapping]], list]) -> list:
    """Rows of ``examples`` as ``tokenize`` gives them, each example tokenised once per
    ``key`` (the tokenizer's model key and the tokenisation settings).

    Examples are recognised by identity (the task's example dicts, which a process keeps);
    the cache holds a reference to each, so an identity is never reused for another.
    """
    table = _rows.get(key)
    if table is None:
        table = _rows[key] = {}
        while len(_rows) > MAX_ROW_TABLES:
            _rows.popitem(last=False)
    else:
        _rows.move_to_end(key)
    missing = [ex for ex in examples if id(ex) not in table]
    if missing and len(table) + len(missing) > MAX_ROWS_PER_TABLE:
        table.clear()
        missing = list(examples)
    if missing:
        for ex, row in zip(missing, tokenize(missing), strict=True):
            table[id(ex)] = (ex, row)
    return [table[id(ex)][1] for ex in examples]


def cached_models() -> list[tuple]:
    """Keys of the models kept, least recently used first."""
    return list(_models)


def clear() -> None:
    """Forget every kept model and row."""
    _models.clear()
    _rows.clear()
