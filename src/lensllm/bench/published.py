"""The published results of Lin et al. (ICML 2024) on the bundled tables.

``published_rectified_paper.csv`` holds its Tables 1 and 2; the studies of the same release
(hyperparameter ablation of AtS, size-constrained selection, fit quality per model) ship as
``published_<study>.csv`` (protocols: ``docs/studies.md``).
"""

from __future__ import annotations

import csv
import io
from importlib import resources

__all__ = ["PUBLISHED_METHOD_NAMES", "PUBLISHED_STUDIES", "load_published",
           "load_published_study", "load_published_fit_rmsd"]

#: The published studies shipped as ``data/published_<name>.csv``.
PUBLISHED_STUDIES = ("ablation_hyper", "size_constraints", "fit_rmsd")

#: Method names of the paper mapped to lensllm's registry names.
PUBLISHED_METHOD_NAMES = {
    "AtS": "ats", "ZeroShot": "zero_shot", "SubTuning": "subtuning", "ModelSize": "model_size",
    "OurFit": "rectified_fit", "VanillaFit": "vanilla_fit",
}


def load_published() -> dict[tuple[str, int, str, str], float]:
    """``{(dataset, budget_ratio, method, metric): value}`` with values as fractions.

    ``metric`` is ``pearcorr`` or ``relacc``; ``method`` uses lensllm's registry names.
    """
    text = resources.files("lensllm.bench").joinpath(
        "data/published_rectified_paper.csv").read_text()
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row["dataset"], int(row["budget_ratio"]), PUBLISHED_METHOD_NAMES[row["method"]],
               row["metric"].lower())
        out[key] = float(row["value_percent"]) / 100.0
    return out


def load_published_study(name: str) -> list[dict[str, str]]:
    """The rows of ``published_<name>.csv`` (``name`` in :data:`PUBLISHED_STUDIES`) as
    dicts of strings; dataset names lower-cased to match the bundled tables."""
    if name not in PUBLISHED_STUDIES:
        raise ValueError(f"unknown published study {name!r}; one of {PUBLISHED_STUDIES}")
    text = resources.files("lensllm.bench").joinpath(f"data/published_{name}.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["dataset"] = row["dataset"].lower()
    return rows


def load_published_fit_rmsd() -> dict[tuple[str, str], dict[str, float]]:
    """``{(dataset, model): {"rectified": rmsd, "paper_power": rmsd}}``: the published
    in-sample log RMSD of each law fitted to a model's 14 size columns."""
    return {(r["dataset"], r["model"]): {"rectified": float(r["our_rmsd_under_log"]),
                                         "paper_power": float(r["vanilla_rmsd_under_log"])}
            for r in load_published_study("fit_rmsd")}
