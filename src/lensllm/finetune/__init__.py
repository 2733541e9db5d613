"""Fine-tuning candidates on nested subsets: task data, model loading, the run loop.

Importing this package imports torch; :mod:`lensllm.laws`, :mod:`lensllm.bench` and
:mod:`lensllm.selection` never import it.
"""

from __future__ import annotations
