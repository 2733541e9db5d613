"""Everything lensllm writes for a user, written one way (torch-free, numpy-free).

- :mod:`lensllm.outputs.files`: output paths checked before any work starts, and files
  written atomically through a temporary file created exclusively in the target directory
  (never a predictable name); symlinks and special files at the output path are refused,
  ``-`` writes to standard output.
- :mod:`lensllm.outputs.guard`: the one check that an output path is none of the command's
  inputs (nor a store's ``-wal``/``-shm``/``-journal`` file, nor a hard link to one).
- :mod:`lensllm.outputs.jsonsafe`: the one JSON policy: a non-finite number is written as
  ``null`` and the record says why (``"nonfinite": {"upper": "inf"}``); output is always
  valid JSON.
- :mod:`lensllm.outputs.escape`: user text made safe for HTML, Markdown and matplotlib.
- :mod:`lensllm.outputs.numbers`: losses as text (significant digits where four decimals
  would read ``0.0000``).

Imports nothing of lensllm but :mod:`lensllm.exceptions`, so every part may use it.
"""

from __future__ import annotations

from lensllm.outputs.escape import html_text, markdown_link, markdown_text, plot_text
from lensllm.outputs.files import (
    STDOUT,
    check_output_dir,
    check_output_file,
    make_dir,
    write_bytes,
    write_text,
)
from lensllm.outputs.guard import STORE_SIDE_FILES, check_apart
from lensllm.outputs.jsonsafe import json_safe, json_text

__all__ = [
    "STDOUT",
    "STORE_SIDE_FILES",
    "check_apart",
    "check_output_dir",
    "check_output_file",
    "html_text",
    "json_safe",
    "json_text",
    "make_dir",
    "markdown_link",
    "markdown_text",
    "plot_text",
    "write_bytes",
    "write_text",
]
