"""The Python API of lensllm: :func:`fit`, :func:`plan`, :func:`select`, :func:`bench`.

Each returns a typed result whose ``to_dict()`` is the JSON of the matching command's
``--json``, whose ``to_json()`` is its text and whose ``to_frame()`` is a pandas data
frame; the commands are thin layers over these functions. Torch is imported only by
:func:`select` (real fine-tuning runs). See docs/api.md.
"""

from __future__ import annotations

from lensllm.api.benching import BenchResult, bench
from lensllm.api.fitting import FitResult, fit
from lensllm.api.planning import PlanResult, plan
from lensllm.api.selecting import SelectResult, select

__all__ = ["BenchResult", "FitResult", "PlanResult", "SelectResult", "bench", "fit", "plan",
           "select"]
