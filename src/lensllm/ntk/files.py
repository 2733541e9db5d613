"""NTK feature files matched to the models of a loss table (numpy only, no torch).

``lensllm fit --law lensllm --ntk PATH``, ``lensllm bench --ntk PATH`` and the Python API
(``lensllm.fit(..., ntk=PATH)``) read features that ``lensllm ntk`` (or a benchmark) wrote,
and give each table row its spectrum by model id. ``PATH`` may be:

- a directory: every ``*.json`` spectrum file in it (``lensllm ntk --out DIR/NAME.json``);
  a file's model is its ``meta["model_id"]``;
- one spectrum file (``format: lensllm.ntk_spectrum``);
- one JSON object mapping model names to spectrum objects (the zoo benchmark's
  ``ntk_features.json``); the key is the model.

A table row matches a spectrum whose model id is the row's model name, or whose id's last
path component is (``./runs/gpt2`` matches ``gpt2``). Rows without a spectrum are an error
naming them; spectra no row uses are ignored; two spectra for one model are an error
naming both files. Files are read strictly (:mod:`lensllm.inputs`): no special files, UTF-8,
and no number beyond float64 (an eigenvalue of ``10**400`` is one line, not a traceback).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lensllm.exceptions import InputError
from lensllm.inputs import check_input_path, loads_strict, read_text
from lensllm.ntk.spectrum import NTKSpectrum

__all__ = ["match_spectra", "read_spectra"]

_FORMAT = "lensllm.ntk_spectrum"


def read_spectra(path: str | Path, what: str = "--ntk") -> dict[str, NTKSpectrum]:
    """Every spectrum under ``path``, by model id (see the module docs for the layouts).

    ``what`` names the option or argument in messages.

    Raises:
        InputError: the path does not exist, holds no spectrum, or a file is not one.
    """
    path = check_input_path(path, what, folder_ok=True)
    if path.is_dir():
        found: dict[str, NTKSpectrum] = {}
        where: dict[str, Path] = {}
        for file in sorted(path.glob("*.json")):
            for model, spec in _read_file(file, what).items():
                if model in found:  # checked here: after the merge one of them is gone
                    raise InputError(f"{what}: two spectra under '{path}' are for model "
                                     f"'{model}': '{where[model]}' and '{file}'; keep one")
                found[model], where[model] = spec, file
        if not found:
            raise InputError(f"{what}: the directory '{path}' holds no NTK spectrum (*.json)")
        return found
    return _read_file(path, what)


def _read_file(file: Path, what: str) -> dict[str, NTKSpectrum]:
    data = loads_strict(read_text(file, f"{what} file"), f"{what}: '{file}'")
    if isinstance(data, dict) and data.get("format") == _FORMAT:
        spec = NTKSpectrum.from_dict(data, source=str(file))
        model = spec.meta.get("model_id")
        if not model:
            raise InputError(f"{what}: '{file}' has no meta.model_id to match a table row")
        return {str(model): spec}
    if isinstance(data, dict) and data and all(
            isinstance(v, dict) and v.get("format") == _FORMAT for v in data.values()):
        return {str(name): NTKSpectrum.from_dict(v, source=f"{file}[{name}]")
                for name, v in data.items()}
    raise InputError(
        f"{what}: '{file}' is neither an NTK spectrum (format {_FORMAT}) nor an object "
        f"mapping model names to spectra"
    )


def match_spectra(path: str | Path, models: Sequence[str],
                  what: str = "--ntk") -> list[NTKSpectrum]:
    """The spectrum of each model, in the table's order.

    Args:
        path: features (see the module docs).
        models: the table's model names.
        what: the option or argument named in messages.

    Returns:
        One spectrum per model.

    Raises:
        InputError: a model has no spectrum (all unmatched models are named), or two
            spectra claim the same model.
    """
    found = read_spectra(path, what)
    by_name: dict[str, NTKSpectrum] = {}
    for model_id, spec in found.items():
        for key in {model_id, Path(model_id.rstrip("/")).name}:
            if key in by_name and by_name[key] is not spec and key in models:
                raise InputError(f"{what}: two spectra under '{path}' match model '{key}'")
            by_name.setdefault(key, spec)
    missing = [m for m in models if m not in by_name]
    if missing:
        shown = ", ".join(missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10
                                           else "")
        raise InputError(
            f"{what}: no NTK features for {len(missing)} of {len(models)} model(s): {shown}; "
            f"'{path}' has features for {', '.join(sorted(found)) or 'none'}"
        )
    return [by_name[m] for m in models]
