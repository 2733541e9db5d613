"""User text made safe for the document or plot it goes into.

Model names, file names and paths come from users; ``$x$`` in a model name must not reach
matplotlib's mathtext (a crash, or a garbled title), ``<script>`` must not reach an HTML
page, and ``|``, ``*``, ``[`` or a newline must not change a Markdown table or link.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

__all__ = ["html_text", "markdown_link", "markdown_text", "plot_text"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~$])")


def html_text(text: object) -> str:
    """``text`` escaped for HTML content and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def markdown_text(text: object) -> str:
    """``text`` escaped for Markdown (inline, table cells, link text); newlines flattened."""
    flat = " ".join(str(text).splitlines())
    return html.escape(_MD_SPECIAL.sub(r"\\\1", flat), quote=False)


def markdown_link(file_name: str) -> str:
    """A relative file name as a Markdown link target (percent-encoded: spaces, ``)``...)."""
    return quote(file_name)


def plot_text(text: object) -> str:
    """``text`` for a matplotlib label: every ``$`` escaped, so mathtext never parses it.

    matplotlib parses a string as math when it holds an even, non-zero number of unescaped
    ``$``; with all of them escaped it draws the text as is (``\\$`` shows as ``$``). Tick
    labels keep their mathtext (``10^2``), which a global ``text.parse_math = False`` would
    break.
    """
    return str(text).replace("$", r"\$")
