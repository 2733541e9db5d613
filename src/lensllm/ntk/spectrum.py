"""The NTK spectrum of a model on a probe set, and the NTK-predicted loss F(t) it implies.

This module is numpy only (no torch; importing it does not import the torch part of
:mod:`lensllm.ntk`): the laws and the selectors read stored spectra without the ``finetune``
extra. ``F(t)`` has one formula, :func:`lensllm.laws.lens.ntk_loss`, which both the LensLLM
law and :meth:`NTKSpectrum.ntk_loss` evaluate. The spectra themselves are computed by
:func:`lensllm.ntk.measure_ntk` (torch); :mod:`lensllm.ntk.stored` converts them to and
from store records.

Definitions (see ``docs/ntk.md``): with the empirical neural tangent kernel
``Theta = G G^T`` of shape ``(n_probe, n_probe)`` (``G`` stacks the per-example gradients of the
outputs ``f(x_i)``), its eigendecomposition ``Theta = U diag(lambda) U^T`` and the residual at the
start of fine-tuning ``r0`` of shape ``(n_probe,)``, the linearised model trained by gradient
flow with learning rate ``eta`` for ``t`` steps has squared residual

    F(t) = || expm(-eta * Theta * t) r0 ||^2 = sum_k exp(-2 * eta * lambda_k * t) * (u_k^T r0)^2.

``expm`` is the *matrix* exponential. The spectrum therefore needs only ``2 * n_probe`` numbers:
``eigenvalues`` (``lambda``) and ``proj_sq`` (``(U^T r0)^2``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensllm._version import __version__
from lensllm.exceptions import InputError
from lensllm.laws.lens import ntk_loss

__all__ = ["EIGENVALUE_RTOL", "FORMAT_NAME", "FORMAT_VERSION", "NTKSpectrum"]

#: Relative tolerance for negative eigenvalues. ``Theta = G G^T`` is positive semi-definite, so
#: a negative eigenvalue can only come from floating-point round-off in the Gram product or in
#: ``eigh``. Eigenvalues in ``[-EIGENVALUE_RTOL * max|lambda|, 0)`` are clipped to 0; anything
#: more negative means the input is not a kernel spectrum and raises :class:`InputError`.
#: The kernel is accumulated in float64, whose round-off is ~1e-16 * n relative, so 1e-6 also
#: leaves room for a kernel computed in float32 (round-off ~1e-7 * sqrt(n) relative).
EIGENVALUE_RTOL = 1e-6

#: ``format`` field of the JSON files written by :meth:`NTKSpectrum.to_json`.
FORMAT_NAME = "lensllm.ntk_spectrum"
#: Version of that JSON layout; :meth:`NTKSpectrum.from_json` refuses newer versions.
FORMAT_VERSION = 1


def _as_vector(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)  # copies: the caller's array stays theirs
    except (TypeError, ValueError) as exc:
        raise InputError(f"`{name}` must be a 1-D array of numbers: {exc}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"`{name}` must be a non-empty 1-D array, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise InputError(f"`{name}` must be finite, got {arr[bad]} at index {bad}.")
    return arr


def _check_eta(eta: Any, name: str = "eta") -> float:
    try:
        value = float(eta)
    except (TypeError, ValueError):
        raise InputError(f"`{name}` must be a positive number, got {eta!r}.") from None
    if not math.isfinite(value) or value <= 0.0:
        raise InputError(f"`{name}` must be a finite number > 0, got {eta!r}.")
    return value


@dataclass(frozen=True, eq=False)
class NTKSpectrum:
    """Eigenvalues of the empirical NTK on a probe set and the residual's energy along each.

    Instances are immutable; the arrays are read-only float64 copies.

    Attributes:
        eigenvalues: ``lambda_k`` of ``Theta``, shape ``(n_probe,)``, >= 0 after clipping
            round-off (see :data:`EIGENVALUE_RTOL`). Units: (output units)^2 per unit of
            parameter, i.e. squared gradient norms.
        proj_sq: ``(u_k^T r0)^2`` for each eigenvector ``u_k``, shape ``(n_probe,)``, >= 0.
            Their sum is ``||r0||^2 = F(0)``.
        eta: The learning rate of the fine-tuning run the spectrum is used for, or ``None`` when
            unknown (then pass ``eta`` to :meth:`ntk_loss`).
        meta: JSON-serialisable metadata: ``model_id``, ``probe_seed``, ``n``, ``dim``,
            ``params``, ``dtype``, ``lensllm_version`` and anything else the producer records.

    Raises:
        InputError: non-finite values, shapes that differ, negative ``proj_sq``, eigenvalues
            below ``-EIGENVALUE_RTOL * max|lambda|``, or ``eta`` not > 0.

    Example:
        >>> s = NTKSpectrum(np.array([2.0, 0.5]), np.array([1.0, 3.0]), eta=0.1)
        >>> float(s.ntk_loss(0.0))
        4.0
    """

    eigenvalues: np.ndarray
    proj_sq: np.ndarray
    eta: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lam = _as_vector("eigenvalues", self.eigenvalues)
        proj = _as_vector("proj_sq", self.proj_sq)
        if lam.shape != proj.shape:
            raise InputError(
                f"`eigenvalues` and `proj_sq` must have the same shape, got {lam.shape} "
                f"and {proj.shape}."
            )
        scale = float(np.max(np.abs(lam)))
        tol = EIGENVALUE_RTOL * scale
        if lam.min() < -tol:
            raise InputError(
                f"`eigenvalues` must be >= 0 (a kernel is positive semi-definite), got "
                f"{lam.min():.6g} with largest |eigenvalue| {scale:.6g}; only round-off down to "
                f"-{EIGENVALUE_RTOL:g} * max|eigenvalue| is tolerated."
            )
        lam = np.clip(lam, 0.0, None)
        if proj.min() < 0.0:
            raise InputError(f"`proj_sq` must be >= 0 (squared projections), got {proj.min()}.")
        eta = None if self.eta is None else _check_eta(self.eta)
        if not isinstance(self.meta, dict):
            raise InputError(f"`meta` must be a dict, got {type(self.meta).__name__}.")
        lam.flags.writeable = False
        proj.flags.writeable = False
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "proj_sq", proj)
        object.__setattr__(self, "eta", eta)
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def n(self) -> int:
        """Number of probe examples (the size of the kernel)."""
        return int(self.eigenvalues.size)

    @property
    def residual_sq(self) -> float:
        """``||r0||^2 = F(0)``: the squared residual at the start of fine-tuning."""
        return float(self.proj_sq.sum())

    def ntk_loss(self, t: Any, eta: float | None = None) -> np.ndarray:
        """The NTK-predicted squared residual ``F(t)`` after ``t`` optimizer steps.

        ``F(t) = sum_k exp(-2 * eta * lambda_k * t) * proj_sq_k``, the closed form of
        ``||expm(-eta * Theta * t) r0||^2``. Every exponent is <= 0 (``lambda >= 0``,
        ``t >= 0``), so terms lie in ``[0, proj_sq_k]``: no overflow, and underflow to 0 only
        where the true value is below ~1e-308 of ``proj_sq_k``. ``F`` is non-increasing in
        ``t``, ``F(0) = ||r0||^2`` and ``F(inf)`` is the energy of ``r0`` in the kernel's null
        space.

        Args:
            t: Steps, a scalar or an array of any shape; finite and >= 0 (fractional values
                are allowed, the law fits ``t`` as a continuous parameter).
            eta: Learning rate; defaults to :attr:`eta`. ``t`` and ``eta`` enter only as the
                product ``eta * t``.

        Returns:
            ``F(t)``, float64 with the shape of ``t`` (0-d for a scalar).

        Raises:
            InputError: ``t`` not finite or negative; no ``eta`` given and none stored; ``eta``
                not > 0.
        """
        if eta is None:
            if self.eta is None:
                raise InputError(
                    "`eta` (the learning rate) is needed to evaluate F(t): pass eta= or build "
                    "the spectrum with eta."
                )
            rate = self.eta
        else:
            rate = _check_eta(eta)
        try:
            steps = np.asarray(t, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"`t` must be a number or an array of numbers, got {t!r}.") from None
        if not np.all(np.isfinite(steps)):
            raise InputError("`t` must be finite.")
        if steps.size and steps.min() < 0.0:
            raise InputError(f"`t` must be >= 0 (steps of training), got {steps.min()}.")
        values, _ = ntk_loss(steps, self.eigenvalues, self.proj_sq, rate)
        return np.asarray(values, dtype=np.float64)

    def with_eta(self, eta: float) -> NTKSpectrum:
        """A copy that carries the learning rate ``eta`` (also recorded in ``meta``)."""
        meta = dict(self.meta)
        meta["eta"] = _check_eta(eta)
        return NTKSpectrum(self.eigenvalues, self.proj_sq, eta=eta, meta=meta)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: arrays as lists of floats, all metadata, the format version."""
        meta = dict(self.meta)
        meta.setdefault("lensllm_version", __version__)
        meta["eta"] = self.eta
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "eigenvalues": [float(x) for x in self.eigenvalues],
            "proj_sq": [float(x) for x in self.proj_sq],
            "eta": self.eta,
            "meta": meta,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Serialise to JSON text. Floats round-trip exactly (``repr`` precision).

        Raises:
            InputError: ``meta`` holds a value JSON cannot encode.
        """
        try:
            return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"NTK spectrum `meta` is not JSON-serialisable: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "input") -> NTKSpectrum:
        """Rebuild a spectrum from :meth:`to_dict` output; ``source`` names it in errors."""
        if not isinstance(data, dict):
            raise InputError(f"{source}: an NTK spectrum must be a JSON object.")
        if data.get("format") != FORMAT_NAME:
            raise InputError(
                f"{source}: not an NTK spectrum file (`format` is {data.get('format')!r}, "
                f"expected {FORMAT_NAME!r})."
            )
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise InputError(
                f"{source}: `format_version` {version!r} is not supported (this lensllm reads "
                f"<= {FORMAT_VERSION}); upgrade lensllm."
            )
        missing = [k for k in ("eigenvalues", "proj_sq") if k not in data]
        if missing:
            raise InputError(f"{source}: missing key(s) {', '.join(missing)}.")
        meta = data.get("meta") or {}
        try:
            return cls(data["eigenvalues"], data["proj_sq"], eta=data.get("eta"), meta=meta)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "input") -> NTKSpectrum:
        """Parse JSON text written by :meth:`to_json`."""
        from lensllm.inputs import loads_strict

        return cls.from_dict(loads_strict(text, source), source=source)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spectrum as JSON to ``path`` (parent directories are created).

        Returns:
            The path written.
        """
        from lensllm.outputs import write_bytes

        text = self.to_json()
        # atomic and exclusive: a killed job never leaves half a file, a symlink is refused
        return write_bytes(path, (text + "\n").encode("utf-8"), "NTK features file")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NTKSpectrum:
        """Read a spectrum written by :meth:`save`.

        Raises:
            InputError: the file is missing, unreadable or not a spectrum; the message names it.
        """
        from lensllm.inputs import read_text

        p = Path(path)
        return cls.from_json(read_text(p, "NTK features file"), source=str(p))
