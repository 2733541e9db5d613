"""Drawing the probe set: the n examples the empirical NTK is measured on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from lensllm.exceptions import InputError

__all__ = ["probe_indices", "select_probe"]

T = TypeVar("T")


def probe_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """Indices of a seeded probe set: the first ``n`` entries of one permutation.

    The permutation depends only on ``(n_total, seed)``, so probe sets are nested: the
    64-example probe contains the 32-example one for the same seed and data.

    Args:
        n_total: number of examples to draw from.
        n: probe size, ``2 <= n <= n_total`` (a kernel needs at least two examples to have
            off-diagonal entries).
        seed: the probe seed.

    Returns:
        Indices into the examples, shape ``(n,)``, in draw order.

    Raises:
        InputError: ``n < 2`` or ``n > n_total``.
    """
    n = int(n)
    if n < 2:
        raise InputError(f"the probe size `n` must be >= 2, got {n}.")
    if n > n_total:
        raise InputError(
            f"the probe size `n` = {n} is larger than the {n_total} example(s) available; "
            f"pass a smaller n or more data."
        )
    return np.random.default_rng(seed).permutation(n_total)[:n]


def select_probe(examples: Sequence[T], n: int, seed: int) -> list[T]:
    """Draw the probe set: ``n`` distinct examples fixed by ``seed``.

    Args:
        examples: the training examples (any objects; typically dicts of text fields).
        n: probe size, ``2 <= n <= len(examples)``.
        seed: the probe seed (recorded in the features' metadata).

    Returns:
        The ``n`` examples, in draw order (see :func:`probe_indices`).

    Raises:
        InputError: ``n < 2`` or more probes than examples.
    """
    return [examples[int(i)] for i in probe_indices(len(examples), n, seed)]
