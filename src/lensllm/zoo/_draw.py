"""Draw a nested, seeded task from a list of ``(source, target)`` pairs."""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["draw_nested"]


def draw_nested(pairs: list[tuple[str, str]], n_examples: int, *, seed: int, salt: int,
                task: str, source_suffix: str) -> list[dict[str, str]]:
    """``n_examples`` distinct examples ``{"source": pair[0] + source_suffix, "target": " " +
    pair[1]}``, drawn without replacement in an order fixed by ``(seed, salt)``, so a larger
    task starts with the examples of a smaller one (nested subsets stay nested).

    Raises:
        ValueError: more examples asked for than ``pairs`` holds (this Python's standard
            library decides how many there are).
    """
    if n_examples > len(pairs):
        raise ValueError(f"the {task} task has {len(pairs)} examples on Python "
                         f"{sys.version.split()[0]}; {n_examples} were asked for")
    order = np.random.default_rng([seed, salt]).permutation(len(pairs))[:n_examples]
    return [{"source": f"{pairs[i][0]}{source_suffix}", "target": f" {pairs[i][1]}"}
            for i in order]
