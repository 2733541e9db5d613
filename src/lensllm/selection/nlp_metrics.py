"""``nlp_metrics``: rank candidates by heavy-tailed weight-spectrum metrics (WeightWatcher).

The baseline LensLLM compares against (Yang et al., KDD 2023, "Test accuracy vs.
generalization gap: model selection in NLP without accessing training or testing data"):
the empirical spectral density of each weight matrix is fitted with a power law; a smaller
exponent ``alpha`` means a better-trained (more strongly correlated) layer. The score is the
layer average of one metric (``alpha`` by default: lower is better), computed from the
candidate's pretrained weights only: no fine-tuning run is paid for.

Needs the weights, so it applies to run-backed views (``lensllm select`` and the zoo
benchmark: a view with ``load_weights(i)``), not to plain loss tables; and it needs the
``weightwatcher`` package (``pip install 'lensllm[weightwatcher]'``), imported only here,
so :mod:`lensllm.selection` stays torch-free.
"""

from __future__ import annotations

import numpy as np

from lensllm.exceptions import InputError
from lensllm.selection._base import BaseSelector, NotApplicable, Selection, register

__all__ = ["METRICS", "NLPMetrics"]

#: Metrics of ``WeightWatcher.get_summary`` and whether lower is better for each.
METRICS = {"alpha": True, "alpha_weighted": True, "log_alpha_norm": True,
           "log_norm": True, "log_spectral_norm": True, "stable_rank": False}


@register
class NLPMetrics(BaseSelector):
    """Heavy-tailed self-regularisation metrics of the pretrained weights.

    Args:
        metric: a key of :data:`METRICS` (default ``alpha``, the power-law exponent).
        min_evals: smallest number of eigenvalues for a layer to be analysed (small models
            have small layers; WeightWatcher's default is 8).
    """

    name = "nlp_metrics"
    summary = "weight-spectrum power-law alpha of each model (WeightWatcher); no fine-tuning"

    def __init__(self, *, metric: str = "alpha", min_evals: int = 8) -> None:
        if metric not in METRICS:
            raise InputError(f"`metric` must be one of {', '.join(METRICS)}, got {metric!r}")
        if min_evals < 2:
            raise InputError(f"`min_evals` must be >= 2, got {min_evals}")
        self.metric = metric
        self.min_evals = min_evals

    def select(self, view):
        loader = getattr(view, "load_weights", None)
        if loader is None:
            raise NotApplicable("needs the candidates' weights (a plain loss table has none)")
        try:
            import logging
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import weightwatcher as ww
        except ImportError:
            raise NotApplicable("the weightwatcher package is not installed: pip install "
                                "'lensllm[weightwatcher]'") from None
        values = np.empty(view.n_models)
        for i in range(view.n_models):
            try:
                model = loader(i)
            except Exception as exc:  # noqa: BLE001 - reported as not applicable
                raise NotApplicable(f"cannot load the weights of {view.models[i]}: "
                                    f"{str(exc).splitlines()[0]}") from None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                watcher = ww.WeightWatcher(model=model, log_level=logging.ERROR)
                details = watcher.analyze(min_evals=self.min_evals)
                summary = watcher.get_summary(details)
            value = float(summary.get(self.metric, np.nan))
            if not np.isfinite(value):
                raise NotApplicable(f"WeightWatcher found no analysable layer in "
                                    f"{view.models[i]} (metric {self.metric!r})")
            values[i] = value
        score = values if METRICS[self.metric] else -values
        return Selection(score=score, selected=int(np.argmin(score)),
                         info={"metric": self.metric, "values": values.tolist()})
