""":func:`bench`: selection methods on loss tables, scored against the truth at ``D*``; the
library call behind ``lensllm bench``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lensllm.api._results import Result
from lensllm.api._tables import as_table
from lensllm.bench import BUNDLED_TABLES, DEFAULT_RATIOS, Evaluation, check_same_unit, run_bench
from lensllm.exceptions import InputError
from lensllm.selection import REGISTRY

__all__ = ["BenchResult", "bench"]


@dataclass(frozen=True, eq=False)
class BenchResult(Result):
    """What :func:`bench` measured.

    Attributes:
        records: one JSON-ready record per (dataset, budget ratio, method, and study
            setting), exactly those of ``lensllm bench --json``.
        evaluations: the same, with each method's selection, the runs it paid for and the
            sizes it saw (:class:`lensllm.bench.Evaluation`), for plots.
        tables: the tables benchmarked.
    """

    records: list[dict[str, Any]]
    evaluations: list[Evaluation] = field(repr=False)
    tables: list = field(repr=False)

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON value of ``lensllm bench --json``: a list of records."""
        return [dict(r) for r in self.records]

    def frame_records(self) -> tuple[list[dict[str, Any]], str | None]:
        return self.to_dict(), None


def bench(tables: Any = None, *, methods: Sequence[str] | None = None,
          ratios: Sequence[float] = DEFAULT_RATIOS, target: float | None = None,
          ntk: Any = None, options: dict[str, dict[str, Any]] | None = None,
          grid: dict[str, list[str]] | None = None,
          max_params: Sequence[float] | None = None) -> BenchResult:
    """Run selection methods on loss tables at budget ratios and score them.

    Args:
        tables: one table or a list (names, paths, :class:`~lensllm.bench.LossTable`,
            data frames or curve mappings, as :func:`lensllm.fit` takes); default both
            bundled tables.
        methods: registered selector names (default all).
        ratios: budget ratios ``D* / max_data``.
        target: ``D*`` (a column; default each table's largest size).
        ntk: NTK features for the ``lensllm`` method: a path (a directory of ``lensllm ntk``
            files, one such file, or a JSON object of model -> spectrum).
        options: constructor options per method name.
        grid: options to sweep, ``{name: [values as text]}`` (a study, as ``--grid``).
        max_params: size constraints (a study, as ``--max-params``).

    Returns:
        A :class:`BenchResult`; ``to_dict()`` is what ``lensllm bench --json`` prints.

    Example:
        >>> import lensllm
        >>> result = lensllm.bench("gigaword", methods=["ats"], ratios=[8])
        >>> result.records[0]["method"], round(result.records[0]["relacc"], 3)
        ('ats', 1.0)
    """
    loaded = _tables(tables)
    check_same_unit(loaded)
    methods = list(methods) if methods is not None else list(REGISTRY)
    study = bool(grid or max_params)
    if study:
        if ntk is not None or options:
            raise InputError("`ntk` and `options` do not combine with `grid`/`max_params` yet")
        from lensllm.bench.sweep import run_study

        results = run_study(loaded, methods, ratios, target, max_params=max_params,
                            grid=grid)
    else:
        features = None
        if ntk is not None:
            from lensllm.ntk.files import match_spectra

            features = {t.name: match_spectra(ntk, list(t.models), what="`ntk`")
                        for t in loaded}
        results = run_bench(loaded, methods, ratios, target, ntk=features, options=options)
    return BenchResult(records=[r.record.to_json() for r in results], evaluations=results,
                       tables=loaded)


def _tables(tables: Any) -> list:
    if tables is None:
        return [as_table(t, what="tables") for t in BUNDLED_TABLES]
    if isinstance(tables, (list, tuple)):
        return [as_table(t, what="tables") for t in tables]
    return [as_table(tables, what="tables")]
