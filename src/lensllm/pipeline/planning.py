"""The data plan of a ``lensllm select`` outcome: JSON, text lines and a report section.

The top candidates of the ranking (3 by default) go through
:func:`lensllm.selection.planning.plan_candidates` with the points the selector paid for;
the loss goal comes from ``[selection] loss_goal`` in the config. See docs/planning.md.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from lensllm.laws.crossings import size_text
from lensllm.selection.planning import plan_candidates

__all__ = ["outcome_plan", "plan_lines", "plan_section"]

N_TOP = 3


def outcome_plan(outcome, n_top: int = N_TOP) -> dict[str, Any]:
    """:func:`plan_candidates` for the ``n_top`` best-ranked candidates of ``outcome``."""
    view = outcome.view
    top = [int(i) for i in outcome.selection.ranking()[:n_top]]
    zero = None if view.zero_shot is None else [float(view.zero_shot[i]) for i in top]
    pool = [(*outcome.observed[i], None if view.zero_shot is None else
             float(view.zero_shot[i])) for i in range(view.n_models)]
    return plan_candidates([view.models[i] for i in top], [outcome.observed[i] for i in top],
                           zero, float(outcome.config.target),
                           loss_goal=outcome.config.selection.loss_goal, pool=pool)


def _need_text(rec: dict[str, Any]) -> str:
    if rec["data_needed"] is None:
        return rec["note"]
    upper = rec["data_needed_upper"]
    text = (f"{size_text(rec['data_needed'])} examples (90% interval "
            f"{size_text(rec['data_needed_lower'])} to "
            f"{'unbounded' if upper is None else size_text(upper)})")
    return text + (f"; {rec['note']}" if rec["note"] else "")


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """What ``lensllm select`` prints about the plan: the advice, the data needed."""
    lines = []
    if plan["advice"]:
        lines.append(f"data plan (top {len(plan['candidates'])}, rectified law): "
                     f"{plan['advice']}")
    for rec in plan.get("data_needed", []):
        lines.append(f"to reach loss {plan['loss_goal']:g}, {Path(rec['model']).name} needs "
                     f"{_need_text(rec)}")
    for rec in plan["skipped"]:
        lines.append(f"data plan leaves out {rec['model']}: {rec['reason']}")
    if plan["candidates"]:
        lines.append(f"data plan intervals: {plan['calibration']}")
    return lines


def _plot(plan: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.array(plan["sizes"])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for k, cand in enumerate(plan["candidates"]):
        color = f"C{k}"
        upper = np.array([np.nan if v is None else v for v in cand["upper"]])
        ax.fill_between(sizes, cand["lower"], upper, color=color, alpha=0.15, lw=0)
        ax.plot(sizes, cand["predicted"], "-", color=color, lw=1.6,
                label=Path(cand["model"]).name)
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
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plan_section(outcome, out_dir: Path, img) -> str:
    """The report's "Data planning" section (HTML), with its plot written to ``out_dir``.

    ``img(path, alt)`` embeds a PNG (the report's helper).
    """
    plan = outcome_plan(outcome)
    if not plan["candidates"]:
        return ""
    _plot(plan, out_dir / "planning.png")
    rows = "".join(
        f"<li>{html.escape(Path(c['before']).name)} leads below, "
        f"{html.escape(Path(c['after']).name)} above about {size_text(c['size'])} examples "
        f"(90% interval {size_text(c['lower'])} to "
        f"{'unbounded' if c['upper'] is None else size_text(c['upper'])})</li>"
        for c in plan["crossings"])
    need = "".join(f"<li>{html.escape(Path(r['model']).name)}: {html.escape(_need_text(r))}"
                   f"</li>" for r in plan.get("data_needed", []))
    goal = (f"<p>Data needed to reach a test loss of {plan['loss_goal']:g}:</p><ul>{need}</ul>"
            if need else "")
    return (f"<h2>Data planning</h2><p class=\"big\">{html.escape(plan['advice'])}</p>"
            f"{img(out_dir / 'planning.png', 'top candidates over data sizes')}"
            f"<p>Intervals: {html.escape(plan['calibration'])}.</p>"
            f"<ul>{rows or '<li>no change of order between D*/8 and 8 D*</li>'}</ul>{goal}")
