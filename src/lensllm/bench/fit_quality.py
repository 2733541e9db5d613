"""How well each law fits each model's whole curve (``lensllm fit-quality``).

The published protocol (``published_fit_rmsd.csv``, Lin et al., ICML 2024 release): every
law is fitted to all size columns of a model (not column ``0``) in log space, and its
in-sample log RMSD is ``sqrt(mean((log L_fit(D) - log L(D))**2))`` over those same points.
A law with more freedom fits at least as well in sample; the numbers say how much of each
curve's shape a law misses, not how well it extrapolates (``lensllm bench`` measures that).

Laws: ``power`` (``A D**-alpha + E``, 3 parameters), ``rectified`` (``B / (D_l + D**beta) +
E``, 4), ``paper_power`` (the published code's variant ``(1 / (B D**beta) + |E|)**alpha``,
4; :mod:`lensllm.laws.paper_power`) and ``lens`` (``B / (F(Theta, t) + D**beta) + E`` with
``t`` fitted, 4, only when every model has NTK features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lensllm.bench.table import LossTable
from lensllm.exceptions import InputError
from lensllm.laws import LensLaw, PowerLaw, RectifiedLaw
from lensllm.laws.paper_power import fit_paper_power

__all__ = ["FIT_QUALITY_LAWS", "FitQuality", "fit_quality"]

#: Law names, in report order.
FIT_QUALITY_LAWS = ("power", "rectified", "paper_power", "lens")

#: A published RMSD counts as matched or beaten when ours is at most this much above it.
PUBLISHED_SLACK = 1e-4


@dataclass(frozen=True, eq=False)
class FitQuality:
    """In-sample log RMSD per model and law on one table.

    Attributes:
        dataset: the table's name.
        models: model names ``(C,)``.
        n_points: points per curve (the table's size columns).
        rmsd: per law, the RMSD of each model ``(C,)``.
        notes: per law that could not be fitted, why (``lens`` without NTK features).
        published: per law, the published RMSD of each model ``(C,)``, when known.
    """

    dataset: str
    models: tuple[str, ...]
    n_points: int
    rmsd: dict[str, np.ndarray]
    notes: dict[str, str] = field(default_factory=dict)
    published: dict[str, np.ndarray] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready record per model: ``rmsd`` and ``published`` by law."""
        return [{"dataset": self.dataset, "model": m, "n_points": self.n_points,
                 "rmsd": {law: float(v[i]) for law, v in self.rmsd.items()},
                 "published": {law: float(v[i]) for law, v in self.published.items()}}
                for i, m in enumerate(self.models)]

    def summary(self) -> list[dict[str, Any]]:
        """Per law: mean, median and max RMSD over the models, the published mean, how many
        models our fit leaves above the published RMSD (``+ PUBLISHED_SLACK``), and how many
        models the law fits best of all laws."""
        laws = list(self.rmsd)
        stacked = np.vstack([self.rmsd[law] for law in laws])
        best = np.argmin(stacked, axis=0)
        out = []
        for k, law in enumerate(laws):
            v = self.rmsd[law]
            pub = self.published.get(law)
            out.append({
                "dataset": self.dataset, "law": law, "n_models": int(v.size),
                "mean": float(v.mean()), "median": float(np.median(v)), "max": float(v.max()),
                "best_of_laws": int((best == k).sum()),
                "published_mean": None if pub is None else float(pub.mean()),
                "above_published": None if pub is None else
                int((v > pub + PUBLISHED_SLACK).sum()),
            })
        return out


def _lens_rmsd(table: LossTable, spectra: Mapping[str, Any]) -> np.ndarray:
    missing = [m for m in table.models if m not in spectra]
    if missing:
        raise InputError(f"no NTK features for model {missing[0]!r} of table {table.name!r} "
                         f"({len(missing)} of {table.n_models} models lack them); the lens "
                         f"law needs them for every model")
    batch = LensLaw(fit_t=True).fit_many(table.sizes, table.losses, names=list(table.models),
                                         spectra=[spectra[m] for m in table.models])
    return batch.rmse


def fit_quality(table: LossTable, *, laws: Sequence[str] | None = None,
                spectra: Mapping[str, Any] | None = None,
                published: Mapping[tuple[str, str], Mapping[str, float]] | None = None,
                ) -> FitQuality:
    """Fit every law to every model's size columns and measure the in-sample log RMSD.

    Args:
        table: a loss table (column ``0`` is not used, as in the published protocol).
        laws: law names (default: all of :data:`FIT_QUALITY_LAWS`; ``lens`` is skipped with a
            note when ``spectra`` is None).
        spectra: NTK spectra by model name, for ``lens``.
        published: ``{(dataset, model): {law: rmsd}}`` to compare with (only the laws and
            models it has; see :func:`~lensllm.bench.published.load_published_fit_rmsd`).

    Raises:
        InputError: an unknown law, ``lens`` asked for explicitly without NTK features, or a
            model without features.
    """
    explicit = laws is not None
    laws = list(laws) if explicit else list(FIT_QUALITY_LAWS)
    for law in laws:
        if law not in FIT_QUALITY_LAWS:
            raise InputError(f"unknown law {law!r}; choose from {', '.join(FIT_QUALITY_LAWS)}")
    names = list(table.models)
    rmsd: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}
    for law in laws:
        if law == "power":
            rmsd[law] = PowerLaw().fit_many(table.sizes, table.losses, names=names).rmse
        elif law == "rectified":
            rmsd[law] = RectifiedLaw().fit_many(table.sizes, table.losses, names=names).rmse
        elif law == "paper_power":
            rmsd[law] = fit_paper_power(table.sizes, table.losses, names=names).rmse
        elif spectra is not None:
            rmsd[law] = _lens_rmsd(table, spectra)
        elif explicit:
            raise InputError("the lens law needs NTK features (--ntk FILE, from `lensllm ntk`)")
        else:
            notes[law] = "no NTK features given (--ntk)"
    pub: dict[str, np.ndarray] = {}
    if published:
        for law in rmsd:
            values = [published.get((table.name, m), {}).get(law) for m in names]
            if all(v is not None for v in values):
                pub[law] = np.array(values, float)
    return FitQuality(table.name, tuple(names), int(table.sizes.size), rmsd, notes, pub)
