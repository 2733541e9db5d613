"""The training recipe: one rule that sets every run's length, evaluations and patience.

A scaling law in the data size D only means something when every subset is trained the
same way to its own convergence. Counting evaluation cadence and patience in optimizer
*steps* breaks that: a small subset would train every epoch it is allowed while a large one
is stopped before it has seen its data once. The rule below counts them in *epochs* of the
run's own subset, with floors in steps so that small subsets still get enough updates.

With ``S = ceil(D / batch_size)`` optimizer steps per epoch:

- planned steps ``T = max(ceil(epochs * S), min_steps)``, capped by ``max_steps`` when it
  is set; the learning-rate schedule (warmup, then decay) spans exactly ``T`` steps;
- evaluation interval ``I = min(T, max(ceil(eval_every_epochs * S), min_eval_interval))``;
  the validation loss is measured at step 0, at every multiple of ``I`` and at step ``T``;
- patience ``P = max(ceil(patience_epochs * S), I)`` steps: at an evaluation at step ``s``
  the run stops when the best validation loss is ``P`` or more steps old ...
- ... but never before the guaranteed steps ``G = min(T, ceil(min_train_epochs * S))``;
- warmup ``W = ceil(warmup_ratio * T)`` steps.

The same rule prices a run that is not made (:func:`estimate_run_flops`): the run at D*
plans ``T`` steps, corrected by the early-stopping point observed on the largest paid runs
(see ``docs/running.md``).

Torch is not imported here: the rule is plain arithmetic, shared by the trainer, the cost
estimate and the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TrainingPlan", "plan_training", "examples_processed", "estimate_run_flops"]


@dataclass(frozen=True)
class TrainingPlan:
    """The step counts of one run under the recipe (all in optimizer steps).

    Attributes:
        size: training examples D.
        batch_size: examples per optimizer step.
        steps_per_epoch: ``S = ceil(D / batch_size)``.
        planned_steps: ``T``, the schedule's length and the most steps the run takes.
        eval_interval: ``I``, steps between validations.
        patience_steps: ``P``, steps without a better validation loss before stopping.
        guaranteed_steps: ``G``, steps trained before early stopping may end the run.
        warmup_steps: ``W``, linear warmup at the start of the schedule.
    """

    size: int
    batch_size: int
    steps_per_epoch: int
    planned_steps: int
    eval_interval: int
    patience_steps: int
    guaranteed_steps: int
    warmup_steps: int

    @property
    def planned_epochs(self) -> float:
        """Passes over the subset if the run is not stopped early."""
        return self.planned_steps * self.batch_size / self.size

    @property
    def guaranteed_epochs(self) -> float:
        """Passes over the subset every run makes before it may stop early."""
        return self.guaranteed_steps * self.batch_size / self.size

    def eval_steps(self) -> list[int]:
        """Steps after which the validation loss is measured (step 0 excluded)."""
        steps = list(range(self.eval_interval, self.planned_steps + 1, self.eval_interval))
        if not steps or steps[-1] != self.planned_steps:
            steps.append(self.planned_steps)
        return steps

    def should_stop(self, step: int, best_step: int) -> bool:
        """Whether an evaluation at ``step`` ends the run, the best loss seen at ``best_step``."""
        return step >= self.guaranteed_steps and step - best_step >= self.patience_steps


def plan_training(
    size: int,
    *,
    batch_size: int,
    epochs: float,
    min_steps: int,
    max_steps: int = 0,
    eval_every_epochs: float,
    min_eval_interval: int,
    patience_epochs: float,
    min_train_epochs: float,
    warmup_ratio: float,
) -> TrainingPlan:
    """The recipe's step counts for a run on ``size`` examples (see the module docstring).

    Args:
        size: training examples (>= 1).
        batch_size: examples per optimizer step (with gradient accumulation, the effective
            batch).
        epochs: planned passes over the subset before the ``min_steps`` floor.
        min_steps: planned optimizer steps at least.
        max_steps: planned optimizer steps at most (0: no cap).
        eval_every_epochs: epochs between validations, before the floor.
        min_eval_interval: floor of the evaluation interval, in steps.
        patience_epochs: epochs without improvement before stopping.
        min_train_epochs: epochs trained before early stopping may end the run.
        warmup_ratio: fraction of the planned steps spent in linear warmup.

    Returns:
        The plan.

    Raises:
        ValueError: ``size`` or ``batch_size`` below 1.
    """
    if size < 1 or batch_size < 1:
        raise ValueError(f"size and batch_size must be >= 1, got {size} and {batch_size}")
    per_epoch = math.ceil(size / batch_size)
    planned = max(_ceil(epochs * per_epoch), min_steps, 1)
    if max_steps:
        planned = min(planned, max_steps)
    interval = min(planned, max(_ceil(eval_every_epochs * per_epoch), min_eval_interval, 1))
    return TrainingPlan(
        size=size,
        batch_size=batch_size,
        steps_per_epoch=per_epoch,
        planned_steps=planned,
        eval_interval=interval,
        patience_steps=max(_ceil(patience_epochs * per_epoch), interval),
        guaranteed_steps=min(planned, _ceil(min_train_epochs * per_epoch)),
        warmup_steps=_ceil(warmup_ratio * planned),
    )


def examples_processed(plan: TrainingPlan, steps: int) -> int:
    """Examples a run of ``plan`` has processed after ``steps`` optimizer steps (each epoch
    is ``steps_per_epoch`` steps whose last batch may be short)."""
    full_epochs, rest_steps = divmod(steps, plan.steps_per_epoch)
    return full_epochs * plan.size + min(rest_steps * plan.batch_size, plan.size)


def estimate_run_flops(
    plan: TrainingPlan,
    *,
    n_params: float,
    tokens_per_example: float,
    stop_fraction: float,
    validation_tokens: float,
    test_tokens: float,
) -> float:
    """FLOPs of a run that was not made, priced by the recipe.

    The run trains ``stop_fraction`` of its planned steps (the early-stopping point observed
    on comparable runs), but never fewer than its guaranteed steps; it validates at step 0
    and at each evaluation step it reaches, and measures the test loss once. Training costs
    ``6 N`` FLOPs per token and evaluation ``2 N``, as in the counted FLOPs of a real run.

    Args:
        plan: the recipe's plan for the run's size.
        n_params: parameters of the model as trained.
        tokens_per_example: mean tokens per training example.
        stop_fraction: trained steps / planned steps, in ``(0, 1]``.
        validation_tokens: tokens of one pass over the validation split.
        test_tokens: tokens of one pass over the test split.

    Returns:
        The estimated FLOPs.
    """
    steps = round(min(max(stop_fraction, 0.0), 1.0) * plan.planned_steps)
    steps = max(plan.guaranteed_steps, min(plan.planned_steps, steps), 1)
    evaluations = 1 + sum(1 for s in plan.eval_steps() if s <= steps)
    train_tokens = tokens_per_example * examples_processed(plan, steps)
    eval_tokens = evaluations * validation_tokens + test_tokens
    return 6.0 * n_params * train_tokens + 2.0 * n_params * eval_tokens


def _ceil(value: float) -> int:
    # Guard against 3 * 0.1 * 10 = 3.0000000000000004 turning into 4.
    return math.ceil(round(value, 9))
