"""Loss tables, the budget protocol, metrics and the bench harness. Imports without torch."""

from __future__ import annotations

from lensllm.bench.budget import BudgetView
from lensllm.bench.harness import DEFAULT_RATIOS, BenchRecord, Evaluation, run_bench
from lensllm.bench.metrics import coverage, log_rmse, pearson_corr, rel_acc
from lensllm.bench.published import load_published
from lensllm.bench.table import (
    BUNDLED_TABLES,
    LOSS_UNITS,
    LossTable,
    check_same_unit,
    load_table,
    parse_table,
)

__all__ = [
    "BudgetView", "DEFAULT_RATIOS", "BenchRecord", "Evaluation", "run_bench",
    "coverage", "log_rmse", "pearson_corr", "rel_acc", "load_published",
    "BUNDLED_TABLES", "LOSS_UNITS", "LossTable", "check_same_unit", "load_table",
    "parse_table",
]
