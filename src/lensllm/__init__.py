"""lensllm: choose which LLM to fine-tune from small fine-tuning runs and scaling laws.

The numeric core (:mod:`lensllm.laws`, :mod:`lensllm.bench`, :mod:`lensllm.selection`)
imports without torch. Fine-tuning (:mod:`lensllm.finetune`), NTK features
(:mod:`lensllm.ntk`) and real runs need the ``finetune`` extra.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
