"""The real-run pipeline of ``lensllm select`` (the counterpart of :mod:`lensllm.bench`).

Needs the ``finetune`` extra (torch). The selectors of :mod:`lensllm.selection` run
unchanged: :class:`RunView` implements :class:`lensllm.selection.SelectionView`, running (or
reading from the store) the fine-tuning runs a selector asks for. By stage:

- :mod:`~lensllm.pipeline.config`: the ``lensllm select`` TOML (torch-free);
- :mod:`~lensllm.pipeline.stages`: candidates, zero-shot, NTK features, selection, passing
  one :class:`~lensllm.pipeline.stages.CandidateRecord` per model;
- :mod:`~lensllm.pipeline.ntk_features`: a candidate's NTK spectrum, cached in the store;
- :mod:`~lensllm.pipeline.view`: the run-backed selection view;
- :mod:`~lensllm.pipeline.laws`: the laws fitted for the report;
- :mod:`~lensllm.pipeline.rungs`: runs paid per candidate and size, where each candidate
  stopped, and the cost that stopping early saved;
- :mod:`~lensllm.pipeline.run`: :func:`run_select`, all of it in order.

See ``docs/select.md``.
"""

from __future__ import annotations

from lensllm.pipeline.config import (
    NtkSettings,
    SelectConfig,
    SelectionSettings,
    load_select_config,
    select_config_from_dict,
)
from lensllm.pipeline.laws import LAW_LABELS, LawCurves, fit_laws
from lensllm.pipeline.rungs import RunLadder
from lensllm.pipeline.run import SelectOutcome, run_select
from lensllm.pipeline.stages import CandidateRecord
from lensllm.pipeline.view import CandidateFailed, RunView

__all__ = [
    "LAW_LABELS",
    "CandidateRecord",
    "CandidateFailed",
    "LawCurves",
    "NtkSettings",
    "RunLadder",
    "RunView",
    "SelectConfig",
    "SelectOutcome",
    "SelectionSettings",
    "fit_laws",
    "load_select_config",
    "run_select",
    "select_config_from_dict",
]
