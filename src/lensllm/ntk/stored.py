"""NTK spectra in the store: the one conversion between :class:`NTKSpectrum` and the
store's :class:`~lensllm.store.NtkFeatures` record (torch-free).

The record names the spectrum's arrays ``eigenvalues`` and ``projections`` (``proj_sq``
here) and keeps the probe settings as columns, so that a stored spectrum can be looked up by
model, dataset, probe seed, ``n``, ``d`` and parameter subset; everything else in ``meta``
(and ``eta``) goes to the record's ``extra``. The other settings that change the features
(:data:`SETTING_KEYS`) are hashed into the record's ``settings`` key, part of its identity:
features of two configs are kept side by side instead of replacing each other.
"""

from __future__ import annotations

import hashlib
import json

from lensllm.exceptions import InputError
from lensllm.ntk.spectrum import NTKSpectrum
from lensllm.store import NtkFeatures

__all__ = ["SETTING_KEYS", "settings_key", "spectrum_from_record", "spectrum_to_record"]

#: ``meta`` keys stored as record columns (not in ``extra``).
_COLUMNS = ("model_id", "probe_seed", "n", "dim", "params", "dtype")
#: ``meta`` keys (besides the columns) whose values change the features: the learning
#: rate, the runs' config hash (data and fine-tuning settings), the data file of
#: ``lensllm ntk``, the sequence length, the adapters and the arithmetic's precision.
SETTING_KEYS = ("eta", "config_hash", "data", "max_length", "lora", "precision")


def settings_key(meta: dict) -> str:
    """16 hex digits identifying the :data:`SETTING_KEYS` values of ``meta``."""
    chosen = {k: meta[k] for k in SETTING_KEYS if meta.get(k) is not None}
    text = json.dumps(chosen, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def spectrum_to_record(spectrum: NTKSpectrum, *, dataset: str) -> NtkFeatures:
    """The spectrum as a record for ``store.record_ntk``.

    ``model``, ``probe_seed``, ``n``, ``dim``, ``params`` and ``dtype`` come from the
    spectrum's ``meta`` (``dim=None``, the exact kernel, is stored as ``d = 0``).

    Args:
        spectrum: the spectrum.
        dataset: name of the dataset the probe set came from.

    Raises:
        InputError: a required metadata key is missing.
    """
    meta = spectrum.meta
    missing = [k for k in ("model_id", "probe_seed", "params", "dtype") if k not in meta]
    if missing:
        raise InputError(f"NTK spectrum metadata lacks {', '.join(missing)}; cannot store it.")
    extra = {k: v for k, v in spectrum.to_dict()["meta"].items() if k not in _COLUMNS}
    return NtkFeatures(
        model=str(meta["model_id"]), dataset=str(dataset), probe_seed=int(meta["probe_seed"]),
        n=spectrum.n, d=int(meta.get("dim") or 0), params_subset=str(meta["params"]),
        dtype=str(meta["dtype"]), eigenvalues=tuple(float(x) for x in spectrum.eigenvalues),
        projections=tuple(float(x) for x in spectrum.proj_sq), extra=extra,
        settings=settings_key({**meta, "eta": spectrum.eta}))


def spectrum_from_record(record: NtkFeatures) -> NTKSpectrum:
    """Rebuild a spectrum from a store record."""
    extra = dict(record.extra or {})
    meta = {**extra, "model_id": record.model, "dataset": record.dataset,
            "probe_seed": record.probe_seed, "n": record.n, "dim": record.d or None,
            "params": record.params_subset, "dtype": record.dtype}
    return NTKSpectrum(record.eigenvalues, record.projections, eta=extra.get("eta"), meta=meta)
