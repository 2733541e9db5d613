"""Loss tables: one row per candidate model, one column per fine-tuning data size.

The format is that of the published tables (``lensllm/bench/data/flan.csv``): a first
column with the model name, a column ``0`` with the zero-shot loss (optional), columns
named by data size (strictly increasing integers) with the test loss after fine-tuning on
that many examples, a column ``size`` with the model's parameter count and an optional
column ``family``. Every problem is reported with the line, the model and the column.

The unit of the losses is declared in the header's first cell, after the model column's
name in brackets (``config name [nats_per_byte]``): ``nats_per_token`` (the default, and
that of the published tables) or ``nats_per_byte`` (losses divided by the UTF-8 bytes of
the scored text, comparable across tokenizers; see ``lensllm export --unit byte``). The
file stays a plain CSV (``pandas.read_csv(path, index_col=0)`` reads it; the unit is then
the index's name). Tables written before declared the unit on a first line
``# loss_unit: <unit>``; that line is still read. Tables in different units are never
compared together.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from lensllm.exceptions import TableError
from lensllm.laws import LOSS_RANGE
from lensllm.inputs import read_text

__all__ = ["LossTable", "load_table", "BUNDLED_TABLES", "LOSS_UNITS", "check_same_unit",
           "model_column"]

#: Units a table's losses can be in; the first is the default of a table that declares none.
LOSS_UNITS = ("nats_per_token", "nats_per_byte")

#: A unit in brackets at the end of the header's first cell: ``config name [nats_per_byte]``.
_UNIT_IN_HEADER = re.compile(r"\[\s*([A-Za-z0-9_]+)\s*\]\s*$")


def model_column(loss_unit: str) -> str:
    """The header's first cell for a table in ``loss_unit``: ``config name [<unit>]``."""
    return f"config name [{loss_unit}]"


#: Tables shipped as package data, by name.
BUNDLED_TABLES = ("flan", "gigaword")


@dataclass(frozen=True, eq=False)
class LossTable:
    """A validated loss table.

    Attributes:
        name: dataset name (file stem for a path).
        models: model names ``(C,)``.
        sizes: fine-tuning data sizes, strictly increasing, without 0 ``(S,)``.
        losses: test loss after fine-tuning ``(C, S)``.
        zero_shot: loss without fine-tuning (column ``0``) ``(C,)``, or None.
        n_params: parameter count of each model ``(C,)``.
        family: model family per row (empty strings when absent).
        loss_unit: one of :data:`LOSS_UNITS`.
    """

    name: str
    models: tuple[str, ...]
    sizes: np.ndarray
    losses: np.ndarray
    zero_shot: np.ndarray | None
    n_params: np.ndarray
    family: tuple[str, ...]
    loss_unit: str = LOSS_UNITS[0]

    @property
    def n_models(self) -> int:
        return len(self.models)

    def column(self, size: int) -> np.ndarray:
        """True losses at one data size ``(C,)`` (for evaluation, never for methods)."""
        hits = np.flatnonzero(self.sizes == size)
        if hits.size == 0:
            raise TableError(f"table {self.name!r} has no column for size {size}; sizes are "
                             f"{', '.join(str(int(s)) for s in self.sizes)}")
        return self.losses[:, hits[0]]

    def to_csv(self) -> str:
        """The table in its own file format (a plain CSV, the unit in the first cell)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        head = [model_column(self.loss_unit)] + (["0"] if self.zero_shot is not None else [])
        writer.writerow(head + [str(int(s)) for s in self.sizes] + ["size", "family"])
        for i, model in enumerate(self.models):
            zs = [repr(float(self.zero_shot[i]))] if self.zero_shot is not None else []
            writer.writerow([model] + zs + [repr(float(v)) for v in self.losses[i]]
                            + [str(int(self.n_params[i])), self.family[i]])
        return buf.getvalue()


def load_table(name_or_path: str | Path) -> LossTable:
    """Load a bundled table by name (``flan``, ``gigaword``) or any table file by path.

    Raises:
        TableError: unknown name, unreadable file, or a table that breaks the format; the
            message names the line, the model and the column at fault.
    """
    text_name = str(name_or_path)
    if text_name in BUNDLED_TABLES:
        text = resources.files("lensllm.bench").joinpath(f"data/{text_name}.csv").read_text()
        return parse_table(text, name=text_name, source=f"{text_name} (bundled)")
    path = Path(name_or_path)
    if not os.path.lexists(path):
        raise TableError(f"table {text_name!r} is neither a bundled table "
                         f"({', '.join(BUNDLED_TABLES)}) nor an existing file")
    text = read_text(path, "table", error=TableError)  # a FIFO or device is refused
    return parse_table(text, name=path.stem, source=str(path))


#: Bounds on table values: a loss (nats per token or any positive loss) outside
#: [MIN_LOSS, MAX_LOSS], or a data size or parameter count above MAX_COUNT, is a typo or a
#: unit error. Inside the loss range the laws' fits are scale invariant (the laws' own
#: range, :data:`lensllm.laws.LOSS_RANGE`); a loss of 1e-300 made them overflow and report
#: success on nonsense, and sizes beyond MAX_COUNT overflow the cost products.
MIN_LOSS, MAX_LOSS = LOSS_RANGE
MAX_COUNT = 1e15


def _loss(cell: str, where: str) -> float:
    """A loss cell: a finite number in [MIN_LOSS, MAX_LOSS]."""
    value = _number(cell, where)
    if not 0 < value <= MAX_LOSS:
        raise TableError(f"{where}: loss must be > 0 and <= {MAX_LOSS:g}, got {cell}")
    if value < MIN_LOSS:
        raise TableError(f"{where}: loss must be >= {MIN_LOSS:g} (the range the fits are exact "
                         f"in; rescale the table's unit), got {cell}")
    return value


def _name(cell: str, where: str, column: str) -> str:
    """A model or family name: text without control characters (a NUL, a newline, an
    escape sequence would be stored and printed mangled)."""
    for i, ch in enumerate(cell):
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise TableError(f"{where}, column {column!r}: character {i + 1} of the name is a "
                             f"control character ({ch!r}); names must be plain text")
    return cell


def _number(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise TableError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise TableError(f"{where}: value {cell!r} is not finite")
    return value


def _parse_header(header: list[str], source: str, h: int = 1
                  ) -> tuple[list[tuple[int, int]], int | None, int | None, int | None]:
    """The header's size columns ``(column index, size)`` (``0`` excluded) and the indices
    of the zero-shot (``0``), ``size`` and ``family`` columns (None where absent)."""
    size_cols: list[tuple[int, int]] = []  # (column index, size)
    zero_col = size_col = family_col = None
    first: dict[str, int] = {}
    for j, col in enumerate(header[1:], start=1):
        key = col if not col.lstrip("+-").isdigit() else str(int(col))
        if key in first:
            raise TableError(f"{source}: line 1, column {j + 1} {col!r}: duplicate column "
                             f"(the same as column {first[key] + 1}); each column once")
        first[key] = j
        if col == "size":
            size_col = j
        elif col == "family":
            family_col = j
        else:
            try:
                value = int(col)
            except ValueError:
                raise TableError(f"{source}: line {h}, column {j + 1} {col!r}: unknown column; "
                                 f"expected a data size (integer), 'size' or 'family'") from None
            if not 0 <= value <= MAX_COUNT:
                raise TableError(f"{source}: line {h}, column {col!r}: data sizes must be in "
                                 f"[0, {MAX_COUNT:g}]")
            if value == 0:
                zero_col = j
            else:
                size_cols.append((j, value))
    if not size_cols:
        raise TableError(f"{source}: line {h}: no size columns (columns named by a data size "
                         f"such as 200, 400, ...)")
    return size_cols, zero_col, size_col, family_col


def parse_table(text: str, *, name: str, source: str) -> LossTable:
    """Parse and validate a table's CSV text (see the module docstring for the format)."""
    rows = [r for r in csv.reader(io.StringIO(text))]
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    unit, n_meta = _read_metadata(rows, source)
    rows = rows[n_meta:]
    if not rows:
        raise TableError(f"{source}: the file is empty")
    h = n_meta + 1  # the header's line number
    header = [c.strip() for c in rows[0]]
    body = rows[1:]
    unit = _header_unit(header[0], unit, source, h)
    size_cols, zero_col, size_col, family_col = _parse_header(header, source, h)
    sizes = [s for _, s in size_cols]
    for a, b in zip(sizes, sizes[1:]):
        if b <= a:
            raise TableError(f"{source}: line {h}, column {str(b)!r}: size columns must be "
                             f"strictly increasing ({a} then {b})")
    if size_col is None:
        raise TableError(f"{source}: line {h}: no 'size' column (the parameter count of each "
                         f"model, needed for costs)")
    if len(body) < 2:
        only = (f"line {h + 1} (model {body[0][0].strip()!r}) is the only model row" if body
                else f"line {h}: no model rows below the header")
        raise TableError(f"{source}: {only}; ranking needs at least 2 models")
    models: list[str] = []
    seen: dict[str, int] = {}
    losses = np.empty((len(body), len(size_cols)))
    zero = np.empty(len(body))
    n_params = np.empty(len(body))
    family: list[str] = []
    for i, row in enumerate(body):
        line = h + 1 + i
        if len(row) != len(header):
            label = f" (model {row[0].strip()!r})" if row and row[0].strip() else ""
            where = (f"no cell for column {header[len(row)]!r}" if len(row) < len(header)
                     else f"cell {len(header) + 1} has no column")
            raise TableError(f"{source}: line {line}{label}: has {len(row)} cells but the "
                             f"header has {len(header)} (ragged row: {where})")
        model = _name(row[0].strip(), f"{source}: line {line}", header[0])
        if not model:
            raise TableError(f"{source}: line {line}, column {header[0]!r}: empty model name")
        if model in seen:
            raise TableError(f"{source}: line {line}, column {header[0]!r}: duplicated model "
                             f"name {model!r} (first on line {seen[model]})")
        seen[model] = line
        models.append(model)
        for k, (j, s) in enumerate(size_cols):
            where = f"{source}: line {line} (model {model!r}), column {str(s)!r}"
            losses[i, k] = _loss(row[j].strip(), where)
        if zero_col is not None:
            zero[i] = _loss(row[zero_col].strip(),
                            f"{source}: line {line} (model {model!r}), column '0'")
        where = f"{source}: line {line} (model {model!r}), column 'size'"
        n_params[i] = _number(row[size_col].strip(), where)
        if not 0 < n_params[i] <= MAX_COUNT:
            raise TableError(f"{where}: parameter count must be > 0 and <= {MAX_COUNT:g}, "
                             f"got {row[size_col].strip()}")
        family.append(_name(row[family_col].strip(), f"{source}: line {line} (model {model!r})",
                            "family") if family_col is not None else "")
    return LossTable(name=name, models=tuple(models), sizes=np.array(sizes, dtype=float),
                     losses=losses, zero_shot=zero if zero_col is not None else None,
                     n_params=n_params, family=tuple(family), loss_unit=unit or LOSS_UNITS[0])


def _header_unit(cell: str, declared: str | None, source: str, h: int) -> str | None:
    """The unit in brackets at the end of the header's first cell (or ``declared``).

    Raises:
        TableError: an unknown unit, or one that contradicts a ``# loss_unit`` line.
    """
    match = _UNIT_IN_HEADER.search(cell)
    if match is None:
        return declared
    value = match.group(1)
    if value not in LOSS_UNITS:
        raise TableError(f"{source}: line {h}, column 1 {cell!r}: loss unit {value!r} is not "
                         f"one of {', '.join(LOSS_UNITS)}")
    if declared is not None and value != declared:
        raise TableError(f"{source}: line {h}, column 1 {cell!r}: loss unit {value!r} "
                         f"contradicts {declared!r} declared above")
    return value


def _read_metadata(rows: list[list[str]], source: str) -> tuple[str | None, int]:
    """The loss unit declared by leading ``# key: value`` lines (the format before the unit
    moved into the header; None when there are none), and how many there are.

    Raises:
        TableError: an unknown key or unit, or two lines declaring different units.
    """
    unit, n_meta = None, 0
    for n_meta, row in enumerate(rows):
        line = ",".join(row).strip()
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        key, value = key.strip(), value.strip()
        where = f"{source}: line {n_meta + 1}"
        if not sep or key != "loss_unit":
            raise TableError(f"{where}: unknown metadata {line!r}; the one known key is "
                             f"'# loss_unit: <{' | '.join(LOSS_UNITS)}>'")
        if value not in LOSS_UNITS:
            raise TableError(f"{where}: loss_unit {value!r} is not one of "
                             f"{', '.join(LOSS_UNITS)}")
        if unit is not None and value != unit:
            raise TableError(f"{where}: loss_unit {value!r} contradicts {unit!r} declared above; "
                             "a table holds losses in one unit")
        unit = value
    else:
        n_meta = len(rows)
    return unit, n_meta


def check_same_unit(tables) -> str:
    """The loss unit shared by ``tables``; :class:`TableError` naming two tables that differ
    (per-token and per-byte losses must never be ranked or averaged together)."""
    units = {}
    for table in tables:
        units.setdefault(table.loss_unit, table.name)
    if len(units) > 1:
        (u1, t1), (u2, t2) = list(units.items())[:2]
        raise TableError(f"tables mix loss units: {t1!r} holds {u1}, {t2!r} holds {u2}; "
                         "export them in one unit (lensllm export --unit)")
    return next(iter(units), LOSS_UNITS[0])
