"""Where task records come from: local JSONL, CSV and Parquet files, and `datasets` data.

Every reader returns the raw records in source order as ``(where, record)`` pairs, where
``where`` names the place of the record in messages (``"line 3"`` of a file, ``"row 3"``
of a table or dataset). Mapping the records onto task fields is
:mod:`lensllm.finetune.fields`' job.

Supported sources:

- ``.jsonl`` / ``.json``: one JSON object per line;
- ``.csv``: a header row, then one example per row;
- ``.parquet``: read with ``pyarrow`` (imported only here);
- a directory written by ``datasets``' ``save_to_disk`` (a ``Dataset`` or a
  ``DatasetDict``, whose ``split`` is taken);
- a ``datasets`` name or local dataset path given to ``datasets.load_dataset`` with a
  config and a split; with ``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1``) it is read
  from the local cache only.

``datasets`` and ``pyarrow`` are optional: they are imported when a source needs them,
and their absence is one :class:`ConfigError` saying what to install.
"""

from __future__ import annotations

import csv
import importlib
import io
from pathlib import Path
from typing import Any

from lensllm.exceptions import ConfigError, InputError
from lensllm.inputs import check_input_path, loads_strict, read_text

__all__ = ["FILE_SUFFIXES", "read_file_records", "read_dataset_records"]

#: File extensions a local task file may have.
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")

Records = list[tuple[str, dict[str, Any]]]


def read_file_records(path: Path, *, split: str = "train") -> Records:
    """The records of a local file, or of a directory saved with ``save_to_disk``.

    Args:
        path: a ``.jsonl``/``.json``, ``.csv`` or ``.parquet`` file, or a saved dataset
            directory.
        split: the split of a saved directory that holds several (a ``DatasetDict``).

    Returns:
        ``(where, record)`` pairs in file order.

    Raises:
        ConfigError: the path is missing, has an unsupported extension, or needs a package
            that is not installed.
        InputError: a line is not a JSON object, or a byte is not UTF-8 (the file, line and
            byte are named).
    """
    check_input_path(path, "data file", folder_ok=True, error=ConfigError)
    if path.is_dir():
        return read_dataset_records(str(path), split=split)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise ConfigError(
        f"data file '{path}' has extension '{suffix}'; use .jsonl (one JSON object per line), "
        ".csv, .parquet, a directory saved with datasets' save_to_disk, or `data.dataset`"
    )


def read_dataset_records(name: str, *, config: str = "", split: str = "train") -> Records:
    """The records of one split of a ``datasets`` dataset.

    A directory holding a saved dataset (``dataset_info.json`` or ``dataset_dict.json``)
    is opened with ``load_from_disk``; anything else goes to ``load_dataset(name, config,
    split=split)``, which reads a local dataset path or the local cache of a hub dataset
    (the hub itself only when it is online).

    Args:
        name: a saved directory, a local dataset path or a hub dataset name.
        config: the dataset's configuration name ("" for its default).
        split: the split to read.

    Returns:
        ``(where, record)`` pairs, ``where`` = ``"row i"`` (1-based).

    Raises:
        ConfigError: ``datasets`` is not installed, the dataset or split cannot be found.
    """
    datasets = _optional("datasets", f"reading dataset '{name}'")
    path = Path(name)
    saved = path.is_dir() and any(
        (path / f).is_file() for f in ("dataset_info.json", "dataset_dict.json", "state.json"))
    try:
        if saved:
            data = datasets.load_from_disk(str(path))
            if isinstance(data, datasets.DatasetDict):
                if split not in data:
                    raise ConfigError(
                        f"dataset '{name}' has no split '{split}'; its splits are "
                        f"{', '.join(sorted(data))} (set `data.split`)")
                data = data[split]
        else:
            data = datasets.load_dataset(name, config or None, split=split)
    except ConfigError:
        raise
    except Exception as exc:  # datasets raises many kinds (FileNotFound, ConnectionError...)
        raise ConfigError(f"dataset '{name}' could not be loaded: {_first_line(exc)}") from None
    return [(f"row {i}", dict(row)) for i, row in enumerate(data, start=1)]


def _optional(module: str, purpose: str):
    """Import an optional package, or one :class:`ConfigError` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{purpose} needs the Python package '{module}': pip install {module}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_jsonl(path: Path) -> Records:
    records = []
    text = read_text(path, "data file")
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = loads_strict(line, f"{path}, line {line_no}")
        if not isinstance(record, dict):
            raise InputError(
                f"{path}, line {line_no}: expected a JSON object, got "
                f"{type(record).__name__}"
            )
        records.append((f"line {line_no}", record))
    return records


def _read_csv(path: Path) -> Records:
    text = read_text(path, "data file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    # Line numbers count the header as line 1, as a spreadsheet shows them.
    try:
        return [(f"line {reader.line_num}", dict(row)) for row in reader]
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None


def _read_parquet(path: Path) -> Records:
    parquet = _optional("pyarrow", f"reading '{path}'")
    importlib.import_module("pyarrow.parquet")
    try:
        rows = parquet.parquet.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow.ArrowInvalid and friends
        raise InputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    return [(f"row {i}", row) for i, row in enumerate(rows, start=1)]
