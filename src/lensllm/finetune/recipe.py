"""The training recipe: one rule that sets every run's length, evaluations and patience.

A scaling law in the data size D only means something when each point of the curve is the
*data-limited* loss: the best validation loss the run's subset allows, reached by the same
rule at every size. A planned step count does not give that. Measured on a task of 3.6k
examples (six candidates, D* = 2048): with a 50-step floor and a schedule that ended on
its planned step, every run from 8 to 256 examples was still improving when it stopped, so
the curve measured 50 steps of training, not the data (log-RMSE of L(D*) 0.66, no
interval held the truth). So the rule is plateau-driven:

- **constant learning rate** after a short warmup (``lr_schedule = "constant"``, the
  default); a decaying schedule would end the learning at a planned step;
- **no step floor**: a run trains until its validation loss stops improving: at an
  evaluation at step ``s`` it stops once the best validation loss is ``P`` or more steps
  old (and the guaranteed steps are done), and the weights of the best evaluation are kept;
- **a horizon** ``T`` that a run normally never reaches: when it does, the run was still
  improving (or had just started to), it is recorded as having hit the horizon, and
  :meth:`TrainingPlan.converged` (it stopped on the plateau rule, or had waited out its
  patience by the horizon) tells the laws whether to trust it.

With ``S = ceil(D / batch_size)`` optimizer steps per epoch, everything counts in epochs of
the run's own subset:

- horizon ``T = max(ceil(epochs * S), min_steps)``, capped by ``max_steps`` when it is set
  (``min_steps`` is 1 by default: no floor);
- evaluation interval ``I = min(T, max(ceil(eval_every_epochs * S), min_eval_interval))``;
  the validation loss is measured at step 0, at every multiple of ``I`` and at step ``T``.
  ``min_eval_interval`` (steps) keeps a 1-step epoch from being judged at every step;
- patience ``P = max(ceil(patience_epochs * S), I, F)`` steps, with the step floor ``F =
  min(min_patience_steps, TREND_CAP * ceil(patience_epochs * S))`` (50 steps by default, but
  never more than four epochs' patience: the longest wait the trend check allows), and at
  least
  ``ceil(patience_fraction * b)`` for a best validation at step ``b``: the patience grows
  with the run. A fixed patience judges a run of 15 epochs on its last one, and a run still
  improving slowly can stall for an epoch by chance: on the zoo's comments task (D* = 3200,
  the same code twice) two D* runs stopped on such a stall in one run (6200 and 5200 steps,
  their losses falling about 2.5% every 1000 steps up to it) and went on to 10400 and 7800
  steps in the other, their test losses 7% and 5% lower. With ``patience_fraction = 0.25``
  a stall must last a fifth of the run (1450 steps at step 5800) before it ends it. Two
  seeds of three D* runs there agreed within 1% (0.01-0.9%), against 1.4-3.2% with the
  fixed patience, whose losses were also 2-5% higher (``docs/running.md``);
- **a pause is not a plateau** (``patience_trend``, on by default): when the patience has
  run out, the run still goes on while the validation losses of the last ``2 P`` steps
  still fall (the least-squares slope of their logarithm against the step is negative),
  up to ``4 P`` steps without a better one (:data:`TREND_WINDOW`, :data:`TREND_CAP`). A
  patience of one epoch is two validations, and a run still improving slowly, or crossing
  a bump of its curve, can go two validations without a new best: on a word-reversal task
  of our own (D* = 800, five tiny models, 16 examples a step) the D* run of ``tiny:opt``
  stopped at step 250 with a validation loss still about 4% below that of 100 steps
  before (2.856, 2.773, 2.734, 2.734, 2.743); with the trend it trained to step 2425 and
  its test loss fell from 2.75 to 1.35 nats per token, the loss a five-epoch patience also
  reaches. A run that overfits (the losses rise after the best) stops exactly as before,
  so small subsets pay nothing for it (``docs/running.md``);
- **a patience floor in steps** (``min_patience_steps``): an epoch of a small subset is a
  few steps (13 at 100 examples in batches of 8), while a run can creep along a slow
  stretch of its validation curve for tens of steps at any size. On the zoo's comments task
  the 200-example run of ``gpt2-d128-L4-p60`` validated 5.866, 5.843, 5.838, 5.830, 5.835,
  5.820, 5.847, 5.831 every 13 steps and stopped at step 130 on an epoch without a better
  loss; with 50 steps it went on to step 507 and a test loss 2.7% lower (5.797 -> 5.639
  nats per token). Capped at four epochs, the floor leaves the smallest subsets (where it
  changed no loss and doubled the steps) almost as they were: on the zoo benchmark the
  selection's cost at D*/8 went from 0.091 to 0.111 of fine-tuning every candidate at D*
  on docstrings and from 0.038 to 0.054 on comments, and on comments the default
  selector's PearCorr from 0.539 to 0.656, above zero-shot's 0.583 (``docs/running.md``);
- guaranteed steps ``G = min(T, ceil(min_train_epochs * S))`` before a run may stop;
- warmup ``W = ceil(warmup_ratio * min(S, T))``: a fraction of the first epoch (so the
  same share of a run's first pass at every size);
- validation examples ``V = max(min_validation, ceil(validation_share * D))``, at most the
  fixed validation split (the first ``V`` of it, so nested across sizes): evaluation is
  sized to the run. Every ``I`` steps a run trains on about ``eval_every_epochs * D``
  examples (6 FLOPs per parameter and token) and validates ``V`` (2 FLOPs), so with the
  defaults (0.5 epochs, a quarter of D) validation costs about a sixth of training, not the
  several times of training that a fixed validation set costs a small subset.

The same rule prices a run that is not made (:func:`estimate_run_flops`), from the number
of steps the run is expected to train (``docs/running.md``).

Torch is not imported here: the rule is plain arithmetic, shared by the trainer, the cost
estimate and the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["TREND_CAP", "TREND_WINDOW", "TrainingPlan", "estimate_run_flops",
           "examples_processed", "plan_training", "still_falling"]

#: With the trend check, the validations of the last ``TREND_WINDOW * P`` steps (``P`` the
#: patience) judge whether the loss still falls: with the default two validations an epoch
#: and a patience of an epoch, the last four or five, so one noisy validation does not
#: decide the slope.
TREND_WINDOW = 2
#: ... and a run stops at ``TREND_CAP * P`` steps without a better validation loss, falling
#: or not: a trend too slow to make a new best (``min_improvement``) in that long is noise.
TREND_CAP = 4


@dataclass(frozen=True)
class TrainingPlan:
    """The step counts of one run under the recipe (all in optimizer steps).

    Attributes:
        size: training examples D.
        batch_size: examples per optimizer step.
        steps_per_epoch: ``S = ceil(D / batch_size)``.
        planned_steps: ``T``, the horizon: the most steps the run takes.
        eval_interval: ``I``, steps between validations.
        patience_steps: ``P``, steps without a better validation loss before stopping.
        patience_fraction: the patience is at least this share of the steps to the best
            validation so far (0: a fixed ``P``).
        guaranteed_steps: ``G``, steps trained before early stopping may end the run.
        warmup_steps: ``W``, linear warmup at the start of the schedule.
        validation_examples: ``V``, validation examples the run is judged on (before the
            cap of the validation split's size).
        patience_trend: when the patience has run out, go on while the recent validation
            losses still fall (up to :data:`TREND_CAP` patiences; module docstring).
    """

    size: int
    batch_size: int
    steps_per_epoch: int
    planned_steps: int
    eval_interval: int
    patience_steps: int
    guaranteed_steps: int
    warmup_steps: int
    validation_examples: int = 0
    patience_fraction: float = 0.0
    patience_trend: bool = False

    @property
    def planned_epochs(self) -> float:
        """Passes over the subset at the horizon."""
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

    def should_stop(self, step: int, best_step: int,
                    history: Sequence[tuple[int, float]] = ()) -> bool:
        """Whether an evaluation at ``step`` ends the run, the best loss seen at ``best_step``.

        Args:
            step: the step of this evaluation.
            best_step: the step of the best validation loss so far.
            history: the run's validations so far, ``(step, loss)`` in order, this one
                included; read only with :attr:`patience_trend`: the run then goes on
                while :func:`still_falling` holds for the last ``TREND_WINDOW * P`` steps,
                up to ``TREND_CAP * P`` steps without a better loss.
        """
        patience = self.patience_at(best_step)
        waited = step - best_step
        if step < self.guaranteed_steps or waited < patience:
            return False
        if not self.patience_trend or waited >= TREND_CAP * patience:
            return True
        return not still_falling(history, since=step - TREND_WINDOW * patience)

    def patience_at(self, best_step: int) -> int:
        """Steps without a better validation loss that end a run whose best is at
        ``best_step``: ``max(P, ceil(patience_fraction * best_step))``."""
        return max(self.patience_steps, _ceil(self.patience_fraction * best_step))

    def converged(self, best_step: int, steps: int,
                  history: Sequence[tuple[int, float]] = ()) -> bool:
        """Whether a run that kept its best weights at ``best_step`` of ``steps`` reached its
        data-limited loss: it stopped on the plateau rule before its horizon, or reached the
        horizon where the rule would have stopped it anyway (:meth:`should_stop`: its patience
        waited out and, with :attr:`patience_trend` and the run's validations ``history``,
        the losses no longer falling). Its best step coming before its last is not enough:
        at the horizon a run whose last better validation is less than :meth:`patience_at`
        old was still improving."""
        if not best_step < steps:
            return False
        return steps < self.planned_steps or self.should_stop(steps, best_step, history)

    def validation_count(self, available: int) -> int:
        """Validation examples of the run when the split has ``available``."""
        return min(available, self.validation_examples or available)


def still_falling(history: Sequence[tuple[int, float]], *, since: float) -> bool:
    """Whether the validation losses from step ``since`` on still fall: the least-squares
    slope of ``log(loss)`` against the step is below 0. Three validations at least (fewer:
    False, the patience decides alone); a non-finite or non-positive loss: False."""
    pts = [(s, v) for s, v in history if s >= since]
    if len(pts) < 3:
        return False
    steps = [float(s) for s, _ in pts]
    losses = [v for _, v in pts]
    if not all(math.isfinite(v) and v > 0 for v in losses):
        return False
    logs = [math.log(v) for v in losses]
    mean_s, mean_l = sum(steps) / len(steps), sum(logs) / len(logs)
    cov = sum((s - mean_s) * (v - mean_l) for s, v in zip(steps, logs))
    return cov < 0


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
    min_patience_steps: int = 0,
    patience_fraction: float = 0.0,
    patience_trend: bool = False,
    min_train_epochs: float,
    warmup_ratio: float,
    validation_share: float = 0.0,
    min_validation: int = 0,
) -> TrainingPlan:
    """The recipe's step counts for a run on ``size`` examples (see the module docstring).

    Args:
        size: training examples (>= 1).
        batch_size: examples per optimizer step (with gradient accumulation, the effective
            batch).
        epochs: the horizon in passes over the subset.
        min_steps: horizon in optimizer steps at least (1: no floor).
        max_steps: horizon in optimizer steps at most (0: no cap).
        eval_every_epochs: epochs between validations, before the floor.
        min_eval_interval: floor of the evaluation interval, in steps.
        patience_epochs: epochs without improvement before stopping.
        min_patience_steps: the patience in steps at least, but by this floor at most
            :data:`TREND_CAP` times the epochs' patience (0: no floor).
        patience_fraction: the patience at least this share of the steps to the best
            validation.
        patience_trend: go on past the patience while the validation loss still falls.
        min_train_epochs: epochs trained before early stopping may end the run.
        warmup_ratio: fraction of the first epoch spent in linear warmup.
        validation_share: validation examples per training example (0: the whole split).
        min_validation: validation examples at least.

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
    validation = 0
    if validation_share > 0:
        validation = max(min_validation, _ceil(validation_share * size), 1)
    return TrainingPlan(
        size=size,
        batch_size=batch_size,
        steps_per_epoch=per_epoch,
        planned_steps=planned,
        eval_interval=interval,
        patience_steps=_patience(per_epoch, interval, patience_epochs, min_patience_steps),
        patience_fraction=patience_fraction,
        patience_trend=patience_trend,
        guaranteed_steps=min(planned, _ceil(min_train_epochs * per_epoch)),
        warmup_steps=_ceil(warmup_ratio * min(per_epoch, planned)),
        validation_examples=validation,
    )


def _patience(per_epoch: int, interval: int, patience_epochs: float,
              min_patience_steps: int) -> int:
    """``P``: the epochs of patience in steps, at least one evaluation interval, raised to
    ``min_patience_steps`` but by the floor no further than :data:`TREND_CAP` times the
    epochs' patience (the longest wait the trend check allows a run)."""
    epochs = _ceil(patience_epochs * per_epoch)
    return max(epochs, interval, min(min_patience_steps, TREND_CAP * max(epochs, 1)))


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
    steps: float,
    validation_tokens: float,
    test_tokens: float,
    training_only: bool = False,
) -> float:
    """FLOPs of a run that was not made, priced by the recipe.

    The run trains ``steps`` optimizer steps (what comparable runs suggest; see
    :meth:`lensllm.pipeline.view.RunView.estimate_run`), within its guaranteed steps and
    its horizon; it validates at step 0 and at each evaluation step it reaches, and
    measures the test loss once. Training costs ``6 N`` FLOPs per token and evaluation
    ``2 N``, as in the counted FLOPs of a real run.

    Args:
        plan: the recipe's plan for the run's size.
        n_params: parameters of the model as trained.
        tokens_per_example: mean tokens per training example.
        steps: optimizer steps the run is expected to train.
        validation_tokens: tokens of one validation pass of the run.
        test_tokens: tokens of one pass over the test split.
        training_only: count the training FLOPs only (the cost fraction's denominator).

    Returns:
        The estimated FLOPs.
    """
    steps = max(plan.guaranteed_steps, min(plan.planned_steps, round(steps)), 1)
    train = 6.0 * n_params * tokens_per_example * examples_processed(plan, steps)
    if training_only:
        return train
    evaluations = 1 + sum(1 for s in plan.eval_steps() if s <= steps)
    return train + 2.0 * n_params * (evaluations * validation_tokens + test_tokens)


def _ceil(value: float) -> int:
    # Guard against 3 * 0.1 * 10 = 3.0000000000000004 turning into 4.
    return math.ceil(round(value, 9))
