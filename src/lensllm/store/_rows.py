"""Rows checked as they are read: a damaged or hand-edited store is an error, never data.

Why: SQLite keeps whatever a column is given (``'abc'`` in a REAL column, a negative loss,
a config of ``'{bad'``). Read as it is, a negative loss was ranked as if it were true and
a non-numeric one gave a traceback deep inside a fit. Here every value a record carries
is checked when the row is read, and a bad one is a :class:`StoreError` naming the store,
the table, the row and the column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lensllm.exceptions import StoreError
from lensllm.inputs import loads_strict

__all__ = ["check_cost_row", "check_loss_row", "check_ntk_row", "check_run_row", "parse_json"]

_DAMAGED = ("the store is damaged or was edited by hand; rerun into a new store, or fix or "
            "delete the row")

#: Finished-run columns: (column, rule) with rule ``"loss"`` (finite, > 0), ``"count"``
#: (an integer >= 0), ``"amount"`` (a finite number >= 0); None is allowed where an older
#: store has no value (``optional``).
_RESULT_RULES = (
    ("test_loss", "loss", False), ("steps", "count", False), ("train_tokens", "count", False),
    ("eval_tokens", "count", False), ("flops", "amount", False),
    ("wall_time", "amount", False), ("learning_rate", "amount", True),
    ("early_stop_step", "count", True), ("n_params", "count", True),
    ("n_trainable", "count", True), ("base_params", "count", True),
    ("test_scored_tokens", "count", True), ("test_bytes", "count", True),
    ("test_truncated", "count", True),
)


def _ok(value: Any, rule: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if rule == "count":
        return isinstance(value, int) and value >= 0
    if not math.isfinite(value):
        return False
    return value > 0 if rule == "loss" else value >= 0


_WORDS = {"loss": "a finite number > 0", "count": "an integer >= 0",
          "amount": "a finite number >= 0"}


def _bad(path: str, table: str, what: str, column: str, value: Any, rule: str
         ) -> StoreError:
    return StoreError(f"store '{path}': {table} row {what}: `{column}` is {value!r:.60}, not "
                      f"{rule}; {_DAMAGED}")


def parse_json(text: Any, path: str, where: str, column: str, kind: type) -> Any:
    """A JSON column parsed strictly into a ``kind`` (dict or list)."""
    if not isinstance(text, str):
        raise StoreError(f"store '{path}': {where}: `{column}` is {text!r:.60}, not JSON "
                         f"text; {_DAMAGED}")
    try:
        value = loads_strict(text, f"store '{path}': {where}: `{column}`", error=StoreError)
    except StoreError as exc:
        raise StoreError(f"{exc}; {_DAMAGED}") from None
    if not isinstance(value, kind):
        raise StoreError(f"store '{path}': {where}: `{column}` is {type(value).__name__}, not "
                         f"a JSON {'object' if kind is dict else 'array'}; {_DAMAGED}")
    return value


def check_run_row(row: Mapping[str, Any], path: str) -> str:
    """Check a ``runs`` row; return its label for later messages (``"5 (model size 64
    seed 0)"``).

    Raises:
        StoreError: a key column of the wrong type, or (finished runs) a result value that
            breaks its rule (the test loss a finite number > 0, counts integers >= 0...).
    """
    what = f"{row['id']} ({row['model']!r:.80} size {row['size']!r} seed {row['seed']!r})"
    for column in ("model", "dataset", "config_hash"):
        if not isinstance(row[column], str):
            raise _bad(path, "runs", what, column, row[column], "text")
    for column in ("size", "seed", "attempts"):
        if not _ok(row[column], "count"):
            raise _bad(path, "runs", what, column, row[column], _WORDS["count"])
    if row["status"] == "finished":
        keys = row.keys()
        for column, rule, optional in _RESULT_RULES:
            if column not in keys or (optional and row[column] is None):
                continue
            if not _ok(row[column], rule):
                raise _bad(path, "runs", what, column, row[column], _WORDS[rule])
    return what


def check_loss_row(row: Mapping[str, Any], path: str, run_id: int) -> None:
    """A ``loss_points`` row: a finite loss >= 0, integer step and tokens >= 0."""
    what = f"of run {run_id} at step {row['step']!r}"
    for column, rule in (("step", "count"), ("tokens", "count"), ("loss", "amount")):
        if not _ok(row[column], rule):
            raise _bad(path, "loss_points", what, column, row[column], _WORDS[rule])


def check_ntk_row(row: Mapping[str, Any], path: str) -> tuple[list, list, dict]:
    """An ``ntk_features`` row: eigenvalues and projections as equal-length lists of finite
    numbers (>= 0 projections), ``extra`` a JSON object. Returns the three parsed."""
    what = f"{row['id']} ({row['model']!r:.80})"
    where = f"ntk_features row {what}"
    lam = parse_json(row["eigenvalues"], path, where, "eigenvalues", list)
    proj = parse_json(row["projections"], path, where, "projections", list)
    extra = parse_json(row["extra"], path, where, "extra", dict)
    for column, values, rule in (("eigenvalues", lam, "finite"),
                                 ("projections", proj, "amount")):
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (rule == "amount" and v < 0):
                raise StoreError(f"store '{path}': {where}: `{column}` holds {v!r:.40}, not a "
                                 f"finite number{' >= 0' if rule == 'amount' else ''}; "
                                 f"{_DAMAGED}")
    if len(lam) != len(proj) or not lam:
        raise StoreError(f"store '{path}': {where}: {len(lam)} eigenvalues but {len(proj)} "
                         f"projections; {_DAMAGED}")
    for column in ("n", "d", "probe_seed"):
        if not _ok(row[column], "count"):
            raise _bad(path, "ntk_features", what, column, row[column], _WORDS["count"])
    return lam, proj, extra


def check_cost_row(row: Mapping[str, Any], path: str) -> None:
    """A ``costs`` row: finite FLOPs and seconds >= 0, integer tokens >= 0."""
    what = f"{row['id']} ({row['kind']!r:.40} of {row['model']!r:.80})"
    for column, rule in (("flops", "amount"), ("wall_time", "amount"), ("tokens", "count")):
        if not _ok(row[column], rule):
            raise _bad(path, "costs", what, column, row[column], _WORDS[rule])
