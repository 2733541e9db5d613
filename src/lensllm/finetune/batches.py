"""Batches of one run: tokenised once, padded per batch, counted on the host.

A run tokenises its subset, validation and test splits once (:class:`TokenizedSplit`).
Each batch is padded to its own longest row, and its token counts (what FLOPs are counted
from) and scored-position counts (what losses are normalised by) are known on the host
before the batch reaches the device, so the training loop never waits for the device to
learn them.

For causal models the targets are shifted here, once, on the host: position ``j`` of
``targets`` is the token the model should predict after reading position ``j``, and the
last position is never scored. The scored positions are also listed here, as flat indices
into ``(batch, length)`` with their target tokens, so that the loss can compute the output
layer at those positions only (:class:`lensllm.finetune.engine.Scorer`) without the device
having to count them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["Batch", "TokenizedSplit"]

IGNORE = -100


@dataclass
class Batch:
    """One padded batch, on the host or on a device.

    Attributes:
        inputs: the model's keyword inputs (``input_ids``, ``attention_mask``; ``labels``
            for encoder-decoders, which build their decoder inputs from them).
        targets: the token to predict at each scored position, ``IGNORE`` elsewhere;
            aligned with the logits.
        tokens: tokens processed (non-padding inputs, plus targets for encoder-decoders).
        scored: positions that count in the loss.
        positions: flat indices (into ``targets.reshape(-1)``) of the scored positions,
            shape ``(scored,)``.
        scored_targets: the target tokens at ``positions``, shape ``(scored,)``.
    """

    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor
    tokens: int
    scored: int
    positions: torch.Tensor | None = None
    scored_targets: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.positions is None:
            self.positions = (self.targets.reshape(-1) != IGNORE).nonzero().reshape(-1)
            self.scored_targets = self.targets.reshape(-1)[self.positions]

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device`` (asynchronous from pinned memory)."""
        if device.type == "cpu":
            return self

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.pin_memory().to(device, non_blocking=True)

        return Batch({k: move(v) for k, v in self.inputs.items()}, move(self.targets),
                     self.tokens, self.scored, move(self.positions),
                     move(self.scored_targets))


class TokenizedSplit:
    """Rows ``(input_ids, labels)`` of one split, padded into batches on demand.

    Args:
        rows: from :func:`lensllm.finetune.data.tokenize_rows`.
        pad_id: the tokenizer's padding id.
        encoder_decoder: whether the model is an encoder-decoder.
    """

    def __init__(self, rows: Sequence[tuple[list[int], list[int]]], pad_id: int,
                 encoder_decoder: bool) -> None:
        self.ids = [torch.tensor(ids, dtype=torch.long) for ids, _ in rows]
        self.labels = [torch.tensor(labels, dtype=torch.long) for _, labels in rows]
        self.pad_id = pad_id
        self.encoder_decoder = encoder_decoder

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, indices: Sequence[int]) -> Batch:
        """The rows at ``indices`` as one batch padded to its longest row."""
        ids = _pad([self.ids[i] for i in indices], self.pad_id)
        lengths = torch.tensor([len(self.ids[i]) for i in indices])
        labels = _pad([self.labels[i] for i in indices], IGNORE)
        tokens = int(lengths.sum())
        if self.encoder_decoder:
            mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
            scored = int((labels != IGNORE).sum())
            inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
            return Batch(inputs, labels, tokens + scored, scored)
        targets = torch.full_like(labels, IGNORE)
        targets[:, :-1] = labels[:, 1:]
        # No attention mask for a decoder-only model: padding is on the right, and a causal
        # model's position j attends to positions <= j only, so no real token ever sees a
        # pad and its logits are those of the unpadded row (tested). Without a mask the
        # attention kernel takes its causal fast path and transformers does not inspect
        # the mask on the host.
        inputs = {"input_ids": ids}
        return Batch(inputs, targets, tokens, int((targets != IGNORE).sum()))

    def batches(self, batch_size: int, *, by_length: bool = False) -> list[Batch]:
        """The whole split, ``batch_size`` rows a batch (for evaluation): in order, or, with
        ``by_length``, rows sorted by length first (stable), so that a batch pads little."""
        order = list(range(len(self)))
        if by_length:
            order.sort(key=lambda i: len(self.ids[i]))
        return [self.batch(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]

    def micro_batches(self, indices: Sequence[int], micro_batch_size: int) -> list[Batch]:
        """The rows of one optimizer step as micro-batches of ``micro_batch_size`` rows,
        grouped by length (the step's summed loss and gradient do not depend on which of
        its rows share a micro-batch, so the step is the same, with less padding)."""
        order = sorted(indices, key=lambda i: len(self.ids[i]))
        if len(order) <= micro_batch_size:
            return [self.batch(list(indices))]
        return [self.batch(order[j : j + micro_batch_size])
                for j in range(0, len(order), micro_batch_size)]


def _pad(rows: Sequence[torch.Tensor], value: int) -> torch.Tensor:
    width = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
