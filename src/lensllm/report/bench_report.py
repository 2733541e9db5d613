"""PNG plots and a Markdown summary of a ``lensllm bench`` run.

- ``curves_<dataset>_<method>_r<ratio>.png``: every model's measured points (hollow), the
  points the method paid for (filled), its fitted curve, the detected phase transition
  (dotted vertical line, where ``D**beta`` equals ``D_l`` or ``F``), and the true and
  predicted loss at ``D*`` with the interval when there is one;
- ``metrics_<dataset>.png``: PearCorr and RelAcc against the budget ratio, one line per
  method;
- ``summary.md``: the numbers as tables, with links to the plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lensllm.bench.harness import Evaluation
from lensllm.bench.table import LossTable
from lensllm.outputs import make_dir, markdown_link, markdown_text, plot_text, write_text
from lensllm.report._plots import panels, pyplot, save_figure, top_panels

__all__ = ["write_bench_report", "format_bench_tables"]


def _short(name: str) -> str:
    return name.split("/")[-1]


def _plain_log_ticks(ax) -> None:
    """Plain decimal labels on the log y axis ("2", "2.5", "3"), not "2x10^0"."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _pos: f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0,
                                                         6.0, 7.0, 8.0, 9.0)))
    ax.yaxis.set_minor_formatter(fmt)


def plot_curves(table: LossTable, result: Evaluation, path: Path) -> None:
    """One panel per model (the top :data:`~lensllm.report._plots.MAX_PANELS` by the
    method's ranking on large tables, with a note): points, paid points, fitted curve,
    transition, ``D*``."""
    plt = pyplot()
    rec, sel = result.record, result.selection
    shown, note = top_panels(sel.ranking() if sel is not None else None, table.n_models)
    n = len(shown)
    cols = min(6, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.5 * rows), squeeze=False)
    target = float(result.record.max_data_num * result.record.budget_ratio)
    grid = np.geomspace(table.sizes[0] / 2, target * 1.2, 200)
    fitted = sel.curve(grid) if sel is not None and sel.curve is not None else None
    truth = table.column(target)
    visible = result.visible_sizes
    for k, ax, i in panels(axes, shown, cols):
        ax.loglog(table.sizes, table.losses[i], "o", mfc="none", color="0.6", ms=4,
                  label="measured")
        if result.paid is not None:
            used = result.paid[i]
            ax.loglog(visible[used], table.losses[i, : visible.size][used], "o", color="C0",
                      ms=4, label="paid for")
        if fitted is not None:
            ax.loglog(grid, fitted[i], "-", color="C1", lw=1.2, label="fit")
        if sel is not None and sel.transition is not None and np.isfinite(sel.transition[i]):
            if grid[0] <= sel.transition[i] <= grid[-1]:
                ax.axvline(sel.transition[i], ls=":", color="C2", lw=1, label="transition")
        ax.axvline(rec.max_data_num, ls="--", color="0.8", lw=0.8)
        ax.plot([target], [truth[i]], "*", color="k", ms=8, label="true L(D*)")
        if sel is not None and sel.predicted is not None:
            ax.plot([target], [sel.predicted[i]], "x", color="C3", ms=7, label="predicted")
            if sel.lower is not None:
                ax.vlines(target, max(sel.lower[i], 1e-3), min(sel.upper[i], 1e3), color="C3")
        title = _short(table.models[i]) + (" (selected)" if sel is not None and
                                           sel.selected == i else "")
        ax.set_title(plot_text(title), fontsize=8, fontweight="bold" if "selected" in title else None)
        _plain_log_ticks(ax)
        ax.tick_params(labelsize=6)
        if k % cols == 0:
            ax.set_ylabel("test loss", fontsize=7)
        if k // cols == rows - 1:
            ax.set_xlabel("fine-tuning examples D", fontsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=len(labels))
    fig.suptitle(plot_text(f"{rec.dataset}: {rec.method}, budget D*/{rec.budget_ratio:g} "
                 f"= {rec.max_data_num:g} examples{note}"), fontsize=11, x=0.02, ha="left")
    # Fixed margins, not tight_layout: measuring every tick label of up to 24 log panels
    # took most of the time of `bench --out` on large tables (docs/bench.md, scale).
    width, height = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=0.6 / width, right=0.99, bottom=0.5 / height,
                        top=1 - 0.75 / height, wspace=0.28, hspace=0.5)
    save_figure(fig, path, dpi=80)


def plot_metrics(results: Sequence[Evaluation], dataset: str, path: Path) -> None:
    """PearCorr and RelAcc against the budget ratio, one line per method."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    methods = list(dict.fromkeys(r.record.method for r in results))
    for k, metric in enumerate(("pearcorr", "relacc")):
        ax = axes[k]
        for j, method in enumerate(methods):
            recs = [r.record for r in results if r.record.dataset == dataset
                    and r.record.method == method and getattr(r.record, metric) is not None]
            if recs:
                ax.plot([r.budget_ratio for r in recs], [getattr(r, metric) for r in recs],
                        "o-", label=method, color=f"C{j % 10}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget ratio D* / max_data_num (log scale)")
        ax.set_ylabel({"pearcorr": "PearCorr", "relacc": "RelAcc"}[metric])
        ax.set_title(plot_text(f"{dataset}: {'PearCorr' if metric == 'pearcorr' else 'RelAcc'}"
                               " vs budget"))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def _fmt(value: float | None, scale: float = 100.0, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


METRIC_TITLES = {
    "pearcorr": ("PearCorr (%)", 100.0, 1),
    "relacc": ("RelAcc (%)", 100.0, 1),
    "rmse": ("log-RMSE of predicted L(D*)", 1.0, 3),
    "cost_fraction": ("cost (% of fine-tuning all on D*)", 100.0, 2),
}


def format_bench_tables(results: Sequence[Evaluation], *, markdown: bool = False) -> str:
    """Method x budget-ratio matrices per dataset and metric, as text or Markdown."""
    out = []
    datasets = list(dict.fromkeys(r.record.dataset for r in results))
    for ds in datasets:
        recs = [r.record for r in results if r.record.dataset == ds]
        ratios = list(dict.fromkeys(r.budget_ratio for r in recs))
        methods = list(dict.fromkeys(r.method for r in recs))
        by = {(r.method, r.budget_ratio): r for r in recs}
        out.append(f"## {markdown_text(ds)}" if markdown else f"=== {ds} ===")
        for metric, (title, scale, digits) in METRIC_TITLES.items():
            head = ["method"] + [f"1/{r:g}" for r in ratios]
            rows = [[m] + [_fmt(getattr(by[(m, r)], metric), scale, digits) for r in ratios]
                    for m in methods]
            if markdown:
                out.append(f"\n**{title}**\n")
                out.append("| " + " | ".join(head) + " |")
                out.append("|" + "---|" * len(head))
                out += ["| " + " | ".join(row) + " |" for row in rows]
            else:
                widths = [max(len(x[c]) for x in [head] + rows) for c in range(len(head))]
                out.append(f"\n{title}")
                out.append("  ".join(h.rjust(w) if c else h.ljust(w)
                                     for c, (h, w) in enumerate(zip(head, widths))))
                for row in rows:
                    out.append("  ".join(x.rjust(w) if c else x.ljust(w)
                                         for c, (x, w) in enumerate(zip(row, widths))))
        notes = sorted({f"{r.method}: {r.note}" for r in recs if r.note})
        if notes:
            out.append("")
            out += [("- " + markdown_text(n)) if markdown else ("  note: " + n) for n in notes]
        out.append("")
    return "\n".join(out)


def write_bench_report(results: Sequence[Evaluation], tables: Sequence[LossTable],
                       out_dir: Path) -> Path:
    """Write plots and ``summary.md`` under ``out_dir``; returns the summary's path."""
    make_dir(out_dir, "report folder")
    lines = ["# lensllm bench", "",
             "PearCorr: Pearson correlation of each method's score with the true loss at D*. "
             "RelAcc: (L_worst - L_selected) / (L_worst - L_best). Cost: sum over paid runs of "
             "parameters x examples, as a fraction of fine-tuning every model on D*.", ""]
    lines.append(format_bench_tables(results, markdown=True))
    for table in tables:
        mine = [r for r in results if r.record.dataset == table.name]
        name = f"metrics_{table.name}.png"
        plot_metrics(mine, table.name, out_dir / name)
        lines.append(f"![{markdown_text(table.name)} metrics]({markdown_link(name)})\n")
        ratios = sorted({r.record.budget_ratio for r in mine})
        chosen = {ratios[0], ratios[-1]}
        for r in mine:
            if r.record.budget_ratio in chosen and r.selection is not None and \
                    r.selection.curve is not None:
                png = f"curves_{table.name}_{r.record.method}_r{r.record.budget_ratio:g}.png"
                plot_curves(table, r, out_dir / png)
                lines.append(f"![{markdown_text(png)}]({markdown_link(png)})\n")
    summary = out_dir / "summary.md"
    write_text(summary, "\n".join(lines) + "\n", "summary")
    return summary
