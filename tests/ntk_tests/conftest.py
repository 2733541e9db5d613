"""The NTK tests need the ``finetune`` extra (torch, transformers, peft); skip them without."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = (
    []
    if all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft"))
    else ["*.py"]
)
