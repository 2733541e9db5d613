"""``runs.png`` of the ``lensllm select`` report: candidates x sizes, the runs paid marked.

One row per candidate (best first), one column per affordable size. A paid run is a filled
square; a run that a candidate stopped early did not pay (it would have, had it gone on to
the budget) is a hatched empty square; a size it never needed is left blank. Candidates
stopped before the budget are greyed, with the size where they stopped written at the right.
The title counts the runs and the FLOPs saved against paying every candidate up to the budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lensllm.pipeline import SelectOutcome
from lensllm.outputs import plot_text
from lensllm.report._plots import pyplot, save_figure

__all__ = ["CHARS_PER_INCH", "plot_runs", "runs_title", "saved_words"]


def saved_words(outcome: SelectOutcome) -> str:
    """One sentence: runs paid, and the FLOPs stopping early saved (empty without pruning)."""
    lad = outcome.ladder
    if lad is None:
        return ""
    text = f"{int(lad.paid.sum())} runs paid"
    if not lad.pruned.any():
        return text + "; no candidate stopped before the budget"
    return (f"{text}; {int(lad.pruned.sum())} of {lad.paid.shape[0]} candidates stopped "
            f"before the budget, saving {int(lad.saved.sum())} runs = {lad.saved_flops:.3g} "
            f"FLOPs (recipe estimate) = {100 * lad.saved_fraction:.1f}% of paying every "
            f"candidate up to the budget ({lad.paid_flops:.3g} FLOPs counted + "
            f"{lad.saved_flops:.3g} estimated)")


#: Characters of a 9-point title line per inch of figure width (with a margin).
CHARS_PER_INCH = 12


def runs_title(method: str, paid: int, saved: int, fraction: float, width_in: float) -> str:
    """The title of ``runs.png``, wrapped to the figure's width so no word is cut off."""
    import textwrap

    width = max(30, int(width_in * CHARS_PER_INCH))
    parts = [f"Runs paid by {method}: filled = paid (red: selected), hatched = saved by "
             "stopping early, grey = stopped before the budget",
             f"{paid} runs paid; {saved} saved = {100 * fraction:.1f}% of the FLOPs of "
             "paying every candidate up to the budget"]
    return "\n".join(textwrap.fill(p, width) for p in parts)


def plot_runs(outcome: SelectOutcome, path: Path) -> None:
    """Draw the run grid of ``outcome`` (see the module docstring) to ``path``."""
    from lensllm.report._plots import short_name

    plt = pyplot()
    lad, view, sel = outcome.ladder, outcome.view, outcome.selection
    order = sel.ranking()
    n, s = len(order), lad.sizes.size
    fig, ax = plt.subplots(figsize=(1.0 * s + 4.2, 0.42 * n + 1.6))
    for row, m in enumerate(order):
        y = n - 1 - row
        grey = bool(lad.pruned[m])
        color = "0.6" if grey else ("C3" if m == sel.selected else "C0")
        for j in range(s):
            if lad.paid[m, j]:
                ax.add_patch(plt.Rectangle((j - 0.4, y - 0.35), 0.8, 0.7, color=color))
            elif lad.saved[m, j]:
                ax.add_patch(plt.Rectangle((j - 0.4, y - 0.35), 0.8, 0.7, fill=False,
                                           hatch="///", edgecolor="0.7", lw=0.8))
        note = (f"stopped at {lad.stopped_at[m]:g}" if grey else "reached the budget")
        ax.text(s - 0.3, y, note, va="center", fontsize=8, color="0.45" if grey else "k")
    ax.set_xlim(-0.6, s + 1.3)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xticks(np.arange(s))
    ax.set_xticklabels([f"{x:g}" for x in lad.sizes], fontsize=8)
    ax.set_yticks(np.arange(n)[::-1])
    labels = ax.set_yticklabels([plot_text(short_name(view.models[m])) for m in order],
                               fontsize=8)
    for label, m in zip(labels, order):
        label.set_color("0.55" if lad.pruned[m] else "k")
    ax.set_xlabel("fine-tuning subset size D (examples)")
    ax.set_title(runs_title(plot_text(outcome.config.selection.method), int(lad.paid.sum()),
                            int(lad.saved.sum()), lad.saved_fraction,
                            fig.get_figwidth()), fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
