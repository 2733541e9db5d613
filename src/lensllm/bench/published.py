"""The published selection results of Lin et al. (ICML 2024) on the bundled tables."""

from __future__ import annotations

import csv
import io
from importlib import resources

__all__ = ["PUBLISHED_METHOD_NAMES", "load_published"]

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
