"""How far to trust a ``lensllm select`` ranking, as text, JSON fields and HTML.

Reads the :class:`~lensllm.pipeline.trust.Trust` of an outcome (back-tests, truth checks,
ties) and scores the truth checks with the bench's metrics (RelAcc, PearCorr, log-RMSE,
interval coverage), so that a select report and a bench table use one definition of each.
An outcome without a trust assessment (built by hand) gives empty sections and null fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lensllm.bench.metrics import coverage, log_rmse, pearson_corr, rel_acc
from lensllm.outputs import html_text
from lensllm.outputs.numbers import interval_text, loss_text
from lensllm.pipeline.trust import Backtest, TruthCheck
from lensllm.report._plots import short_name

__all__ = ["backtest_cost_words", "backtest_record", "candidate_fields", "check_metrics",
           "check_rows", "coverage_words", "expected_words", "headline", "metric_words",
           "trust_html", "trust_lines", "trust_record", "uncertain_reasons", "unconverged_words"]


def _name(model: str) -> str:
    return Path(model.rstrip("/")).name or model


def _num(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def check_metrics(check: TruthCheck) -> dict | None:
    """RelAcc, PearCorr, log-RMSE and interval coverage of one truth check, over the
    candidates with a true loss; None with fewer than two of them or no predictions.

    RelAcc is that of the checked selection's pick (None when the pick has no true loss);
    PearCorr correlates the predicted loss (else the score, oriented so lower is better)
    with the true loss. ``coverage_expected`` is the range of the number of intervals
    holding the truth that the joint distribution they were read from expects
    (:attr:`TruthCheck.expected`; null for refits at other sizes than ``D*``): a share far
    from 0.90 on one task is what a calibrated distribution often gives, since the error
    shared by every candidate moves all the truths together."""
    sel, known = check.selection, check.known
    if sel is None or known.sum() < 2:
        return None
    truth = check.true_loss[known]
    if sel.predicted is not None:
        guess = sel.predicted
    else:
        guess = -sel.score if sel.higher_is_better else sel.score
    where = np.flatnonzero(known)
    out = {"size": check.size, "n_models": int(known.sum()),
           "relacc": (rel_acc(int(np.searchsorted(where, sel.selected)), truth)
                      if known[sel.selected] else None),
           "pearcorr": pearson_corr(guess[known], truth),
           "log_rmse": (None if sel.predicted is None else
                        _num(log_rmse(sel.predicted[known], truth))),
           "coverage": None, "covered": None, "coverage_expected": None,
           "unconverged": list(check.unconverged)}
    if sel.lower is not None and sel.upper is not None:
        out["coverage"] = coverage(sel.lower[known], sel.upper[known], truth)
        out["covered"] = int(round(out["coverage"] * int(known.sum())))
        exp = check.expected
        out["coverage_expected"] = None if exp is None else exp.to_dict()
    return out


def uncertain_reasons(outcome) -> list[str]:
    """Why the selection is not one clear winner (empty when none; see
    :meth:`lensllm.pipeline.trust.Trust.uncertain_reasons`)."""
    if outcome.trust is None:
        return []
    view = outcome.view
    return outcome.trust.uncertain_reasons([_name(m) for m in view.models],
                                           outcome.selection.selected, view.target)


def backtest_record(b: Backtest) -> dict:
    """One back-test as JSON: ``size, predicted, lower, upper, observed, covered,
    log_error, note``."""
    return {"size": _num(b.size), "predicted": b.predicted, "lower": b.lower,
            "upper": b.upper, "observed": b.observed, "covered": b.covered,
            "log_error": b.error, "note": b.note}


def unconverged_words(check: TruthCheck) -> str:
    """What the truth check says of runs at its size that did not converge ("" if none)."""
    if not check.unconverged:
        return ""
    names = ", ".join(short_name(m) for m in check.unconverged)
    return (f"; NOT converged at D={check.size:g} (ended at the recipe's horizon still "
            f"improving; the true loss is an upper bound, raise `finetune.epochs`): {names}")


def candidate_fields(outcome, i: int) -> dict:
    """Per-candidate JSON fields: ``true_loss`` (observed ``L(D*)`` or null), ``backtest``
    and ``tied`` (with the leader; null without intervals)."""
    trust = outcome.trust
    if trust is None:
        return {"true_loss": None, "backtest": None, "tied": None}
    check = trust.at(outcome.view.target)
    model = outcome.view.models[i]
    return {"true_loss": None if check is None else _num(check.true_loss[i]),
            "true_loss_converged": (None if check is None or not check.known[i]
                                    else model not in check.unconverged),
            "backtest": backtest_record(trust.backtests[i]),
            "tied": None if trust.tied is None else bool(trust.tied[i])}


def trust_record(outcome) -> dict:
    """Top-level JSON fields: ``truth`` (metrics at ``D*`` or null), ``checks`` (every size
    above the budget with runs in the store), ``backtest_coverage``, ``uncertain``,
    ``uncertain_reasons``, ``comparable`` and what the back-tests paid."""
    trust = outcome.trust
    if trust is None:
        return {"truth": None, "checks": [], "backtest_coverage": None, "uncertain": None,
                "uncertain_reasons": []}
    checks = [m for m in map(check_metrics, trust.checks) if m is not None]
    at_target = trust.at(outcome.view.target)
    covered, n = trust.coverage()
    reasons = uncertain_reasons(outcome)
    return {
        "truth": None if at_target is None else check_metrics(at_target), "checks": checks,
        "backtest_coverage": {"covered": covered, "n": n, "level": outcome.selection.level},
        "uncertain": bool(reasons), "uncertain_reasons": reasons,
        "comparable": trust.comparable, "backtest_extra_runs": trust.extra_runs,
        "backtest_extra_flops": trust.extra_flops, "notes": list(trust.notes)}


def headline(outcome) -> str:
    """The verdict's one line (:func:`lensllm.report.verdict.headline`)."""
    from lensllm.report.verdict import headline as verdict

    return verdict(outcome)


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def _backtest_rows(outcome) -> list[tuple[str, ...]]:
    rows = []
    for m, b in zip(outcome.view.models, outcome.trust.backtests):
        iv = interval_text(b.lower, b.upper)
        cov = {True: "yes", False: "NO", None: "-"}[b.covered]
        rows.append((_name(m), "-" if not np.isfinite(b.size) else f"{b.size:g}",
                     loss_text(b.predicted), iv, loss_text(b.observed),
                     _fmt(b.error, "+.3f"), cov,
                     b.note))
    return rows


def metric_words(m: dict | None) -> str:
    """One truth check's metrics in words."""
    if m is None:
        return "too few candidates with a true loss for metrics"
    words = (f"RelAcc {_fmt(m['relacc'], '.2f')}, PearCorr {_fmt(m['pearcorr'], '.2f')}, "
             f"log-RMSE {_fmt(m['log_rmse'], '.3f')}, interval coverage "
             f"{_fmt(m['coverage'], '.2f')} ({m['n_models']} candidates)")
    if m.get("coverage_expected") is not None and m.get("covered") is not None:
        words += "; " + expected_words(m["covered"], m["coverage_expected"])
    return words


def expected_words(covered: int, expected: dict) -> str:
    """How many intervals held the truth against the range expected
    (:meth:`~lensllm.selection.expected_coverage.ExpectedCoverage.to_dict`), e.g. ``"8 of
    9 intervals held the truth, a calibrated distribution expects 3-9 of 9 (90% of
    outcomes; all 9 in 76%)"``, with ``": NOT as expected"`` outside the range."""
    n, low, high = expected["n"], expected["low"], expected["high"]
    span = f"{low}" if low == high else f"{low}-{high}"
    return (f"{covered} of {n} intervals held the truth, a calibrated distribution expects "
            f"{span} of {n} ({100 * expected['mass']:.0f}% of outcomes; all {n} in "
            f"{100 * expected['all_held']:.0f}%)"
            + ("" if low <= covered <= high else ": NOT as expected"))


def coverage_words(outcome) -> str:
    """The back-test summary line."""
    covered, n = outcome.trust.coverage()
    level = f"{100 * outcome.selection.level:.0f}% " if outcome.selection.level else ""
    if n == 0:
        return "back-test coverage: no back-test with an interval"
    return (f"back-test coverage: {level}intervals covered the held-out run for {covered} of "
            f"{n} candidates")


def backtest_cost_words(trust) -> str:
    """What the back-tests needed beyond the selection's runs, in words: a count of
    ``(model, size)`` runs, whether they ran now or were already in the store."""
    return (f"the back-tests needed {trust.extra_runs} smaller run(s) that the selection "
            f"itself did not: {trust.extra_flops:.3g} FLOPs, counted whether they ran now "
            f"or were already in the store")


def trust_lines(outcome) -> list[str]:
    """The trust part of ``lensllm select``'s text output."""
    trust = outcome.trust
    if trust is None:
        return []
    head = ("model", "held out D", "predicted", "interval", "observed", "log err", "covered",
            "note")
    rows = _backtest_rows(outcome)
    widths = [max(len(x[c]) for x in (head, *rows)) for c in range(len(head))]
    lines = ["back-test (the selector refitted without each candidate's largest paid run; "
             "its own intervals, before calibration):"]
    lines += ["  " + "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()
              for r in (head, *rows)]
    lines.append(coverage_words(outcome))
    if trust.extra_runs:
        lines.append(f"  ({backtest_cost_words(trust)})")
    for check in trust.checks:
        lines.append(f"truth at D={check.size:g} (runs in the store): " + (
            metric_words(check_metrics(check)) if check.selection is not None
            else f"no prediction ({check.note})") + unconverged_words(check))
    if not trust.checks:
        lines.append("truth: no run above the budget in the store (lensllm validate pays "
                     "for some)")
    lines += [f"note: {n}" for n in trust.notes]
    reasons = uncertain_reasons(outcome)
    lines.append("checks: " + ("caution: " + "; ".join(reasons) if reasons else
                               "no interval overlaps the leader's, back-tests covered"))
    return lines


def trust_html(outcome) -> str:
    """The report's "How far to trust this" section (empty without an assessment)."""
    trust = outcome.trust
    if trust is None:
        return ""
    esc = html_text
    head = ["model", "held-out D", "predicted", "interval", "observed", "log error",
            "covered", "note"]
    table = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in _backtest_rows(outcome):
        table.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    checks = "".join(
        f"<li>At D = {c.size:g}: " + esc((metric_words(check_metrics(c)) if c.selection
                                          is not None else f"no prediction ({c.note})")
                                         + unconverged_words(c))
        + "</li>" for c in trust.checks) or (
        "<li>No run above the budget is in the store; <code>lensllm validate</code> pays "
        "for real runs at a larger size for the top candidates.</li>")
    reasons = uncertain_reasons(outcome)
    verdict = ("<b>Caution</b>: " + esc("; ".join(reasons)) if reasons else
               "No interval overlaps the leader's and the back-tests covered.")
    extra = f" {esc(backtest_cost_words(trust)).capitalize()}." if trust.extra_runs else ""
    return f"""<h2>How far to trust this</h2>
<p class="big">{verdict}</p>
<p>Back-test: the selector, unchanged, refitted without each candidate's largest paid run,
predicts that run. {esc(coverage_words(outcome))}.{extra}</p>
{"".join(table)}</table>
<p>True losses above the budget (runs in the store):</p><ul>{checks}</ul>
"""


def check_rows(outcome, size: float) -> list[dict]:
    """Per candidate with a true loss at ``size``, best predicted first: ``model,
    predicted, lower, upper, observed, covered`` (what ``lensllm validate`` prints)."""
    check = None if outcome.trust is None else outcome.trust.at(size)
    if check is None or check.selection is None:
        return []
    sel, rows = check.selection, []
    for i in sel.ranking():
        if not check.known[i]:
            continue
        lo = None if sel.lower is None else float(sel.lower[i])
        hi = None if sel.upper is None else float(sel.upper[i])
        observed = float(check.true_loss[i])
        rows.append({"model": outcome.view.models[i],
                     "predicted": None if sel.predicted is None else float(sel.predicted[i]),
                     "lower": lo, "upper": hi, "observed": observed,
                     "covered": None if lo is None else bool(lo <= observed <= hi)})
    return rows
