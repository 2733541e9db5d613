"""The "Data planning" section of the ``lensllm select`` report: a sentence, a plot, lists.

The plan itself comes from :func:`lensllm.pipeline.planning.outcome_plan` (see
docs/planning.md): the top candidates' calibrated curves from ``D*/8`` to ``8 D*``, where
their order changes, and with ``[selection] loss_goal`` the data each needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lensllm.pipeline.planning import crossing_text, need_text, outcome_plan
from lensllm.outputs import html_text, plot_text
from lensllm.report._plots import pyplot, save_figure

__all__ = ["plan_section"]


def _plot(plan: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    sizes = np.array(plan["sizes"])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for k, cand in enumerate(plan["candidates"]):
        color = f"C{k}"
        upper = np.array([np.nan if v is None else v for v in cand["upper"]])
        ax.fill_between(sizes, cand["lower"], upper, color=color, alpha=0.15, lw=0)
        ax.plot(sizes, cand["predicted"], "-", color=color, lw=1.6,
                label=plot_text(Path(cand["model"]).name))
    for c in plan["crossings"]:
        ax.axvline(c["size"], color="0.4", ls=":", lw=1.0)
    ax.axvline(plan["target"], color="C3", lw=0.8, label="D*")
    if plan.get("loss_goal") is not None:
        ax.axhline(plan["loss_goal"], color="k", ls="--", lw=0.8, label="loss goal")
    ax.set_xscale("log")
    ax.set_xlabel("fine-tuning examples D (log)")
    ax.set_ylabel("predicted test loss")
    ax.set_title(f"Top candidates from D*/8 to 8 D* ({100 * plan['level']:.0f}% bands; "
                 "dotted: order changes)", fontsize=10)
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def plan_section(outcome, out_dir: Path, img) -> str:
    """The report's "Data planning" section (HTML), with its plot written to ``out_dir``.

    ``img(path, alt)`` embeds a PNG (the report's helper).
    """
    plan = outcome_plan(outcome)
    if not plan["candidates"]:
        return ""
    _plot(plan, out_dir / "planning.png")
    rows = "".join(f"<li>{html_text(crossing_text(c))}</li>" for c in plan["crossings"])
    need = "".join(f"<li>{html_text(Path(r['model']).name)}: {html_text(need_text(r))}"
                   f"</li>" for r in plan.get("data_needed", []))
    goal = (f"<p>Data needed to reach a test loss of {plan['loss_goal']:g}:</p><ul>{need}</ul>"
            if need else "")
    return (f"<h2>Data planning</h2><p class=\"big\">{html_text(plan['advice'])}</p>"
            f"{img(out_dir / 'planning.png', 'top candidates over data sizes')}"
            f"<p>Intervals: {html_text(plan['calibration'])}.</p>"
            f"<ul>{rows or '<li>no change of order between D*/8 and 8 D*</li>'}</ul>{goal}")
