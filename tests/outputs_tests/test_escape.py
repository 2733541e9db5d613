"""User text escaped for HTML, Markdown and matplotlib."""

from __future__ import annotations

import pytest

from lensllm.outputs import html_text, markdown_link, markdown_text, plot_text


def test_html_and_markdown():
    assert html_text('<script>"x"</script>') == "&lt;script&gt;&quot;x&quot;&lt;/script&gt;"
    md = markdown_text("a|b *c* [d](e)\nf")
    assert "|" not in md.replace("\\|", "") and "\n" not in md
    assert md == r"a\|b \*c\* \[d\]\(e\) f"
    assert markdown_link("my table (1).png") == "my%20table%20%281%29.png"


def test_plot_text_is_never_parsed_as_math(tmp_path):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    name = r"$\frac{$ model $x^{$"  # mathtext would raise on this
    fig, ax = plt.subplots()
    text = ax.set_title(plot_text(name))
    fig.savefig(tmp_path / "t.png")
    plt.close(fig)
    assert text._preprocess_math(text.get_text()) == (name, False)
