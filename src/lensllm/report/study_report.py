"""Tables and plots of the bench studies (``lensllm bench --grid ... --max-params ...``).

- tables: the bench's method x budget-ratio matrices, one row per method and variant (grid
  options and size constraint, e.g. ``ats k=3 delta=1``);
- ``heatmap_<dataset>_<method>_<metric>.png`` (grids): one panel per budget ratio, cells =
  the metric over the grid (rows: every option but the last, columns: the last option),
  coloured from the panel's lowest to its highest value;
- ``metrics_<dataset>.png``: PearCorr and RelAcc against the budget, one line per variant;
- ``summary.md``: the tables and links to the plots; ``bench.json`` is written by the command.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lensllm.bench.harness import Evaluation
from lensllm.bench.sweep import variant_label
from lensllm.outputs import make_dir, markdown_link, markdown_text, plot_text, write_text
from lensllm.report._plots import pyplot, save_figure
from lensllm.report.bench_report import format_bench_tables, plot_metrics

__all__ = ["format_study_tables", "plot_grid_heatmaps", "write_study_report"]

HEATMAP_METRICS = {"pearcorr": "PearCorr", "relacc": "RelAcc"}


def _labelled(results: Sequence[Evaluation]) -> list[Evaluation]:
    """Copies whose ``method`` reads ``<method> <variant>``, so each variant gets a row."""
    out = []
    for res in results:
        rec = res.record
        label = variant_label(rec.options, rec.max_params)
        method = f"{rec.method} {label}" if label else rec.method
        out.append(dataclasses.replace(res, record=dataclasses.replace(rec, method=method)))
    return out


def format_study_tables(results: Sequence[Evaluation], *, markdown: bool = False) -> str:
    """Per dataset and metric, a row per method and variant, a column per budget ratio."""
    return format_bench_tables(_labelled(results), markdown=markdown)


def _grid_axes(records) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Row labels, column labels and each record's (row, column) for a heatmap."""
    keys = list(records[0].options)
    last = keys[-1]

    def row(o):
        return variant_label({k: o[k] for k in keys[:-1]}) or "-"

    def col(o):
        return variant_label({last: o[last]})

    cells = [(row(r.options), col(r.options)) for r in records]
    return (list(dict.fromkeys(c[0] for c in cells)), list(dict.fromkeys(c[1] for c in cells)),
            cells)


def plot_grid_heatmaps(results: Sequence[Evaluation], dataset: str, method: str,
                       metric: str, path: Path) -> bool:
    """One heatmap panel per budget ratio of ``metric`` over the grid; False if no grid."""
    recs = [r.record for r in results if r.record.dataset == dataset
            and r.record.method == method and r.record.options]
    if not recs:
        return False
    ratios = list(dict.fromkeys(r.budget_ratio for r in recs))
    rows, cols, cells = _grid_axes(recs)
    plt = pyplot()
    n_cols = min(4, len(ratios))
    n_rows = math.ceil(len(ratios) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(0.9 * len(cols) * n_cols + 2, 0.5 * len(rows) * n_rows + 2))
    for i in range(n_rows * n_cols):
        ax = axes[i // n_cols][i % n_cols]
        if i >= len(ratios):
            ax.axis("off")
            continue
        grid = np.full((len(rows), len(cols)), np.nan)
        for rec, (rl, cl) in zip(recs, cells):
            value = getattr(rec, metric)
            if rec.budget_ratio == ratios[i] and value is not None:
                grid[rows.index(rl), cols.index(cl)] = value
        finite = grid[np.isfinite(grid)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        ax.imshow(grid, cmap="viridis", vmin=lo, vmax=max(hi, lo + 1e-9), aspect="auto")
        for (a, b), value in np.ndenumerate(grid):  # dark text on the bright upper half
            bright = np.isfinite(value) and value > (lo + hi) / 2
            ax.text(b, a, "n/a" if np.isnan(value) else f"{value:.3f}", ha="center",
                    va="center", fontsize=7, color="k" if bright else "w")
        ax.set_xticks(range(len(cols)), cols, fontsize=7)
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_title(f"1/{ratios[i]:g}", fontsize=9)
    fig.suptitle(plot_text(f"{dataset}: {method}, {HEATMAP_METRICS[metric]} per budget ratio"),
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    return True


def write_study_report(results: Sequence[Evaluation], out_dir: Path) -> Path:
    """Write heatmaps, metric plots and ``summary.md`` under ``out_dir``; returns its path."""
    make_dir(out_dir, "report folder")
    lines = ["# lensllm bench study", "",
             "Rows: method and variant (swept options, `<=N` = only candidates with at most N "
             "parameters). PearCorr and RelAcc are computed over the candidates of each "
             "variant.", "", format_study_tables(results, markdown=True)]
    datasets = list(dict.fromkeys(r.record.dataset for r in results))
    methods = list(dict.fromkeys(r.record.method for r in results))
    for ds in datasets:
        for method in methods:
            for metric in HEATMAP_METRICS:
                png = f"heatmap_{ds}_{method}_{metric}.png"
                if plot_grid_heatmaps(results, ds, method, metric, out_dir / png):
                    lines.append(f"![{markdown_text(png)}]({markdown_link(png)})\n")
        png = f"metrics_{ds}.png"
        plot_metrics(_labelled(results), ds, out_dir / png)
        lines.append(f"![{markdown_text(png)}]({markdown_link(png)})\n")
    summary = out_dir / "summary.md"
    write_text(summary, "\n".join(lines) + "\n", "summary")
    return summary
