"""``lensllm select`` configs: an experiment config plus ``[selection]`` and ``[ntk]`` tables.

::

    [selection]
    method = "adaptive"   # any registered selector (lensllm bench --help lists them)
    target = 6400         # D*: the full data size to predict the loss at
    max_data = 800        # budget: the largest subset size a run may use
    loss_unit = "auto"    # rank in nats per byte when the candidates' tokenizers differ
    loss_goal = 1.5       # optional: the report says how much data each top candidate needs
    max_params = 1.4e9    # optional: skip candidates larger than this before any run

    [ntk]                 # optional; NTK features for the `lensllm` method and the report
    n = 32                # probe examples
    dim = 4096            # projection dimension (0: exact kernel)
    params = "all"        # "all" or "lora"
    seed = 0

The rest of the file is an ordinary experiment config (:mod:`lensllm.finetune.config`):
``[experiment] sizes`` lists the subset sizes a selector may ask for (those up to
``max_data`` are affordable). Torch-free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import MAX_SEED, ExperimentConfig, config_from_dict, read_toml

__all__ = ["LOSS_UNIT_SETTINGS", "MAX_DATA_SIZE", "NtkSettings", "SelectConfig",
           "SelectionSettings", "load_select_config"]

#: ``selection.loss_unit`` values.
LOSS_UNIT_SETTINGS = ("auto", "token", "byte")

#: The largest data size (examples) a target or budget may name: far above any real
#: fine-tuning set, low enough that sizes times parameters stay finite in float64.
MAX_DATA_SIZE = 1e15


@dataclass(frozen=True)
class SelectionSettings:
    """The ``[selection]`` table.

    Attributes:
        method: registered selector name (a config that names none gets
            :func:`default_method`: ``halving`` with 4 or more sizes within the budget and 3
            or more candidates, else ``adaptive``).
        target: ``D*``, the data size to predict at (default: the largest size).
        max_data: the budget: largest affordable subset (default: the largest size).
        options: keyword arguments for the selector's constructor.
        loss_unit: what losses are ranked in: ``"token"`` (nats per scored token),
            ``"byte"`` (nats per byte of scored text) or ``"auto"`` (the default: per byte
            when the candidates' tokenizers differ, see
            :func:`lensllm.pipeline.stages.choose_loss_unit`).
        loss_goal: a test loss to reach; the report gives the data each top candidate
            needs for it (see docs/planning.md). Optional.
        max_params: skip candidates with more parameters than this, counted from their
            configs before any run (None: no limit).
    """

    method: str = "adaptive"
    target: float | None = None
    max_data: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    loss_unit: str = "auto"
    loss_goal: float | None = None
    max_params: float | None = None
    #: The selector, built once from ``method`` and ``options`` (merged over the method's
    #: ``report_options``) when the settings are validated; every stage uses this one.
    selector: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from lensllm.selection import REGISTRY

        if self.method not in REGISTRY:
            raise ConfigError(f"`selection.method` must be one of {', '.join(REGISTRY)}, got "
                              f"{self.method!r}")
        for key, high, unit in (("target", MAX_DATA_SIZE, " (examples)"),
                                ("max_data", MAX_DATA_SIZE, " (examples)"),
                                ("loss_goal", math.inf, ""), ("max_params", math.inf, "")):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 < value <= high or not math.isfinite(value)):
                bound = f"in (0, {high:g}]" if math.isfinite(high) else "> 0 and finite"
                raise ConfigError(f"`selection.{key}` must be a number {bound}{unit}, got "
                                  f"{value!r}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"`selection.options` must be a table, got {self.options!r}")
        if self.loss_unit not in LOSS_UNIT_SETTINGS:
            raise ConfigError(f"`selection.loss_unit` must be one of "
                              f"{', '.join(LOSS_UNIT_SETTINGS)}, got {self.loss_unit!r}")
        object.__setattr__(self, "selector", _build_selector(self.method, self.options))


def _build_selector(method: str, options: dict[str, Any]) -> Any:
    """The selector of ``method`` with ``options`` over its ``report_options``, built once,
    when the config is read, so a bad option fails before any run."""
    import inspect

    from lensllm.exceptions import LensLLMError
    from lensllm.selection import REGISTRY, get_selector

    cls = REGISTRY[method]
    known = [name for name, p in inspect.signature(cls.__init__).parameters.items()
             if p.kind is p.KEYWORD_ONLY]
    for key in options:
        if key not in known:
            raise ConfigError(f"unknown option `selection.options.{key}` for method "
                              f"{method!r}; its options: {', '.join(known) or 'none'}")
    try:
        return get_selector(method, **{**cls.report_options, **options})
    except (LensLLMError, TypeError, ValueError) as exc:
        raise ConfigError(f"`selection.options` for method {method!r}: {exc}") from None


@dataclass(frozen=True)
class NtkSettings:
    """The ``[ntk]`` table (see :func:`lensllm.ntk.compute_ntk_features`).

    Attributes:
        enabled: compute NTK features (needed by ``lensllm`` and the report's LensLLM fits).
        n: probe examples (>= 2), drawn from the training pool by ``seed``.
        dim: projection dimension; 0 for the exact kernel.
        params: ``"auto"`` (the parameters the fine-tuning runs train: ``"lora"`` for
            ``finetune.method = "lora"``, else ``"all"``), ``"all"`` or ``"lora"``.
        seed: probe and projection seed.
        chunk_size: examples per pass.
        curvature: also measure the Hessian diagnostics (top eigenvalue, per-layer traces;
            :func:`lensllm.ntk.hessian_curvature`), shown per candidate in the report.
    """

    enabled: bool = True
    n: int = 32
    dim: int = 4096
    params: str = "auto"
    seed: int = 0
    chunk_size: int = 8
    curvature: bool = False

    def __post_init__(self) -> None:
        for key in ("enabled", "curvature"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(
                    f"`ntk.{key}` must be true or false, got {getattr(self, key)!r}")
        for key, low, high in (("n", 2, 100_000), ("dim", 0, 10**8), ("seed", 0, MAX_SEED),
                               ("chunk_size", 1, 100_000)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"`ntk.{key}` must be an integer in [{low}, {high}], got "
                                  f"{value!r}")
        if self.params not in ("auto", "all", "lora"):
            raise ConfigError(f"`ntk.params` must be 'auto', 'all' or 'lora', got "
                              f"{self.params!r}")


@dataclass(frozen=True)
class SelectConfig:
    """A whole ``lensllm select`` config.

    Attributes:
        experiment: candidates, data, sizes, seeds, fine-tuning settings.
        selection: method, ``D*`` and budget.
        ntk: NTK feature settings.
    """

    experiment: ExperimentConfig
    selection: SelectionSettings
    ntk: NtkSettings

    @property
    def target(self) -> float:
        """``D*`` (default: the largest configured size)."""
        sel = self.selection.target
        return float(sel if sel is not None else self.experiment.sizes[-1])

    @property
    def max_data(self) -> float:
        """The budget (default: the largest configured size)."""
        sel = self.selection.max_data
        return float(sel if sel is not None else self.experiment.sizes[-1])

    @property
    def affordable_sizes(self) -> tuple[int, ...]:
        """Configured sizes within the budget."""
        return tuple(s for s in self.experiment.sizes if s <= self.max_data)


def _construct(cls, raw: Any, name: str, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"`{name}` must be a table{where}")
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown key `{name}.{key}`{where}; known keys: "
                              f"{', '.join(known)}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"bad value in [{name}]{where}: {exc}") from None


#: The selector a config without ``[selection] method`` gets: successive halving where it
#: pays (enough sizes within the budget for a pruning rung, and candidates to prune),
#: else ``adaptive``. On real runs the largest affordable runs dominate the cost (a run
#: costs about its size times a roughly constant number of epochs under the plateau
#: recipe), and ``adaptive`` pays the two largest for every candidate, so it cannot go
#: below about a fifth of fine-tuning everything at D*/8; halving pays them only for the
#: candidates still in the race (``docs/select.md``).
DEFAULT_METHOD, FALLBACK_METHOD = "halving", "adaptive"
#: Halving needs ``k + 1 = 4`` sizes within the budget, and prunes among 3 or more.
HALVING_MIN_SIZES, HALVING_MIN_CANDIDATES = 4, 3


def default_method(n_affordable: int, n_candidates: int) -> str:
    """The selector for a config that names none (see :data:`DEFAULT_METHOD`)."""
    if n_affordable >= HALVING_MIN_SIZES and n_candidates >= HALVING_MIN_CANDIDATES:
        return DEFAULT_METHOD
    return FALLBACK_METHOD


def select_config_from_dict(raw: dict[str, Any], *, base_dir: str | Path = ".",
                            source: Path | None = None) -> SelectConfig:
    """Build a :class:`SelectConfig` from parsed TOML (see :func:`load_select_config`)."""
    where = f" in '{source}'" if source else ""
    raw = dict(raw)
    raw_selection = raw.pop("selection", {})
    ntk = _construct(NtkSettings, raw.pop("ntk", {}), "ntk", where)
    experiment = config_from_dict(raw, base_dir=base_dir, source=source)
    if isinstance(raw_selection, dict) and "method" not in raw_selection:
        probe = _construct(SelectionSettings, {**raw_selection, "method": FALLBACK_METHOD},
                           "selection", where)
        budget = probe.max_data if probe.max_data is not None else experiment.sizes[-1]
        n_affordable = sum(1 for s in experiment.sizes if s <= budget)
        raw_selection = {**raw_selection,
                         "method": default_method(n_affordable, len(experiment.candidates))}
    selection = _construct(SelectionSettings, raw_selection, "selection", where)
    config = SelectConfig(experiment, selection, ntk)
    if not config.affordable_sizes:
        raise ConfigError(f"`selection.max_data` = {config.max_data:g} is below the smallest "
                          f"size {experiment.sizes[0]}{where}")
    if config.max_data > config.target:
        raise ConfigError(f"`selection.max_data` ({config.max_data:g}) must be <= "
                          f"`selection.target` ({config.target:g}){where}")
    return config


def load_select_config(path: str | Path) -> SelectConfig:
    """Read and validate a ``lensllm select`` TOML config.

    Raises:
        ConfigError: a missing file, bad TOML, an unknown key or a bad value (named).
    """
    path = Path(path)
    return select_config_from_dict(read_toml(path), base_dir=path.parent, source=path)
