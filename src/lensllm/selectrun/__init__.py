"""``lensllm select`` on real models: run-backed selection views, NTK features, reports.

Needs the ``finetune`` extra (torch). The selectors of :mod:`lensllm.selection` run
unchanged: :class:`RunView` satisfies :class:`lensllm.bench.budget.SelectionView`, running
(or reading from the store) the fine-tuning runs a selector asks for. See ``docs/select.md``.
"""

from __future__ import annotations

from lensllm.selectrun.config import (
    NtkSettings,
    SelectConfig,
    SelectionSettings,
    load_select_config,
    select_config_from_dict,
)
from lensllm.selectrun.driver import SelectOutcome, fit_laws, run_select
from lensllm.selectrun.view import CandidateFailed, RunView

__all__ = [
    "CandidateFailed",
    "NtkSettings",
    "RunView",
    "SelectConfig",
    "SelectOutcome",
    "SelectionSettings",
    "fit_laws",
    "load_select_config",
    "run_select",
    "select_config_from_dict",
]
