"""A CPU-scale model zoo that lensllm pretrains itself, and a downstream task to choose for.

No weights or data are downloaded: the pretraining text is the standard library's
``pydoc_data.topics`` (English documentation of Python), the tokenizer is a byte-level BPE
trained on it, and the models are small GPT-2, Llama and OPT configurations pretrained for
different numbers of steps (:mod:`lensllm.zoo.build`). The downstream task
(:func:`lensllm.zoo.corpus.make_task`) is generated in code and differs from the pretraining
text: word-list manipulations (reverse, sort, first/last, count) over English words.
Needs the ``finetune`` extra (torch, transformers, tokenizers). See ``docs/zoo.md``.
"""

from __future__ import annotations

from lensllm.zoo.build import DEMO_ZOO, FULL_ZOO, ZooModel, build_zoo, zoo_dir
from lensllm.zoo.corpus import make_task, pretraining_text, task_vocabulary, write_task

__all__ = [
           "DEMO_ZOO",
           "FULL_ZOO",
           "ZooModel",
           "build_zoo",
           "make_task",
           "pretraining_text",
           "task_vocabulary",
           "write_task",
           "zoo_dir",
]
