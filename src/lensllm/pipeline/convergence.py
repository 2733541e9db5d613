"""Did each run a selection relies on reach its data-limited loss?

A point of a loss curve is the best validation loss its subset allows only when the run
stopped because its validation loss had stopped improving. A run whose best validation
came at its last step was still improving when it ended (it hit its horizon, or its
``max_steps``): its loss is an upper bound, and a law fitted through it measures the
horizon, not the data. This module reads every paid run's best step and last step from the
store and says, per point, whether it converged; ``lensllm select`` logs a warning, and
``--json`` and the report say how many of the points used converged, so no law is fitted
silently to unconverged points.

Converged means the recipe's plateau rule ended the run (:meth:`TrainingPlan.converged
<lensllm.finetune.recipe.TrainingPlan.converged>`): it stopped before its horizon, or it
reached the horizon having already gone its patience (``max(P, patience_fraction * best
step)``) without a better validation. A run at its horizon whose best validation came
shortly before the end was still improving, though its best step is not its last: on the
zoo's comments task an untrained model's D* run reached the horizon of 100 epochs (40000
steps) with its best at 37200. With the recipe's trend check (``patience_trend``) a run at
its horizon whose validation losses were still falling (the check would have kept it going)
did not converge either; its validations are read from the store only for runs at their
horizon. ``horizon_hit`` says whether it trained to its horizon.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lensllm.selection.predictive_plan import short

__all__ = ["PointConvergence", "convergence", "convergence_record", "convergence_text",
           "runs_converged"]


@dataclass(frozen=True)
class PointConvergence:
    """One seed's run behind a point of a candidate's curve.

    Attributes:
        model: the candidate's model id.
        size: training examples.
        seed: the run's seed.
        best_step: the step whose weights were kept (best validation loss).
        steps: steps trained.
        horizon_steps: the recipe's horizon at this size.
        patience_steps: the recipe's patience at the run's best step
            (:meth:`~lensllm.finetune.recipe.TrainingPlan.patience_at`; 0: a best step
            before the last is enough).
        still_falling: at its horizon, the recipe's trend check would have kept the run
            going (its validation losses still fell; only read for runs at their horizon).
    """

    model: str
    size: int
    seed: int
    best_step: int
    steps: int
    horizon_steps: int
    patience_steps: int = 0
    still_falling: bool = False

    @property
    def converged(self) -> bool:
        """The run kept training after its best validation and either stopped before its
        horizon (the plateau rule ended it) or had gone its patience by then."""
        if not self.best_step < self.steps:
            return False
        return (self.steps < self.horizon_steps
                or (self.steps - self.best_step >= self.patience_steps
                    and not self.still_falling))

    @property
    def horizon_hit(self) -> bool:
        """The run trained to its horizon: ``steps >= horizon_steps``."""
        return self.steps >= self.horizon_steps

    def to_dict(self) -> dict[str, Any]:
        """The run's entry in ``--json``, the derived flags included."""
        return {**asdict(self), "converged": self.converged, "horizon_hit": self.horizon_hit}


def convergence(view: Any) -> list[PointConvergence]:
    """Every finished training run behind the paid points of ``view`` (a
    :class:`~lensllm.pipeline.view.RunView`), ordered by candidate and size."""
    pairs = sorted(view.paid_runs, key=lambda p: (view.models.index(p[0]), p[1]))
    return runs_converged(view, pairs)


def runs_converged(view: Any, pairs: list[tuple[str, int]]) -> list[PointConvergence]:
    """The finished training runs of ``(model id, size)`` pairs of ``view`` (every seed),
    in the order given: the points a selection used, or the store's runs at ``D*`` that
    its truth check reads."""
    recipe = view.recipe
    out = []
    for model, size in pairs:
        if size <= 0:
            continue
        plan = recipe.plan(int(size))
        for rec in view.records(model, int(size)):
            if rec.status != "finished" or rec.result is None:
                continue
            best, steps = rec.result.early_stop_step, rec.result.steps
            falling = False
            if plan.patience_trend and steps >= plan.planned_steps and best < steps:
                history = view.validation_losses(rec.run_id)
                falling = not plan.should_stop(steps, best, history)
            out.append(PointConvergence(
                model=model, size=int(size), seed=rec.key.seed, best_step=best,
                steps=steps, horizon_steps=plan.planned_steps,
                patience_steps=plan.patience_at(best),
                still_falling=falling and steps - best >= plan.patience_at(best)))
    return out


def convergence_record(points: list[PointConvergence]) -> dict[str, Any]:
    """The ``convergence`` entry of ``select --json``."""
    bad = [p for p in points if not p.converged]
    return {"points_used": len(points), "converged": len(points) - len(bad),
            "share_converged": (len(points) - len(bad)) / len(points) if points else None,
            "unconverged": [p.to_dict() for p in bad]}


def convergence_text(points: list[PointConvergence], *, limit: int = 6) -> str:
    """One sentence: how many points converged, and which did not (first ``limit``)."""
    if not points:
        return "convergence: no fine-tuning run used yet"
    bad = [p for p in points if not p.converged]
    head = (f"convergence: {len(points) - len(bad)} of {len(points)} runs used converged "
            "(stopped on a plateau of their validation loss)")
    if not bad:
        return head
    names = ", ".join(f"{short(p.model)} D={p.size}"
                      + (" (horizon)" if p.horizon_hit else "") for p in bad[:limit])
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return (f"{head}; NOT converged, still improving at their end: {names}{more}. Their "
            "losses are upper bounds and the laws fitted through them are not the "
            "data-limited curve: raise `finetune.epochs` / `max_steps`. (A loss still "
            "shrinking towards 0, on a task the model has learnt almost perfectly, never "
            "plateaus: the horizon ends such runs, and their points are small upper "
            "bounds)")
