"""Tables and the law-vs-law scatter plot of ``lensllm fit-quality``.

- :func:`format_fit_quality`: a summary table per dataset (mean, median, max RMSD per law,
  next to the published mean) and a per-model table;
- ``fit_quality_<dataset>.png``: per model, each law's RMSD (y) against the rectified law's
  (x), log-log, with the diagonal; below it the other law fits better. When published RMSDs
  are known, a second panel shows ours (y) against the published ones (x) per law.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lensllm.bench.fit_quality import FitQuality
from lensllm.outputs import make_dir, markdown_link, markdown_text, plot_text, write_text
from lensllm.report._plots import pyplot, save_figure

__all__ = ["format_fit_quality", "plot_fit_quality", "write_fit_quality_report"]

REFERENCE_LAW = "rectified"


def _table(head: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x[c]) for x in [head] + rows) for c in range(len(head))]
    return ["  ".join(x.rjust(w) if c else x.ljust(w) for c, (x, w) in enumerate(zip(r, widths)))
            for r in [head] + rows]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def format_fit_quality(results: Sequence[FitQuality], *, markdown: bool = False,
                       per_model: bool = True) -> str:
    """Summary per dataset and law, then (``per_model``) each model's RMSD per law."""
    out: list[str] = []
    for fq in results:
        out.append(f"## {markdown_text(fq.dataset)}" if markdown else f"=== {fq.dataset} ===")
        out.append(f"\nin-sample log RMSD, {fq.n_points} size columns per model, "
                   f"{len(fq.models)} models\n")
        head = ["law", "mean", "median", "max", "best of laws", "published mean",
                "above published"]
        rows = [[s["law"], _num(s["mean"]), _num(s["median"]), _num(s["max"]),
                 str(s["best_of_laws"]), _num(s["published_mean"]),
                 "-" if s["above_published"] is None else str(s["above_published"])]
                for s in fq.summary()]
        out += _table(head, rows, markdown)
        out += [("- " if markdown else "  note: ") + f"{law}: {why}"
                for law, why in fq.notes.items()]
        if per_model:
            laws = list(fq.rmsd)
            head = ["model"] + laws + [f"published {law}" for law in fq.published]
            rows = [[markdown_text(m) if markdown else m] + [_num(float(fq.rmsd[law][i])) for law in laws]
                    + [_num(float(v[i])) for v in fq.published.values()]
                    for i, m in enumerate(fq.models)]
            out.append("")
            out += _table(head, rows, markdown)
        out.append("")
    return "\n".join(out)


def plot_fit_quality(fq: FitQuality, path: Path) -> None:
    """Law vs law (and ours vs published) scatter of per-model RMSDs, log-log."""
    plt = pyplot()
    others = [law for law in fq.rmsd if law != REFERENCE_LAW]
    panels = (REFERENCE_LAW in fq.rmsd and bool(others)) + bool(fq.published)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(5.2 * max(panels, 1), 4.6),
                             squeeze=False)
    every = np.concatenate([*fq.rmsd.values(), *fq.published.values()])
    lo, hi = every[every > 0].min() / 1.5, every.max() * 1.5
    k = 0
    if REFERENCE_LAW in fq.rmsd and others:
        ax = axes[0][k]
        for j, law in enumerate(others):  # hollow markers after the first: equal fits show
            ax.loglog(fq.rmsd[REFERENCE_LAW], fq.rmsd[law], "o^sD"[j % 4], ms=4 + 2 * j,
                      color=f"C{j}", mfc=None if j == 0 else "none", label=law)
        ax.set_xlabel(f"{REFERENCE_LAW} law RMSD (log L)")
        ax.set_ylabel("other law RMSD (log L)")
        ax.set_title(plot_text(f"{fq.dataset}: law vs {REFERENCE_LAW}, per model"), fontsize=10)
        k += 1
    if fq.published:
        ax = axes[0][k]
        for j, (law, pub) in enumerate(fq.published.items()):
            ax.loglog(pub, fq.rmsd[law], "s", ms=4, color=f"C{j + 4}", label=law)
        ax.set_xlabel("published RMSD (log L)")
        ax.set_ylabel("lensllm RMSD (log L)")
        ax.set_title(plot_text(f"{fq.dataset}: lensllm's fits vs the published ones"),
                     fontsize=10)
    for ax in axes[0]:
        ax.plot([lo, hi], [lo, hi], "--", color="0.6", lw=1, label="equal")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def write_fit_quality_report(results: Sequence[FitQuality], out_dir: Path) -> Path:
    """Scatter plots and ``summary.md`` under ``out_dir``; returns the summary's path."""
    make_dir(out_dir, "report folder")
    lines = ["# lensllm fit-quality", "",
             "Every law fitted to each model's whole curve (the size columns, not column 0) "
             "in log space; RMSD = sqrt(mean((log L_fit - log L)^2)) at those points.", "",
             format_fit_quality(results, markdown=True)]
    for fq in results:
        png = f"fit_quality_{fq.dataset}.png"
        plot_fit_quality(fq, out_dir / png)
        lines.append(f"![{markdown_text(png)}]({markdown_link(png)})\n")
    summary = out_dir / "summary.md"
    write_text(summary, "\n".join(lines) + "\n", "summary")
    return summary
