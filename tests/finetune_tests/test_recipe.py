"""The training recipe: step counts derived independently, and real runs that honour them."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from lensllm.exceptions import ConfigError
from lensllm.finetune.config import FinetuneConfig
from lensllm.finetune.recipe import (TREND_CAP, estimate_run_flops, examples_processed,
                                     plan_training, still_falling)

RULE = dict(epochs=3.0, min_steps=50, eval_every_epochs=0.25, min_eval_interval=5,
            patience_epochs=1.0, min_train_epochs=1.0, warmup_ratio=0.05)


def _by_hand(size: int, batch: int, rule: dict) -> dict:
    """The documented rule, computed step by step with exact fractions: walk the epochs
    batch by batch until the planned passes and the step floor are both met."""
    steps_per_epoch = 0
    seen = 0
    while seen < size:  # one epoch, batch by batch (the last batch may be short)
        seen += min(batch, size - seen)
        steps_per_epoch += 1
    planned = 0
    while Fraction(planned, steps_per_epoch) < Fraction(rule["epochs"]).limit_denominator():
        planned += 1
    planned = max(planned, rule["min_steps"])
    interval = 1
    while Fraction(interval, steps_per_epoch) < Fraction(rule["eval_every_epochs"]):
        interval += 1
    interval = min(planned, max(interval, rule["min_eval_interval"]))
    patience = 1
    while Fraction(patience, steps_per_epoch) < Fraction(rule["patience_epochs"]):
        patience += 1
    guaranteed = 0
    while Fraction(guaranteed, steps_per_epoch) < Fraction(rule["min_train_epochs"]):
        guaranteed += 1
    evals = [s for s in range(1, planned + 1) if s % interval == 0 or s == planned]
    warmup = 0  # a fraction of the first epoch (or of the horizon, when shorter)
    while Fraction(warmup, min(planned, steps_per_epoch)) < \
            Fraction(rule["warmup_ratio"]).limit_denominator():
        warmup += 1
    return {"steps_per_epoch": steps_per_epoch, "planned_steps": planned,
            "eval_interval": interval, "patience_steps": max(patience, interval),
            "guaranteed_steps": min(planned, guaranteed), "eval_steps": evals,
            "warmup_steps": warmup}


@pytest.mark.parametrize("batch", [8, 16, 12])
def test_plan_of_a_doubling_sequence_matches_the_rule_by_hand(batch):
    for size in [2**k for k in range(3, 14)] + [100, 1000, 4500]:
        plan = plan_training(size, batch_size=batch, **RULE)
        want = _by_hand(size, batch, RULE)
        got = {k: getattr(plan, k) for k in want if k != "eval_steps"}
        got["eval_steps"] = plan.eval_steps()
        assert got == want, size
        # Epoch-based: from where the step floors stop mattering, a run at 2D plans the
        # same number of epochs, evaluates as often per epoch and waits as long.
        if plan.planned_steps > RULE["min_steps"] and size % batch == 0:
            assert plan.planned_epochs == pytest.approx(RULE["epochs"])
            assert plan.guaranteed_epochs == pytest.approx(RULE["min_train_epochs"])


def test_small_subsets_train_several_epochs_and_large_ones_the_planned_three():
    small = plan_training(64, batch_size=16, **RULE)   # 4 steps an epoch, floor 50 steps
    assert small.planned_steps == 50 and small.planned_epochs == pytest.approx(12.5)
    large = plan_training(4096, batch_size=16, **RULE)
    assert large.planned_steps == 768 and large.planned_epochs == pytest.approx(3.0)
    assert large.eval_interval == 64 and large.patience_steps == 256


def test_max_steps_caps_the_plan_and_stopping_needs_guaranteed_steps():
    plan = plan_training(4096, batch_size=16, max_steps=100, **RULE)
    assert plan.planned_steps == 100 and plan.guaranteed_steps == 100
    assert not plan.should_stop(64, 0)  # best is old, but the guaranteed steps are not done
    plan = plan_training(64, batch_size=16, **RULE)  # G = 4, P = max(4, I = 5) = 5
    assert plan.should_stop(10, 5) and not plan.should_stop(10, 6)


def test_examples_processed_counts_short_last_batches():
    plan = plan_training(10, batch_size=4, **{**RULE, "min_steps": 1})  # 3 steps an epoch
    assert [examples_processed(plan, s) for s in range(7)] == [0, 4, 8, 10, 14, 18, 20]


def test_run_estimate_is_six_n_tokens_plus_evaluations():
    plan = plan_training(4096, batch_size=16, **RULE)  # T = 768, I = 64, G = 256
    flops = estimate_run_flops(plan, n_params=1e6, tokens_per_example=10.0,
                               steps=384, validation_tokens=100.0, test_tokens=200.0)
    # 384 steps x 16 examples x 10 tokens; validations at 0, 64, ..., 384 (7), one test pass
    assert flops == pytest.approx(6e6 * 384 * 16 * 10 + 2e6 * (7 * 100 + 200))
    training = estimate_run_flops(plan, n_params=1e6, tokens_per_example=10.0, steps=384,
                                  validation_tokens=100.0, test_tokens=200.0,
                                  training_only=True)
    assert training == pytest.approx(6e6 * 384 * 16 * 10)
    never_below_guaranteed = estimate_run_flops(
        plan, n_params=1e6, tokens_per_example=10.0, steps=3,
        validation_tokens=0.0, test_tokens=0.0)
    assert never_below_guaranteed == pytest.approx(6e6 * 256 * 16 * 10)
    never_past_the_horizon = estimate_run_flops(
        plan, n_params=1e6, tokens_per_example=10.0, steps=10**6,
        validation_tokens=0.0, test_tokens=0.0)
    assert never_past_the_horizon == pytest.approx(6e6 * 768 * 16 * 10)


def test_the_patience_has_a_floor_in_steps():
    # 200 examples in batches of 8: S = 25, I = max(ceil(25 / 4), 5) = 7, P = max(25, 7) =
    # 25; a floor of 100 steps makes it 100, a quarter of the steps to a best at 1000 makes
    # it 250, and a large subset's epoch already exceeds the floor (4096 / 8 = 512 steps)
    assert plan_training(200, batch_size=8, **RULE).patience_steps == 25
    floored = plan_training(200, batch_size=8, **{**RULE, "patience_fraction": 0.25},
                            min_patience_steps=100)
    assert floored.patience_steps == 100 and floored.patience_at(1000) == 250
    assert not floored.should_stop(138, 39) and floored.should_stop(139, 39)
    assert plan_training(4096, batch_size=8, **RULE, min_patience_steps=100).patience_steps \
        == 512


def test_validation_is_sized_to_the_run():
    rule = {**RULE, "validation_share": 0.25, "min_validation": 32}
    assert plan_training(8, batch_size=8, **rule).validation_count(64) == 32
    assert plan_training(200, batch_size=8, **rule).validation_count(64) == 50
    assert plan_training(4096, batch_size=8, **rule).validation_count(64) == 64
    # 0: the whole split, as before
    assert plan_training(8, batch_size=8, **RULE).validation_count(64) == 64


def test_default_recipe_has_no_step_floor_and_a_constant_rate():
    config = FinetuneConfig()
    assert config.min_steps == 1 and config.lr_schedule == "constant"
    for size in (8, 64, 512, 4096):
        plan = config.plan(size)
        # the horizon is the same number of epochs at every size: no floor in steps
        assert plan.planned_epochs == pytest.approx(config.epochs, rel=0.01)


def test_no_run_stops_before_the_guaranteed_epochs(addition_task):
    pytest.importorskip("torch")
    from lensllm.finetune.train import finetune

    config = FinetuneConfig(batch_size=16, learning_rate=3e-3, max_length=16,
                            eval_batch_size=64)
    # a size where the evaluation interval is its floor in steps and sizes where it is a
    # share of an epoch (1024 and up trained for minutes and tested nothing more)
    for size in (64, 512):
        result = finetune("tiny:gpt2", addition_task, size=size, seed=0, config=config,
                          validation_size=64, test_size=64)
        plan = config.plan(size)
        assert result.steps >= plan.guaranteed_steps, size
        assert result.steps * 16 / size >= config.min_train_epochs - 1e-9, size
        assert result.steps <= plan.planned_steps
        validations = [p.step for p in result.loss_points if p.split == "validation"]
        assert validations == [0] + [s for s in plan.eval_steps() if s <= result.steps]
        assert math.isfinite(result.test_loss)


def test_patience_grows_with_the_steps_to_the_best_validation():
    # 4096 examples in batches of 16: S = 256, I = 64, P = 256, G = 256. With a quarter of
    # the steps to the best: a best at step 2000 needs ceil(500) = 500 steps, at 600 the
    # fixed 256 (150 < 256), at 0 the fixed 256.
    plan = plan_training(4096, batch_size=16, **{**RULE, "patience_fraction": 0.25})
    assert plan.patience_at(2000) == 500 and plan.patience_at(600) == 256
    assert plan.patience_at(0) == 256 and plan.patience_at(1025) == 257  # ceil(256.25)
    assert not plan.should_stop(2499, 2000) and plan.should_stop(2500, 2000)
    assert plan.should_stop(856, 600) and not plan.should_stop(855, 600)
    fixed = plan_training(4096, batch_size=16, **RULE)  # the fraction defaults to 0 here
    assert fixed.patience_at(2000) == 256 and fixed.should_stop(2256, 2000)


def test_default_recipe_patience_is_a_quarter_of_the_run():
    config = FinetuneConfig()
    assert config.patience_fraction == 0.25
    plan = config.plan(3200)  # S = 400: the fixed patience is one epoch
    assert plan.patience_at(5800) == 1450 and plan.patience_at(400) == 400


def test_converged_means_the_plateau_rule_ended_the_run():
    # 4096 examples in batches of 16 with a cap of 3000 steps: S = 256, I = 64, P = 256,
    # horizon 3000; the patience at a best step b is max(256, ceil(b / 4)).
    plan = plan_training(4096, batch_size=16, max_steps=3000,
                         **{**RULE, "epochs": 100.0, "patience_fraction": 0.25})
    assert plan.planned_steps == 3000
    assert plan.converged(1000, 1256)        # stopped before the horizon: the rule fired
    assert not plan.converged(1256, 1256)    # best at the last step: still improving
    assert plan.converged(2400, 3000)        # at the horizon, 600 >= 600 steps waited
    assert not plan.converged(2500, 3000)    # at the horizon, 500 < 625: still improving
    assert not plan.converged(2990, 3000)    # a best step before the last is not enough


def _falling_by_polyfit(history, since):
    """The trend check computed independently: numpy's least-squares line in (step, log)."""
    pts = np.array([(s, v) for s, v in history if s >= since], float)
    return len(pts) >= 3 and np.polyfit(pts[:, 0], np.log(pts[:, 1]), 1)[0] < 0


def test_still_falling_is_the_sign_of_the_least_squares_slope():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        steps = np.cumsum(rng.integers(1, 30, n))
        losses = np.exp(rng.normal(1.0, 0.05, n) - rng.uniform(-1e-3, 1e-3) * steps)
        history = list(zip(steps.tolist(), losses.tolist()))
        since = float(steps[int(rng.integers(0, n))])
        assert still_falling(history, since=since) == _falling_by_polyfit(history, since)
    assert not still_falling([(0, 2.0), (5, 1.0), (10, float("nan"))], since=0)


def test_a_run_still_falling_goes_on_past_its_patience_and_stops_at_four():
    # 4096 examples in batches of 16: S = 256, I = 64, P = 256 (no fraction), G = 256.
    plan = plan_training(4096, batch_size=16, **{**RULE, "epochs": 100.0,
                                                "patience_trend": True})
    assert plan.patience_steps == 256
    # best at 1024, then losses 0.1% above it that fall again (too little, each time, for a
    # new best); the window of the last 2P = 512 steps starts after the best
    falling = [(s, 2.0 * (1.001 + 1e-6 * (1600 - s))) for s in range(1088, 1601, 64)]
    history = [(1024, 2.0)] + falling
    assert not plan.should_stop(1216, 1024, history[:4])    # patience not out yet
    assert not plan.should_stop(1600, 1024, history)        # out, but the loss still falls
    rising = [(s, 2.0 * (1.001 + 1e-6 * (s - 1024))) for s in range(1088, 1601, 64)]
    assert plan.should_stop(1600, 1024, [(1024, 2.0)] + rising)  # overfitting: stops
    assert plan.should_stop(1280, 1024, [(1024, 2.0)] + rising[:4])  # ... at P already
    # at TREND_CAP * P = 1024 steps without a better loss the run stops, falling or not
    long = [(s, 2.0 * (1.001 + 1e-6 * (2048 - s))) for s in range(1088, 2049, 64)]
    assert TREND_CAP * 256 == 1024
    assert not plan.should_stop(1984, 1024, [(1024, 2.0)] + long[:-1])
    assert plan.should_stop(2048, 1024, [(1024, 2.0)] + long)
    # without the trend check (or without a history) the patience alone decides
    no_trend = plan_training(4096, batch_size=16, **{**RULE, "epochs": 100.0})
    assert no_trend.should_stop(1600, 1024, history) and plan.should_stop(1600, 1024)


def test_the_default_recipe_checks_the_trend_and_can_be_told_not_to():
    assert FinetuneConfig().patience_trend is True
    assert FinetuneConfig().plan(800).patience_trend is True
    assert FinetuneConfig(patience_trend=False).plan(800).patience_trend is False
    with pytest.raises(ConfigError, match="patience_trend"):
        FinetuneConfig(patience_trend="yes")


def _curve(best_step, end, after):
    """Validations every 64 steps: falling from 2.2 at step 0 to 2.0 at ``best_step``, then
    ``after(step)`` up to ``end``."""
    return ([(s, 2.2 - 0.2 * s / best_step) for s in range(0, best_step + 1, 64)] +
            [(s, after(s)) for s in range(best_step + 64, end + 1, 64)])


def test_a_run_at_its_horizon_still_falling_did_not_converge():
    # 4096 examples in batches of 16, horizon 2048 steps: P = 256, the trend window 512.
    plan = plan_training(4096, batch_size=16, max_steps=2048,
                         **{**RULE, "epochs": 100.0, "patience_trend": True})
    # best at 1728; afterwards 0.1% above it and falling, too little for a new best
    late = _curve(1728, 2048, lambda s: 2.0 * (1.001 + 1e-6 * (2048 - s)))
    assert _falling_by_polyfit(late, 2048 - 512)
    assert not plan.converged(1728, 2048, late)      # 320 >= P waited, but still falling
    assert plan.converged(1728, 2048)                # no history: the patience alone
    rising = _curve(1728, 2048, lambda s: 2.0 * (1 + 5e-4 * (s - 1728)))
    assert not _falling_by_polyfit(rising, 2048 - 512)
    assert plan.converged(1728, 2048, rising)        # overfitting: the rule would stop it
    flat_long = _curve(1024, 2048, lambda s: 2.0 * (1.001 + 1e-6 * (2048 - s)))
    assert plan.converged(1024, 2048, flat_long)     # 4P waited: converged, falling or not
    assert plan.converged(1000, 1500, late)          # stopped before the horizon
    assert not plan.converged(2048, 2048, late)      # best at the last step
