"""Studies on loss tables: a selector's constructor options swept over a grid, and selection
under size constraints (``lensllm bench --grid ... --max-params ...``).

A grid is given as ``NAME=V1,V2,...`` strings. Values are typed from the selector's own
constructor (the type of each keyword's default: ``int``, ``float``, ``bool`` or ``str``),
so a grid works for every registered selector without naming any of them here. Every
combination is checked by building the selector once before anything runs, so a bad value
(``k=1`` for AtS) is one clear error, not a crash halfway through the sweep.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lensllm.bench.constraints import restrict_table
from lensllm.bench.harness import DEFAULT_RATIOS, Evaluation, run_bench
from lensllm.bench.table import LossTable
from lensllm.exceptions import InputError
from lensllm.selection import REGISTRY, get_selector

__all__ = ["parse_grid", "grid_combinations", "run_study", "variant_label"]

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_grid(specs: Iterable[str]) -> dict[str, list[str]]:
    """``["k=3,4,5", "delta=1,2"]`` to ``{"k": ["3", "4", "5"], "delta": ["1", "2"]}``.

    Raises:
        InputError: a spec without ``=``, an empty name or value list, a name given twice.
    """
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise InputError(f"grid {spec!r} must look like NAME=V1,V2 (e.g. k=3,4,5)")
        if name in grid:
            raise InputError(f"grid option {name!r} is given twice")
        grid[name] = items
    return grid


def _coerce(method: str, name: str, text: str, default: Any) -> Any:
    """``text`` as the type of the constructor default ``default``."""
    where = f"grid option {name}={text!r} of method {method!r}"
    if isinstance(default, bool):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise InputError(f"{where}: expected true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{where}: expected an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise InputError(f"{where}: expected a number") from None
    if isinstance(default, str) or default is None:
        return text
    raise InputError(f"{where}: options of type {type(default).__name__} cannot be swept")


def _sweepable(method: str) -> dict[str, Any]:
    """Keyword options of a selector's constructor and their defaults."""
    params = inspect.signature(REGISTRY[method].__init__).parameters
    return {n: p.default for n, p in params.items()
            if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def grid_combinations(method: str, grid: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Every combination of ``grid`` for ``method``, typed and checked.

    Returns:
        One options dict per combination, the last option varying fastest; ``[{}]`` for an
        empty grid.

    Raises:
        InputError: an unknown method or option, a value of the wrong type, or a value the
            selector's constructor refuses (its message, with the combination).
    """
    if method not in REGISTRY:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(REGISTRY)}")
    known = _sweepable(method)
    for name in grid:
        if name not in known:
            raise InputError(f"grid option {name!r} is not an option of method {method!r} "
                             f"(its options: {', '.join(known) or 'none'})")
    typed = {n: [_coerce(method, n, v, known[n]) for v in vals] for n, vals in grid.items()}
    combos = [dict(zip(typed, values)) for values in itertools.product(*typed.values())]
    for combo in combos:
        try:
            get_selector(method, **combo)
        except InputError as exc:
            raise InputError(f"method {method!r} with {variant_label(combo)}: {exc}") from None
    return combos


def variant_label(options: dict[str, Any] | None = None, max_params: float | None = None) -> str:
    """A short label such as ``k=3 delta=1 <=7e+09``: options, then the size constraint."""
    parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in (options or {}).items()]
    if max_params is not None:
        parts.append(f"<={max_params:.3g}")
    return " ".join(parts)


def run_study(
    tables: Sequence[LossTable],
    methods: Sequence[str],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    target: float | None = None,
    *,
    grid: dict[str, list[str]] | None = None,
    max_params: Sequence[float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Evaluation]:
    """The bench over every grid combination and every size constraint.

    Args:
        tables, methods, ratios, target: as in :func:`~lensllm.bench.harness.run_bench`.
        grid: constructor options to sweep (:func:`parse_grid`), applied to every method.
        max_params: size constraints; each runs the methods on the table restricted to the
            candidates with at most that many parameters (:func:`restrict_table`).
        progress: called with a short label before each evaluation.

    Returns:
        One result per (constraint, table, combination, ratio, method); each record carries
        ``options`` when a grid is given and ``max_params`` when constraints are.
    """
    combos = {m: grid_combinations(m, grid or {}) for m in methods}
    limits: list[float | None] = list(max_params) if max_params else [None]
    restricted = {lim: [t if lim is None else restrict_table(t, lim) for t in tables]
                  for lim in limits}  # every constraint checked before anything runs
    out: list[Evaluation] = []
    for lim in limits:
        for method in methods:
            for combo in combos[method]:
                results = run_bench(restricted[lim], [method], ratios, target,
                                    options={method: combo}, progress=progress)
                for res in results:
                    record = dataclasses.replace(
                        res.record, options=dict(combo) if grid else None, max_params=lim)
                    out.append(dataclasses.replace(res, record=record))
    return out
