"""The Python API of lensllm: :func:`fit`, :func:`plan`, :func:`select`, :func:`bench`.

Each returns a typed result whose ``to_dict()`` is the JSON of the matching command's
``--json`` and whose ``to_frame()`` is a pandas data frame; the commands are thin layers
over these functions. See docs/api.md.
"""

from __future__ import annotations

from lensllm.api.fitting import FitResult, fit

__all__ = ["FitResult", "fit"]
