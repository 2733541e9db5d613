"""Everything lensllm reads from a user, read one way (torch-free, numpy-free).

- :mod:`lensllm.inputs.files`: an input path checked before it is opened (a FIFO, a
  device or a socket is refused: ``/dev/zero`` would be read until memory runs out), text
  decoded as UTF-8 with an error that names the file, the line and the byte, and no lone
  surrogate (``"\\ud800"`` in JSON) let through to fail later inside a tokenizer.
- :mod:`lensllm.inputs.jsonstrict`: JSON parsed strictly: ``NaN``/``Infinity`` and numbers
  that overflow a float are one error naming where, not an ``OverflowError`` later.

Imports nothing of lensllm but :mod:`lensllm.exceptions`, so every part may use it.
"""

from __future__ import annotations

from lensllm.inputs.files import (
    check_input_path,
    check_text,
    decode_text,
    read_lines,
    read_text,
)
from lensllm.inputs.jsonstrict import loads_strict

__all__ = [
    "check_input_path",
    "check_text",
    "decode_text",
    "loads_strict",
    "read_lines",
    "read_text",
]
