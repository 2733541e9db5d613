"""Experiment configs: frozen, validated dataclasses loaded from TOML.

A config file has four tables (see ``docs/running.md`` and ``examples/tiny.toml``)::

    [experiment]            # what to run
    sizes = [32, 64, 128]   # increasing subset sizes
    seeds = [0, 1]
    zero_shot = true        # also evaluate every candidate before training (size 0)
    store = "tiny.sqlite"   # optional; relative to the config file

    [data]
    path = "data/task.jsonl"
    validation_size = 32
    test_size = 64

    [[candidates]]
    model = "tiny:gpt2"

    [finetune]
    method = "full"
    learning_rate = 1e-3

Unknown keys are errors (a typo would otherwise silently run with a default). Torch is not
imported here, so configs validate fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lensllm.exceptions import ConfigError
from lensllm.finetune.fields import check_mapping
from lensllm.inputs import check_text, read_text
from lensllm.finetune.recipe import TrainingPlan, plan_training

#: Seeds are numpy/torch/random seeds: integers in [0, 2**32).
MAX_SEED = 2**32 - 1


def max_threads() -> int:
    """The most torch threads a run may ask for: the CPUs this process may use."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)

__all__ = [
    "FinetuneConfig",
    "DataConfig",
    "Candidate",
    "ExperimentConfig",
    "load_config",
    "file_sha256",
]

_METHODS = ("full", "lora")
_ATTN = ("eager", "sdpa")
_DEVICES = ("auto", "cpu", "cuda", "mps")
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_SCHEDULES = ("constant", "cosine", "linear")
#: Upper bounds of the recipe's numbers: far above any real run, low enough that the
#: step arithmetic (epochs x steps per epoch, the schedule, FLOPs) stays exact and finite.
#: ``epochs = 1e308`` passed the old check (finite, > 0), then every run failed after the
#: zero-shot and NTK stages had been paid.
MAX_EPOCHS = 1e6
MAX_STEPS = 10**9
MAX_LEARNING_RATE = 10.0
#: Largest batch, sequence length and LoRA rank a config may name.
MAX_COUNT = 10**7

#: Keys of earlier releases that counted in steps, with what replaced them.
RENAMED_KEYS = {"max_epochs": "epochs", "eval_every": "eval_every_epochs",
                "patience": "patience_epochs"}


@dataclass(frozen=True)
class FinetuneConfig:
    """How each run fine-tunes: optimiser, recipe, precision, LoRA.

    The recipe counts in epochs of the run's own subset (see
    :mod:`lensllm.finetune.recipe`), so that every subset size is trained the same way to
    its own convergence.

    Attributes:
        method: ``"full"`` (every parameter trains) or ``"lora"`` (peft adapters only).
        learning_rate: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        batch_size: training examples per optimizer step.
        micro_batch_size: examples per forward/backward pass (0: ``batch_size``); the
            gradients of ``ceil(batch_size / micro_batch_size)`` passes are accumulated.
        eval_batch_size: examples per evaluation forward pass.
        epochs: the horizon, in passes over the subset: a run that has not stopped on a
            plateau by then ends there and is recorded as having hit its horizon.
        min_steps: horizon in optimizer steps at least (1: no step floor; a floor makes
            small subsets' points measure steps, not data).
        max_steps: horizon in optimizer steps at most (0: no cap).
        eval_every_epochs: epochs between validation passes.
        min_eval_interval: floor of the validation interval, in steps.
        patience_epochs: epochs without a better validation loss before stopping.
        min_patience_steps: the patience in optimizer steps at least, but by this floor
            no more than four epochs' patience (0: no floor). A small subset's epoch is a
            few steps, while a run can creep along a slow stretch of its validation curve
            for tens of steps at any size (:mod:`lensllm.finetune.recipe`).
        patience_fraction: the patience grows with the run: at least this share of the
            steps to the best validation so far (0.25: a run whose best is at step 4000
            waits 1000 steps), so a slow run is not ended by one chance stall.
        patience_trend: when the patience has run out, the run goes on while the
            validation losses of its last two patiences still fall (least-squares slope of
            their log below 0), up to four patiences without a better one: a pause of a
            slowly improving run is not its plateau (:mod:`lensllm.finetune.recipe`). False:
            the patience alone decides, as it did before the trend check (with
            ``min_patience_steps = 0`` too, such a config keeps the run keys of stores made
            then, so their runs are reused).
        min_improvement: relative drop of the validation loss below the best so far that
            counts as better (smaller changes are noise: they neither move the kept
            weights nor reset the patience).
        min_train_epochs: epochs every run trains before early stopping may end it.
        warmup_ratio: fraction of the first epoch with a linear warmup.
        validation_share: validation examples per training example; a run is judged on
            the first ``max(min_validation, ceil(validation_share * D))`` examples of the
            validation split (0: the whole split), so evaluation stays a small share of a
            small run's FLOPs.
        min_validation: validation examples at least.
        lr_schedule: after warmup: ``"constant"`` (the default; runs end on a plateau of
            the validation loss), or ``"cosine"`` / ``"linear"`` decay to 0 at the horizon.
        max_grad_norm: gradient clipping norm (0: no clipping).
        precision: ``"auto"`` (bf16 autocast on CUDA when supported, else fp32), ``"fp32"``,
            ``"bf16"`` or ``"fp16"`` (autocast with loss scaling; CUDA only).
        gradient_checkpointing: recompute activations in the backward pass (less memory,
            about a third more compute).
        max_length: maximum tokens per sequence (per side for encoder-decoders).
        lora_r, lora_alpha, lora_dropout: LoRA rank, scale and dropout.
        lora_target_modules: module names to adapt, or ``"all-linear"``.
        attn_implementation: ``"eager"`` or ``"sdpa"``.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"mps"``.
    """

    method: str = "full"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8
    micro_batch_size: int = 0
    eval_batch_size: int = 32
    epochs: float = 100.0
    min_steps: int = 1
    max_steps: int = 0
    eval_every_epochs: float = 0.5
    min_eval_interval: int = 5
    patience_epochs: float = 1.0
    min_patience_steps: int = 50
    patience_fraction: float = 0.25
    patience_trend: bool = True
    min_improvement: float = 1e-3
    min_train_epochs: float = 1.0
    warmup_ratio: float = 0.1
    validation_share: float = 0.25
    min_validation: int = 32
    lr_schedule: str = "constant"
    max_grad_norm: float = 1.0
    precision: str = "auto"
    gradient_checkpointing: bool = False
    max_length: int = 128
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    attn_implementation: str = "sdpa"
    device: str = "auto"

    def __post_init__(self) -> None:
        _check_choice("finetune.method", self.method, _METHODS)
        _check_choice("finetune.attn_implementation", self.attn_implementation, _ATTN)
        _check_choice("finetune.device", self.device, _DEVICES)
        _check_choice("finetune.precision", self.precision, _PRECISIONS)
        _check_choice("finetune.lr_schedule", self.lr_schedule, _SCHEDULES)
        for name in ("gradient_checkpointing", "patience_trend"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"`finetune.{name}` must be true or false, "
                                  f"got {getattr(self, name)!r}")
        _check_number("learning_rate", self.learning_rate, low=0.0, strict=True,
                      high=MAX_LEARNING_RATE)
        for name, strict, high in (("weight_decay", False, 1e3), ("epochs", True, MAX_EPOCHS),
                                   ("eval_every_epochs", True, MAX_EPOCHS),
                                   ("patience_epochs", False, MAX_EPOCHS),
                                   ("patience_fraction", False, 100.0),
                                   ("min_train_epochs", False, MAX_EPOCHS),
                                   ("validation_share", False, 1e3),
                                   ("max_grad_norm", False, 1e6), ("lora_alpha", True, 1e6)):
            _check_number(name, getattr(self, name), low=0.0, strict=strict, high=high)
        _check_number("warmup_ratio", self.warmup_ratio, low=0.0, high=1.0)
        _check_number("min_improvement", self.min_improvement, low=0.0, high=0.5)
        for name, low, high in (("batch_size", 1, MAX_COUNT), ("micro_batch_size", 0, MAX_COUNT),
                                ("eval_batch_size", 1, MAX_COUNT), ("min_steps", 1, MAX_STEPS),
                                ("max_steps", 0, MAX_STEPS),
                                ("min_eval_interval", 1, MAX_STEPS),
                                ("min_patience_steps", 0, MAX_STEPS),
                                ("min_validation", 1, MAX_COUNT),
                                ("max_length", 2, MAX_COUNT), ("lora_r", 1, MAX_COUNT)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"`finetune.{name}` must be an integer in [{low}, {high}], "
                                  f"got {value!r}")
        if isinstance(self.lora_dropout, bool) or not isinstance(self.lora_dropout, int | float) \
                or not 0 <= self.lora_dropout < 1:
            raise ConfigError(
                f"`finetune.lora_dropout` must be a number in [0, 1), got {self.lora_dropout!r}"
            )
        targets = self.lora_target_modules
        if isinstance(targets, list):
            object.__setattr__(self, "lora_target_modules", tuple(targets))
            targets = self.lora_target_modules
        if not (isinstance(targets, str) or all(isinstance(t, str) for t in targets)):
            raise ConfigError(
                "`finetune.lora_target_modules` must be 'all-linear' or a list of module names"
            )

    @property
    def accumulation_steps(self) -> int:
        """Forward/backward passes per optimizer step."""
        micro = self.micro_batch_size or self.batch_size
        return math.ceil(self.batch_size / min(micro, self.batch_size))

    def plan(self, size: int) -> TrainingPlan:
        """The recipe's step counts for a run on ``size`` examples."""
        return plan_training(
            size, batch_size=self.batch_size, epochs=self.epochs, min_steps=self.min_steps,
            max_steps=self.max_steps, eval_every_epochs=self.eval_every_epochs,
            min_eval_interval=self.min_eval_interval, patience_epochs=self.patience_epochs,
            min_patience_steps=self.min_patience_steps,
            patience_fraction=self.patience_fraction, patience_trend=self.patience_trend,
            min_train_epochs=self.min_train_epochs, warmup_ratio=self.warmup_ratio,
            validation_share=self.validation_share, min_validation=self.min_validation,
        )

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        data = dataclasses.asdict(self)
        if isinstance(self.lora_target_modules, tuple):
            data["lora_target_modules"] = list(self.lora_target_modules)
        return data


@dataclass(frozen=True)
class DataConfig:
    """The task source, how its records map onto examples, and the fixed splits.

    Attributes:
        path: a JSONL, CSV or Parquet task file, or a directory saved by ``datasets``'
            ``save_to_disk`` (absolute once loaded). Exactly one of ``path`` and
            ``dataset`` is set.
        dataset: a ``datasets`` name or local dataset path for ``load_dataset`` (offline:
            from the local cache).
        dataset_config: the dataset's configuration name ("" for its default).
        split: the split to read from ``dataset`` or from a saved ``DatasetDict``.
        fields: role -> column name, roles ``text``, ``source``, ``target``, ``messages``
            (see :mod:`lensllm.finetune.fields`).
        prompt_template: ``"instruction"`` or a ``{column}`` format string that writes each
            example's source (instruction data; the target column is ``fields.target``).
        name: the dataset name runs are stored under (default: the file's stem or the
            dataset name's last part).
        validation_size: examples in the validation split.
        test_size: examples in the test split.
        split_seed: seed of the train/validation/test split, fixed across run seeds so all
            runs are scored on the same test examples.
    """

    path: Path | None = None
    dataset: str = ""
    dataset_config: str = ""
    split: str = "train"
    fields: dict[str, str] = field(default_factory=dict)
    prompt_template: str = ""
    name: str = ""
    validation_size: int = 64
    test_size: int = 128
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))
        if (self.path is None) == (not self.dataset):
            raise ConfigError("[data] needs exactly one of `data.path` (a local file or saved "
                              "dataset directory) and `data.dataset` (a `datasets` source)")
        for key in ("dataset", "dataset_config", "split", "prompt_template", "name"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(f"`data.{key}` must be a string, got {getattr(self, key)!r}")
        if not self.split:
            raise ConfigError("`data.split` must name a split, got ''")
        if not isinstance(self.fields, Mapping):
            raise ConfigError(f"`data.fields` must be a table of role = column, got "
                              f"{self.fields!r}")
        object.__setattr__(self, "fields", dict(self.fields))
        check_mapping(self.fields, self.prompt_template)
        if not self.name:
            stem = self.path.stem if self.path is not None else self.dataset.rstrip("/")
            object.__setattr__(self, "name", stem.rsplit("/", 1)[-1])
        for key in ("validation_size", "test_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`data.{key}` must be an integer >= 1, got {value!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) or \
                not 0 <= self.split_seed <= MAX_SEED:
            raise ConfigError(f"`data.split_seed` must be an integer in [0, {MAX_SEED}], got "
                              f"{self.split_seed!r}")


@dataclass(frozen=True)
class Candidate:
    """One model to fine-tune.

    Attributes:
        model: a model id (``tiny:gpt2``, ``gguf:smollm2``, a local path or hub id).
        family: the family written to exported tables (default: the model's type).
    """

    model: str
    family: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"`candidates.model` must be a non-empty string, got {self.model!r}")
        if not isinstance(self.family, str):
            raise ConfigError(f"`candidates.family` of {self.model!r} must be a string, got "
                              f"{self.family!r}")
        for key in ("model", "family"):
            value = getattr(self, key)
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise ConfigError(f"`candidates.{key}` {value!r} holds a control character "
                                  "(NUL, newline...); names are printed and stored as text")


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: candidates x sizes x seeds on one task.

    Attributes:
        candidates: the models, at least one, no duplicates.
        data: the task file and splits.
        sizes: strictly increasing subset sizes (>= 1).
        seeds: run seeds, no duplicates.
        finetune: how every run trains.
        zero_shot: also evaluate each candidate once before training (the table's ``0``
            column; stored as a size-0 run with the first seed).
        store: the store file (None: ``<config stem>.sqlite`` in the working directory).
        threads: torch threads per run (None: torch's default).
        source: the config file it came from, if any.
    """

    candidates: tuple[Candidate, ...]
    data: DataConfig
    sizes: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    zero_shot: bool = True
    store: Path | None = None
    threads: int | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", tuple(self.candidates))
        object.__setattr__(self, "sizes", tuple(self.sizes))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.candidates:
            raise ConfigError("the config needs at least one [[candidates]] entry")
        models = [c.model for c in self.candidates]
        dupes = sorted({m for m in models if models.count(m) > 1})
        if dupes:
            raise ConfigError(f"candidate models must be distinct, repeated: {', '.join(dupes)}")
        if not self.sizes:
            raise ConfigError("`experiment.sizes` must list at least one subset size")
        for size in self.sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"`experiment.sizes` must be integers >= 1, got {size!r}")
            if size > 10**15:
                raise ConfigError(f"`experiment.sizes` must be <= 1e15 examples, got {size!r}")
        for prev, nxt in zip(self.sizes, self.sizes[1:]):
            if nxt <= prev:
                raise ConfigError(
                    f"`experiment.sizes` must be strictly increasing, got {nxt} after {prev}"
                )
        if not self.seeds:
            raise ConfigError("`experiment.seeds` must list at least one seed")
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
                raise ConfigError(f"`experiment.seeds` must be integers in [0, {MAX_SEED}], "
                                  f"got {seed!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"`experiment.seeds` must be distinct, got {list(self.seeds)}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int)
            or not 1 <= self.threads <= max_threads()
        ):
            raise ConfigError(
                f"`experiment.threads` must be an integer in [1, {max_threads()}] (this "
                f"machine's CPU count), got {self.threads!r}"
            )

    def config_hash(self, data_sha256: str, scoring: str = "") -> str:
        """Hash of every setting that changes a run's result, for the run key.

        Covers the fine-tuning settings, the split settings and the content of the data
        file; not the candidates, sizes or seeds (they are in the key itself), nor the store
        or thread count.

        Args:
            data_sha256: the data's fingerprint (:func:`file_sha256` of a plain file, see
                :attr:`lensllm.finetune.data.TaskData.fingerprint`).
            scoring: how examples are scored, when it changed since the first store
                format (:attr:`lensllm.finetune.data.TaskData.scoring`); "" adds nothing,
                so earlier hashes stay valid.

        Returns:
            16 hex digits.
        """
        payload = {
            "finetune": self.finetune.as_dict(),
            "validation_size": self.data.validation_size,
            "test_size": self.data.test_size,
            "split_seed": self.data.split_seed,
            "data": data_sha256,
        }
        if scoring:
            payload["scoring"] = scoring
        # Settings that change speed or memory, not the math, stay out of the key.
        for key in ("eval_batch_size", "device", "micro_batch_size", "gradient_checkpointing"):
            payload["finetune"].pop(key)
        # The trend check came later: without it a config hashes as it did before it
        # existed, so the runs of stores made then keep their keys.
        if not payload["finetune"]["patience_trend"]:
            payload["finetune"].pop("patience_trend")
        if not payload["finetune"]["min_patience_steps"]:  # the same for the step floor
            payload["finetune"].pop("min_patience_steps")
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_TOP_KEYS = ("experiment", "data", "candidates", "finetune")
_EXPERIMENT_KEYS = ("sizes", "seeds", "zero_shot", "store", "threads")


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config from a TOML file.

    Relative paths in the file (``data.path``, ``experiment.store``) are relative to the
    file's directory. Checks the file itself only; :func:`lensllm.finetune.experiment.
    prepare_experiment` also checks the data, the models and the store.

    Args:
        path: the ``.toml`` file.

    Returns:
        The validated config.

    Raises:
        ConfigError: the file is missing or not TOML, a key is unknown or missing, or a
            value breaks a rule; the message names the key.
    """
    path = Path(path)
    return config_from_dict(read_toml(path), base_dir=path.parent, source=path)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML config file as a dict; :class:`ConfigError` naming the file otherwise."""
    text = read_text(path, "config file", error=ConfigError)  # no FIFO/device, UTF-8
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    check_text(raw, f"config file '{path}'", error=ConfigError)
    return raw


def config_from_dict(
    raw: Mapping[str, Any], *, base_dir: str | Path = ".", source: Path | None = None
) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from parsed TOML (see :func:`load_config`)."""
    base_dir = Path(base_dir)
    where = f" in '{source}'" if source else ""
    _reject_unknown("", raw, _TOP_KEYS, where)
    for required in ("experiment", "data", "candidates"):
        if required not in raw:
            raise ConfigError(f"missing table [{required}]{where}")
    experiment = _table("experiment", raw["experiment"], where)
    _reject_unknown("experiment.", experiment, _EXPERIMENT_KEYS, where)
    if "sizes" not in experiment:
        raise ConfigError(f"missing key `experiment.sizes`{where}")

    data = _data_config(_table("data", raw["data"], where), base_dir, where)

    candidates_raw = raw["candidates"]
    if not isinstance(candidates_raw, list):
        raise ConfigError(f"`candidates` must be an array of tables [[candidates]]{where}")
    candidates = []
    for i, item in enumerate(candidates_raw):
        if isinstance(item, str):
            item = {"model": item}
        item = _table(f"candidates[{i}]", item, where)
        _reject_unknown(f"candidates[{i}].", item, ("model", "family"), where)
        if "model" not in item:
            raise ConfigError(f"missing key `candidates[{i}].model`{where}")
        candidates.append(_construct(Candidate, item, f"candidates[{i}]"))

    finetune_raw = _table("finetune", raw.get("finetune", {}), where)
    finetune_keys = tuple(f.name for f in dataclasses.fields(FinetuneConfig))
    for old, new in RENAMED_KEYS.items():
        if old in finetune_raw:
            raise ConfigError(f"`finetune.{old}`{where} was replaced by `finetune.{new}`: "
                              "the recipe counts in epochs of each subset (docs/running.md)")
    _reject_unknown("finetune.", finetune_raw, finetune_keys, where)
    finetune = _construct(FinetuneConfig, finetune_raw, "finetune")

    store = experiment.get("store")
    if store is not None:
        if not isinstance(store, str) or not store:
            raise ConfigError(f"`experiment.store` must be a file path, got {store!r}")
        store = (base_dir / store).resolve()
    zero_shot = experiment.get("zero_shot", True)
    if not isinstance(zero_shot, bool):
        raise ConfigError(f"`experiment.zero_shot` must be true or false, got {zero_shot!r}")
    for key in ("sizes", "seeds"):
        if key in experiment and not isinstance(experiment[key], list):
            raise ConfigError(f"`experiment.{key}` must be a list, got {experiment[key]!r}")
    return ExperimentConfig(
        candidates=tuple(candidates),
        data=data,
        sizes=tuple(experiment["sizes"]),
        seeds=tuple(experiment.get("seeds", [0])),
        finetune=finetune,
        zero_shot=zero_shot,
        store=store,
        threads=experiment.get("threads"),
        source=source,
    )


def _data_config(data_raw: Mapping[str, Any], base_dir: Path, where: str) -> DataConfig:
    """The [data] table: relative paths resolved against the config file's directory."""
    data_raw = dict(data_raw)
    data_keys = tuple(f.name for f in dataclasses.fields(DataConfig))
    _reject_unknown("data.", data_raw, data_keys, where)
    if "path" not in data_raw and "dataset" not in data_raw:
        raise ConfigError(f"missing key `data.path` (a local file) or `data.dataset` (a "
                          f"`datasets` source){where}")
    if "path" in data_raw:
        data_raw["path"] = (base_dir / str(data_raw["path"])).resolve()
    dataset = data_raw.get("dataset")
    if isinstance(dataset, str) and dataset and (base_dir / dataset).exists():
        data_raw["dataset"] = str((base_dir / dataset).resolve())
    if "fields" in data_raw:
        data_raw["fields"] = _table("data.fields", data_raw["fields"], where)
    return _construct(DataConfig, data_raw, "data")


def _table(name: str, value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"`{name}` must be a table, got {type(value).__name__}{where}")
    return value


def _reject_unknown(prefix: str, table: Mapping[str, Any], known: tuple[str, ...], where: str):
    for key in table:
        if key not in known:
            raise ConfigError(
                f"unknown key `{prefix}{key}`{where}; known keys: {', '.join(known)}"
            )


def _construct(cls, values: Mapping[str, Any], name: str):
    try:
        return cls(**values)
    except TypeError as exc:  # a value of the wrong type caught by a comparison
        raise ConfigError(f"bad value in [{name}]: {exc}") from None


def _check_number(
    name: str, value: Any, *, low: float, high: float = math.inf, strict: bool = False
) -> None:
    """A finite real number in ``[low, high]`` (``(low, high]`` when ``strict``)."""
    ok = (not isinstance(value, bool) and isinstance(value, int | float)
          and math.isfinite(value) and (value > low if strict else value >= low)
          and value <= high)
    if not ok:
        bound = f"> {low:g}" if strict else f">= {low:g}"
        if high != math.inf:
            bound += f" and <= {high:g}"
        raise ConfigError(f"`finetune.{name}` must be a finite number {bound}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(choices)}, got {value!r}")
