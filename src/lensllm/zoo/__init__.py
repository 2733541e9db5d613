"""A CPU-scale model zoo that lensllm pretrains itself, and a downstream task to choose for.

No weights or data are downloaded: the pretraining text is the standard library's
``pydoc_data.topics`` (English documentation of Python), the tokenizer is a byte-level BPE
trained on it, and the models are small GPT-2, Llama and OPT configurations pretrained for
different numbers of steps (:mod:`lensllm.zoo.build`). Two downstream tasks differ from the
pretraining text: word-list manipulations generated in code (reverse, sort, first/last,
count; :func:`lensllm.zoo.corpus.make_task`, used by the demo), and standard-library names
with the first sentence of their docstrings (:mod:`lensllm.zoo.docstrings`, natural
language, the zoo benchmark's main task), and lines of standard-library code with the
first sentence of the comment above them (:mod:`lensllm.zoo.comments`, about 5k examples,
the benchmark's large task). :func:`write_task` writes any of them as JSONL.
Needs the ``finetune`` extra (torch, transformers, tokenizers). See ``docs/zoo.md``.
"""

from __future__ import annotations

from lensllm.zoo.build import DEMO_ZOO, FULL_ZOO, ZooModel, build_zoo, zoo_dir
from lensllm.zoo.corpus import TASKS, make_task, pretraining_text, task_vocabulary, write_task

__all__ = [
           "DEMO_ZOO",
           "TASKS",
           "FULL_ZOO",
           "ZooModel",
           "build_zoo",
           "make_task",
           "pretraining_text",
           "task_vocabulary",
           "write_task",
           "zoo_dir",
]
