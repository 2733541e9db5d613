"""The ``lensllm select`` report: one self-contained HTML file with PNG plots.

- ``curves.png``: one panel per candidate: the observed test losses (filled dots; the
  zero-shot loss as a dashed line), the selector's curve, the rectified and LensLLM laws
  fitted to the same points, the LensLLM phase transition (dotted vertical line), the
  predicted ``L(D*)`` with its interval, and the true ``L(D*)`` when known (a star);
- ``ranking.png``: candidates sorted by predicted ``L(D*)`` with intervals;
- ``cost.png``: the compute spent (fine-tuning, zero-shot evaluation, NTK features) against
  the cost of fine-tuning every candidate on ``D*``;
- ``runs.png``: candidates x sizes, the runs paid marked, candidates stopped early greyed,
  and the FLOPs stopping saved (:mod:`lensllm.report.rung_plot`).

The PNGs are written next to ``index.html`` and embedded in it (base64), so the HTML file
alone is the report.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lensllm.outputs import make_dir, plot_text, write_text
from lensllm.outputs.numbers import interval_text, loss_text
from lensllm.pipeline import LAW_LABELS, SelectOutcome
from lensllm.pipeline.convergence import convergence_record, convergence_text
from lensllm.pipeline.planning import outcome_plan, plan_lines
from lensllm.pipeline.predictive import largest_paid
from lensllm.report import trust_report
from lensllm.report._plots import panels, pyplot, save_figure, short_name, top_panels
from lensllm.report.planning_section import plan_section
from lensllm.report.rung_plot import plot_runs, saved_words
from lensllm.report.verdict import decisive_record, p_best_of

__all__ = ["embed_png", "format_outcome", "format_ranking", "outcome_record", "plot_laws",
           "ranking_rows", "short_name", "write_select_report"]


def ranking_rows(outcome: SelectOutcome) -> list[dict]:
    """The ranking as dicts, best first: rank, model, params, predicted, lower, upper,
    p_best (the probability of the lowest ``L(D*)``; the values sum to 1)."""
    view, sel = outcome.view, outcome.selection
    order = sel.ranking()
    prob = p_best_of(outcome)
    largest = largest_paid(view)  # the size each prediction was made from
    rows = []
    for rank, i in enumerate(order, 1):
        rows.append({
            "rank": rank, "model": view.models[i], "n_params": int(view.n_params[i]),
            "score": float(sel.score[i]),
            "predicted": None if sel.predicted is None else float(sel.predicted[i]),
            "lower": None if sel.lower is None else float(sel.lower[i]),
            "upper": None if sel.upper is None else float(sel.upper[i]),
            "p_best": float(prob[i]),
            "predicted_from_size": (float(largest[i]) if np.isfinite(largest[i])
                                    else None),
            "selected": bool(i == sel.selected), "runs": int(view.paid[i].sum()),
            "curvature": _curvature(view, i)})
    return rows


def rung_label(view, row: dict) -> str:
    """`` (from D<=X)`` when the prediction comes from runs below the largest affordable
    size (a candidate stopped early), else ""."""
    d = row.get("predicted_from_size")
    return "" if d is None or d >= float(view.sizes[-1]) else f" (from D<={d:g})"


def _curvature(view, i: int) -> dict | None:
    """Top Hessian eigenvalue and trace of candidate ``i`` (``[ntk] curvature = true``)."""
    curv = (getattr(view.ntk[i], "meta", {}) or {}).get("curvature") if view.ntk else None
    if not curv:
        return None
    return {"top_eigenvalue": float(curv["top_eigenvalue"]), "trace": float(curv["trace"])}


def format_ranking(outcome: SelectOutcome) -> str:
    """The ranking as a text table (what ``lensllm select`` prints)."""
    sel = outcome.selection
    level = f"{100 * sel.level:.0f}% interval" if sel.level else "interval"
    truth = _truth_at_target(outcome)
    head = ("rank", "model", "params", f"predicted L({outcome.config.target:g})", level,
            "P(best)", "runs")
    head += ("true L(D*)",) if truth is not None else ()
    rows = []
    for r in ranking_rows(outcome):
        pred = "-" if r["predicted"] is None else \
            f"{loss_text(r['predicted'])}{rung_label(outcome.view, r)}"
        iv = interval_text(r["lower"], r["upper"])
        i = outcome.view.models.index(r["model"])
        tied = trust_report.candidate_fields(outcome, i)["tied"]
        rows.append((f"{r['rank']}{'*' if r['selected'] else ''}",
                     short_name(r["model"]) + (" (tied)" if tied else ""),
                     f"{r['n_params'] / 1e6:.2f}M", pred, iv, f"{r['p_best']:.2f}",
                     str(r["runs"]))
                    + ((loss_text(truth[i]),)
                       if truth is not None else ()))
    pad = ("-",) if truth is not None else ()
    for model, reason in outcome.failed:
        rows.append(("-", short_name(model), "-", "failed", reason[:60], "-", "-") + pad)
    for model, n_params, reason in outcome.skipped:
        rows.append(("-", short_name(model), f"{n_params / 1e6:.2f}M", "skipped", reason, "-",
                     "0") + pad)
    widths = [max(len(x[c]) for x in (head, *rows)) for c in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _truth_at_target(outcome: SelectOutcome) -> np.ndarray | None:
    """The store's true ``L(D*)`` per candidate (NaN where missing), None without runs at
    ``D*``."""
    check = None if outcome.trust is None else outcome.trust.at(outcome.view.target)
    return None if check is None else check.true_loss


def outcome_record(outcome: SelectOutcome) -> dict:
    """The outcome as a JSON-ready dict (``lensllm select --json``): the ranking, failures
    and compute spent (FLOPs, counted)."""
    view = outcome.view
    return {
        "method": outcome.config.selection.method, "target": outcome.config.target,
        "max_data": outcome.config.max_data, "loss_unit": view.loss_unit,
        "selected": view.models[outcome.selection.selected],
        "ranking": [{**r, **trust_report.candidate_fields(outcome, view.models.index(r["model"]))}
                    for r in ranking_rows(outcome)],
        "failed": [{"model": m, "reason": r} for m, r in outcome.failed],
        "skipped": [{"model": m, "n_params": n, "reason": r} for m, n, r in outcome.skipped],
        **_ladder_record(outcome),
        "cost_flops": view.cost(), "full_cost_flops": view.full_cost(),
        "full_cost_source": view.full_cost_source,
        "full_cost_estimated_flops": view.estimated_full_cost(),
        "cost_fraction": outcome.cost_fraction,
        "full_cost_horizon_flops": view.full_cost_at_horizon(),
        "cost_fraction_at_least": outcome.cost_fraction_at_least,
        "fine_tuning_cost_fraction": outcome.fine_tuning_cost_fraction,
        "total_cost_flops": outcome.total_cost_flops, "ntk_flops": outcome.ntk_flops,
        "zero_shot_flops": outcome.zero_shot_flops, "runs_executed": outcome.ran,
        "wall_time_s": outcome.wall_time, "planning": outcome_plan(outcome),
        "convergence": convergence_record(outcome.convergence),
        **_verdict_record(outcome),
        **trust_report.trust_record(outcome)}


def _verdict_record(outcome: SelectOutcome) -> dict:
    """The predictive distribution, the verdict and the run that would decide it."""
    from lensllm.pipeline.predictive import CLEAR_WINNER

    pred = outcome.predictive
    return {"headline": trust_report.headline(outcome), "clear_winner_p_best": CLEAR_WINNER,
            "predictive": None if pred is None else pred.to_dict(outcome.selection.level
                                                                 or 0.9),
            "decisive_run": decisive_record(outcome),
            "calibration_extra_runs": outcome.calibration_runs,
            "calibration_extra_flops": outcome.calibration_flops}


def _ladder_record(outcome: SelectOutcome) -> dict:
    """Where each candidate stopped and what stopping saved, for ``--json``."""
    lad = outcome.ladder
    if lad is None:
        return {}
    return {"runs_paid": int(lad.paid.sum()),
            "stopped_at": {m: float(x) for m, x in zip(outcome.view.models, lad.stopped_at)},
            "saved_runs": int(lad.saved.sum()), "saved_flops_estimated": lad.saved_flops,
            "saved_fraction": lad.saved_fraction}


def format_outcome(outcome: SelectOutcome) -> str:
    """The ranking, the selected model and the compute spent, as ``lensllm select`` prints
    them."""
    view = outcome.view
    return "\n".join([
        format_ranking(outcome),
        f"{trust_report.headline(outcome)} (losses in {view.loss_unit.replace('_', ' ')})",
        *trust_report.trust_lines(outcome),
        f"compute: {outcome.total_cost_flops:.3g} FLOPs in all = "
        f"{100 * outcome.cost_fraction:.2f}% of the training FLOPs of fine-tuning all "
        f"{view.n_models} candidates on D*={outcome.config.target:g} "
        f"({view.full_cost():.3g} FLOPs, {_source_words(view)}"
        f"{_floor_words(outcome)}): fine-tuning runs "
        f"{view.cost():.3g} (evaluations included), zero-shot "
        f"{outcome.zero_shot_flops:.3g}, NTK {outcome.ntk_flops:.3g}, back-tests and "
        f"calibration {outcome.extra_flops:.3g}; {outcome.ran} runs executed now, "
        f"{outcome.wall_time:.0f} s",
        convergence_text(outcome.convergence)]
        + ([f"runs: {saved_words(outcome)}"] if outcome.ladder is not None else [])
        + _calibration_lines(outcome)
        + list(plan_lines(outcome_plan(outcome))))


def _calibration_lines(outcome: SelectOutcome) -> list[str]:
    """How the intervals and P(best) were calibrated, and what their back-tests needed."""
    pred = outcome.predictive
    if pred is None:
        return []
    line = f"intervals and P(best): {pred.note}"
    if outcome.calibration_runs:
        line += (f"; its back-tests needed {outcome.calibration_runs} smaller run(s) that "
                 f"the selection itself did not ({outcome.calibration_flops:.3g} FLOPs)")
    return [line]


def _source_words(view) -> str:
    """Where the cost denominator comes from, in a few words."""
    if view.full_cost_source == "measured":
        return (f"measured on real D* runs; the recipe estimated "
                f"{view.estimated_full_cost():.3g}")
    return "estimated by the training recipe, no D* run in the store"


def _floor_words(outcome: SelectOutcome) -> str:
    """Before the ``D*`` runs exist: the cost fraction's floor, every ``D*`` run trained to
    the recipe's horizon (the estimate assumes as many epochs as the largest run, and real
    ``D*`` runs trained as many or more: the fraction is an upper estimate)."""
    view = outcome.view
    if view.full_cost_source == "measured":
        return ""
    floor = 100 * outcome.cost_fraction_at_least
    return (f"; likely an upper estimate (measured D* runs trained as many epochs as the "
            f"largest runs or more); at least {floor:.2f}% if every D* run trains to the "
            f"recipe's horizon ({_horizon_words(view)})")


def _horizon_words(view) -> str:
    """The recipe's horizon at ``D*``: ``"6400 steps = 100 epochs"``."""
    plan = view.recipe.plan(int(math.ceil(view.target)))
    return f"{plan.planned_steps} steps = {plan.planned_epochs:.3g} epochs"


def _unit_label(view) -> str:
    return {"nats_per_byte": "nats/byte"}.get(getattr(view, "loss_unit", ""), "nats/token")


def _loss_range(outcome: SelectOutcome, shown) -> tuple[float, float] | None:
    """The y-range of the curve panels: the observed, zero-shot, predicted and true losses
    of the candidates shown and their intervals up to a factor 2 beyond those, with a
    margin (an interval or a law further off is cut at the edge rather than stretching
    every panel)."""
    view, sel = outcome.view, outcome.selection
    vals = [np.asarray(outcome.observed[i][1], float) for i in shown]
    if view.zero_shot is not None:
        vals.append(np.asarray(view.zero_shot, float)[list(shown)])
    if sel.predicted is not None:
        vals.append(np.asarray(sel.predicted, float)[list(shown)])
    truth = _truth_at_target(outcome)
    if truth is not None:
        vals.append(np.asarray(truth, float)[list(shown)])
    v = np.concatenate(vals) if vals else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    if sel.lower is not None and sel.upper is not None:  # intervals, within a factor 2
        ends = np.concatenate([np.asarray(sel.lower, float)[list(shown)],
                               np.asarray(sel.upper, float)[list(shown)]])
        ends = ends[np.isfinite(ends) & (ends > 0)]
        if ends.size:
            lo, hi = min(lo, max(float(ends.min()), lo / 2)), max(hi, min(float(ends.max()),
                                                                          2 * hi))
    pad = 0.15 * (hi - lo) if hi > lo else 0.1 * hi
    return max(0.0, lo - pad), hi + pad


def _panels(outcome: SelectOutcome, path: Path, draw, *, sharey: bool) -> None:
    """One panel per candidate, ``draw(ax, i, grid)`` filling each; one legend on top."""
    plt = pyplot()
    view, sel = outcome.view, outcome.selection
    shown, note = top_panels(sel.ranking(), view.n_models)
    n = len(shown)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows + 0.6), squeeze=False,
                             sharey=sharey)
    grid = np.geomspace(max(1.0, float(view.sizes[0]) / 2), view.target * 1.3, 160)
    for _, ax, i in panels(axes, shown, cols):
        sizes, losses = outcome.observed[i]
        if view.zero_shot is not None:
            ax.axhline(view.zero_shot[i], color="0.5", ls="--", lw=0.8, label="zero-shot (D=0)")
        ax.plot(sizes, losses, "o", color="C0", ms=5, label="observed (paid)", zorder=5)
        draw(ax, i, grid)
        ax.axvline(view.max_data_num, color="0.8", lw=0.8)
        ax.set_xscale("log")
        title = short_name(view.models[i]) + ("  (selected)" if i == sel.selected else "")
        ax.set_title(plot_text(title), fontsize=9, fontweight="bold" if i == sel.selected else None)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("fine-tuning examples D (log)", fontsize=8)
        ax.set_ylabel(f"test loss ({_unit_label(view)})", fontsize=8)
        ax.grid(alpha=0.25, which="both")
    for _, ax, i in panels(axes, shown, cols):  # one range when the y-axis is shared
        ylim = _loss_range(outcome, shown if sharey else [i])
        if ylim is not None:
            ax.set_ylim(*ylim)
    handles: dict = {}
    for row in axes:
        for ax in row:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="upper center", fontsize=8,
               ncol=min(5, len(handles)), frameon=False)
    if note:
        fig.text(0.01, 0.002, note.strip(" ()"), fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / (2.9 * rows + 0.6)))
    save_figure(fig, path, dpi=90)


def plot_curves(outcome: SelectOutcome, path: Path, truth: np.ndarray | None = None) -> None:
    """One panel per candidate: the observed points, the selector's own fit, its predicted
    ``L(D*)`` with interval, the back-test (the held-out run's prediction, a diamond) and
    the true ``L(D*)`` (a star) when known; one shared y-axis when the losses are
    comparable. The other laws are in :func:`plot_laws`."""
    view, sel, trust = outcome.view, outcome.selection, outcome.trust
    if truth is None:
        truth = _truth_at_target(outcome)
    curve = None
    method = outcome.config.selection.method

    def draw(ax, i, grid):
        nonlocal curve
        if sel.curve is not None:
            curve = sel.curve(grid) if curve is None else curve
            ax.plot(grid, curve[i], "-", color="C1", lw=1.6, label=plot_text(f"{method} fit"))
        if sel.predicted is not None:
            ax.plot([view.target], [sel.predicted[i]], "x", color="C3", ms=8, mew=2,
                    label="predicted L(D*)")
            if sel.lower is not None:
                ax.vlines(view.target, sel.lower[i], sel.upper[i], color="C3", lw=2)
        b = None if trust is None else trust.backtests[i]
        if b is not None and b.predicted is not None:
            ax.plot([b.size], [b.predicted], "D", mfc="none", color="C2", ms=6,
                    label="back-test prediction")
            if b.lower is not None:
                ax.vlines(b.size, b.lower, b.upper, color="C2", lw=1.2)
        if truth is not None and np.isfinite(truth[i]):
            ax.plot([view.target], [truth[i]], "*", color="k", ms=10, label="true L(D*)")

    _panels(outcome, path, draw, sharey=trust is None or trust.comparable)


def plot_laws(outcome: SelectOutcome, path: Path) -> None:
    """The second figure: the observed points with every law of
    :data:`lensllm.pipeline.LAW_LABELS` fitted to them, and the LensLLM phase transition."""
    styles = {"power": ("C1", "-"), "rectified": ("C2", "--"), "lens_fit_t": ("C4", "-."),
              "lens_fixed_t": ("C5", ":")}

    def draw(ax, i, grid):
        for name, (color, ls) in styles.items():
            law = outcome.laws.get(name)
            if law is not None and law.curves[i] is not None:
                ax.plot(grid, law.curves[i](grid), ls, color=color, lw=1.0,
                        label=LAW_LABELS[name])
        lens = outcome.laws.get("lens_fit_t")
        if lens is not None and np.isfinite(lens.transition[i]) and \
                grid[0] <= lens.transition[i] <= grid[-1]:
            ax.axvline(lens.transition[i], color="C4", ls=":", lw=1.2,
                       label="phase transition (LensLLM)")

    trust = outcome.trust
    _panels(outcome, path, draw, sharey=trust is None or trust.comparable)


def plot_ranking(outcome: SelectOutcome, path: Path, truth: np.ndarray | None = None) -> None:
    """Predicted ``L(D*)`` per candidate, best at the top, with intervals."""
    plt = pyplot()
    view, sel = outcome.view, outcome.selection
    rows = ranking_rows(outcome)
    index = {m: i for i, m in enumerate(view.models)}
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    values = [r["predicted"] if r["predicted"] is not None else r["score"] for r in rows]
    for yy, r, v in zip(y, rows, values):
        color = "C3" if r["selected"] else "C0"
        if r["lower"] is not None:  # the calibrated interval may lie to one side of v
            hi = r["upper"] if np.isfinite(r["upper"]) else ax.get_xlim()[1]
            ax.hlines(yy, r["lower"], hi, color=color, lw=1.5)
            ax.plot([r["lower"], hi], [yy, yy], "|", color=color, ms=8)
        ax.plot(v, yy, "o", color=color)
        if truth is not None:
            ax.plot(truth[index[r["model"]]], yy, "*", color="k", ms=9)
    ax.set_yticks(y)
    ax.set_yticklabels([plot_text(f"{r['rank']}. {short_name(r['model'])}") for r in rows],
                       fontsize=8)
    what = "predicted" if sel.predicted is not None else "score of"
    ax.set_xlabel(f"{what} test loss at D* = {view.target:g} ({_unit_label(view)})"
                  + ("; star: true loss" if truth is not None else ""))
    ax.set_title(plot_text(f"Ranking by {outcome.config.selection.method} (red: selected)"),
                 fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def _full_cost_note(outcome: SelectOutcome) -> str:
    """Where the denominator of the cost fraction comes from, in a sentence or two."""
    view = outcome.view
    if view.full_cost_source == "measured":
        est = view.estimated_full_cost()
        return (f"The cost of fine-tuning all candidates on D* ({view.full_cost():.3g} FLOPs) "
                f"is <b>measured</b> on real D* runs; the training recipe estimated "
                f"{est:.3g} ({100 * (est / view.full_cost() - 1):+.0f}%).")
    return (f"The cost of fine-tuning all candidates on D* ({view.full_cost():.3g} FLOPs) is "
            "<b>estimated</b> from the training recipe (each D* run trains as many epochs "
            "as the candidate's largest paid run); no D* run is in the store. Real D* runs "
            "trained as many epochs or more, so the fraction is an upper estimate; if "
            f"every D* run trained to the recipe's horizon ({_horizon_words(view)}, "
            f"{view.full_cost_at_horizon():.3g} FLOPs) it would be "
            f"{100 * outcome.cost_fraction_at_least:.2f}%.")


def plot_cost(outcome: SelectOutcome, path: Path) -> None:
    """Compute spent by kind against fine-tuning every candidate on ``D*``."""
    plt = pyplot()
    view = outcome.view
    labels = ["fine-tuning runs\n(paid by the selector)", "zero-shot\nevaluation",
              "NTK features", f"fine-tune every\ncandidate on D*\n({view.full_cost_source})"]
    values = [view.cost(), outcome.zero_shot_flops, outcome.ntk_flops, view.full_cost()]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    colors = ["C0", "C7", "C4", "C3"]
    bars = ax.barh(labels[::-1], [max(v, 1.0) for v in values[::-1]], color=colors[::-1])
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs (counted; log scale)")
    full = values[-1]
    for bar, v in zip(bars, values[::-1]):
        ax.text(bar.get_width() * 1.1, bar.get_y() + bar.get_height() / 2,
                f"{v:.3g}  ({100 * v / full:.2f}%)", va="center", fontsize=8)
    ax.set_xlim(right=full * 30)
    ax.set_title("Compute spent vs fine-tuning all candidates on D*", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def embed_png(path: Path, alt: str) -> str:
    """An ``<img>`` tag with the PNG inlined (base64), so the HTML file stands alone."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table>"


_STYLE = """<style>
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 1.5em auto;
       color: #222; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; } td:first-child, td:nth-child(2) { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.4em 0; }
.big { font-size: 1.15em; }
</style>"""
_CURVES_TEXT = """<h2>Loss curves and the selector's fit</h2>
<p>Dots: test loss after fine-tuning on D examples (mean over seeds), only the runs the
selector paid for. Dashed grey: zero-shot loss. The vertical grey line is the budget. The
line is the selector's own fit; the cross and bar its predicted L(D*) and interval; the
diamond the back-test's prediction of the largest paid run; the star the true L(D*) when
the store has runs at D*.</p>"""
_LAWS_TEXT = """<h2>Every law fitted to the same points</h2>
<p>The dotted vertical line marks where the LensLLM law's pre-power phase ends
(D<sup>beta</sup> = F).</p>"""


def write_select_report(outcome: SelectOutcome, out_dir: str | Path, *,
                        title: str = "lensllm select", truth: np.ndarray | None = None,
                        intro: str = "", extra_html: str = "") -> Path:
    """Write ``index.html`` and the PNGs under ``out_dir``; return the HTML path.

    Args:
        outcome: from :func:`lensllm.pipeline.run_select`.
        out_dir: the report directory (created).
        title: the page title.
        truth: true ``L(D*)`` per candidate when known (benchmarks), drawn as stars.
        intro: an HTML paragraph under the title.
        extra_html: appended sections (benchmark tables...).
    """
    out = make_dir(out_dir, "report folder")
    plot_curves(outcome, out / "curves.png", truth)
    plot_laws(outcome, out / "laws.png")
    if truth is None:
        truth = _truth_at_target(outcome)
    plot_ranking(outcome, out / "ranking.png", truth)
    plot_cost(outcome, out / "cost.png")
    planning = plan_section(outcome, out, embed_png)
    runs_html = ""
    if outcome.ladder is not None:
        plot_runs(outcome, out / "runs.png")
        runs_html = (f"<h2>Runs paid</h2>\n<p>{html.escape(saved_words(outcome))}.</p>\n"
                     + embed_png(out / "runs.png", "runs paid per candidate and size"))
    cfg, view, sel = outcome.config, outcome.view, outcome.selection
    best = view.models[sel.selected]
    head, rows = _ranking_table(outcome, truth)
    failed = _failed_list(outcome) + _skipped_list(outcome)
    laws_table, laws_note = _laws_section(outcome)
    frac = outcome.cost_fraction
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{_STYLE}</head><body>
<h1>{html.escape(title)}</h1>
{intro}
<p class="big">{_headline_html(outcome, best)}
(method <code>{html.escape(cfg.selection.method)}</code>, task
<code>{html.escape(view.dataset)}</code>, budget {cfg.max_data:g} examples, prediction at
D* = {cfg.target:g}). Compute: {outcome.total_cost_flops:.3g} FLOPs in all (fine-tuning
runs with their evaluations, zero-shot, NTK features, back-tests) =
<b>{100 * frac:.2f}%</b> of the training FLOPs of fine-tuning all {view.n_models}
candidates on D* (the fine-tuning runs alone: {100 * outcome.fine_tuning_cost_fraction:.2f}%).
{html.escape(convergence_text(outcome.convergence))}.
{_full_cost_note(outcome)}</p>
<h2>Ranking</h2>
{_table(head, rows)}
{embed_png(out / "ranking.png", "ranking with intervals")}
{failed}
{planning}
{trust_report.trust_html(outcome)}
{_CURVES_TEXT}
{embed_png(out / "curves.png", "loss curves and the selector's fit")}
{_LAWS_TEXT}
{embed_png(out / "laws.png", "every law fitted to the observed points")}
{laws_table}
{laws_note}
<h2>Cost</h2>
{embed_png(out / "cost.png", "compute spent")}
{runs_html}
{extra_html}
<p style="color:#777;font-size:0.85em">Written by lensllm in {outcome.wall_time:.0f} s
({outcome.ran} runs executed, the others read from the store).</p>
</body></html>
"""
    path = out / "index.html"
    write_text(path, page, "report")
    return path


def _headline_html(outcome: SelectOutcome, best: str) -> str:
    """The verdict (:func:`lensllm.report.verdict.headline`), its first words in bold."""
    words = trust_report.headline(outcome)
    cut = min((k for k in (words.find(" ("), words.find(": ")) if k > 0), default=len(words))
    return f"<b>{html.escape(words[:cut])}</b>{html.escape(words[cut:])}"


def _ranking_table(outcome: SelectOutcome, truth: np.ndarray | None
                   ) -> tuple[list[str], list[list[str]]]:
    """Header and HTML cells of the ranking table (a ``true L(D*)`` column with ``truth``)."""
    cfg, view, sel = outcome.config, outcome.view, outcome.selection
    rows = []
    with_curv = any(r["curvature"] for r in ranking_rows(outcome))
    for r in ranking_rows(outcome):
        iv = interval_text(r["lower"], r["upper"])
        pred = "-" if r["predicted"] is None else \
            f"{loss_text(r['predicted'])}{html.escape(rung_label(view, r))}"
        tr = ""
        i = view.models.index(r["model"])
        if truth is not None:
            tr = loss_text(truth[i])
        name = html.escape(short_name(r["model"]))
        curv = r["curvature"]
        hess = ([f"{curv['top_eigenvalue']:.4g}", f"{curv['trace']:.4g}"] if curv
                else ["-", "-"]) if with_curv else []
        if trust_report.candidate_fields(outcome, i)["tied"]:
            name += " (tied)"
        rows.append([str(r["rank"]), f"<b>{name}</b>" if r["selected"] else name,
                     f"{r['n_params'] / 1e6:.2f}M", pred, iv, f"{r['p_best']:.2f}"]
                    + ([tr] if truth is not None else [])
                    + [str(r["runs"])] + hess)
    head = ["rank", "model", "params", f"predicted L({cfg.target:g})",
            f"{100 * sel.level:.0f}% interval" if sel.level else "interval", "P(best)"]
    head += (["true L(D*)"] if truth is not None else []) + ["runs paid"]
    head += ["top Hessian eigenvalue", "Hessian trace"] if with_curv else []
    return head, rows


def _failed_list(outcome: SelectOutcome) -> str:
    """The failed candidates as an HTML section ("" when none failed)."""
    if not outcome.failed:
        return ""
    return "<h2>Failed candidates</h2><ul>" + "".join(
        f"<li><b>{html.escape(short_name(m))}</b>: {html.escape(r)}</li>"
        for m, r in outcome.failed) + "</ul>"


def _skipped_list(outcome: SelectOutcome) -> str:
    """The candidates skipped by ``max_params`` as an HTML section ("" when none)."""
    if not outcome.skipped:
        return ""
    return ("<h2>Skipped candidates (above max_params, no run paid)</h2><ul>" + "".join(
        f"<li><b>{html.escape(short_name(m))}</b>: {html.escape(r)}</li>"
        for m, _, r in outcome.skipped) + "</ul>")


def _laws_section(outcome: SelectOutcome) -> tuple[str, str]:
    """The table of each law's ``L(D*)`` per candidate, and a note where the LensLLM law
    with ``t`` fitted coincides with the rectified law."""
    view = outcome.view
    law_rows = []
    for name, law in outcome.laws.items():
        law_rows.append([html.escape(LAW_LABELS[name])] + [
            ("-" if not np.isfinite(v) else f"{v:.4f}") for v in law.predicted])
    laws_table = _table(["law fitted to the observed points"] +  # _table escapes the head
                        [short_name(m) for m in view.models], law_rows)
    laws_note = ""
    rect, lens = outcome.laws.get("rectified"), outcome.laws.get("lens_fit_t")
    if rect is not None and lens is not None:
        both = np.isfinite(rect.predicted) & np.isfinite(lens.predicted)
        same = both & np.isclose(rect.predicted, lens.predicted, rtol=1e-4)
        if same.any():
            laws_note = (
                f"<p>For {int(same.sum())} of {int(both.sum())} candidates the LensLLM law "
                "with t fitted predicts what the rectified law predicts: F(Theta, t) decreases "
                "from F(0) = ||r0||<sup>2</sup> towards 0 as t grows, so a fitted t can give F "
                "any value below F(0), and F then plays the role of the rectified law's free "
                "D<sub>l</sub>. With t fixed (the early-stopping step of the largest run) "
                "the kernel, not the fit, sets F.</p>")
    return laws_table, laws_note
