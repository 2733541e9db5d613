"""Converged, data-limited points: the plateau recipe converges where the old step-floor
recipe did not, and a run forced to stop early is caught in ``--json`` and the report."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

#: The recipe before the plateau rule: 3 planned epochs with a 50-step floor, a cosine
#: schedule ending on the planned step, the whole validation split every quarter epoch.
OLD = dict(epochs=3.0, min_steps=50, lr_schedule="cosine", warmup_ratio=0.05,
           eval_every_epochs=0.25, validation_share=0.0, min_improvement=0.0)
COMMON = dict(learning_rate=3e-3, batch_size=16, max_length=32, eval_batch_size=64)


def _validation(result):
    return [(p.step, p.loss) for p in result.loss_points if p.split == "validation"]


@pytest.mark.parametrize("size", [32, 128])
def test_old_recipe_ends_still_improving_the_plateau_recipe_converges(addition_task, size):
    from lensllm.finetune.config import FinetuneConfig
    from lensllm.finetune.train import finetune

    kwargs = dict(size=size, seed=0, validation_size=64, test_size=64)
    old = finetune("tiny:gpt2", addition_task, config=FinetuneConfig(**COMMON, **OLD), **kwargs)
    val = _validation(old)
    # the old run's best validation is its last one: the point measured the step floor
    assert old.early_stop_step == old.steps == max(50, 3 * size // 16)
    assert min(val, key=lambda p: p[1])[0] == old.steps

    new_config = FinetuneConfig(**COMMON)
    new = finetune("tiny:gpt2", addition_task, config=new_config, **kwargs)
    val = _validation(new)
    plan = new_config.plan(size)
    assert new.early_stop_step < new.steps < plan.planned_steps  # stopped on a plateau
    # read from the curve: nothing after the kept step beat it by min_improvement, and
    # the run waited its patience after it (at least a quarter of the steps to the best)
    best = dict(val)[new.early_stop_step]
    assert all(loss >= best * (1 - new_config.min_improvement)
               for step, loss in val if step > new.early_stop_step)
    assert new.steps - new.early_stop_step >= max(plan.patience_steps,
                                                  math.ceil(new.early_stop_step / 4))
    assert new.test_loss < old.test_loss  # the data-limited loss is lower


def _select_config(tmp, max_steps: int) -> str:
    return f"""[experiment]
sizes = [32, 64, 128]
store = "conv.sqlite"
threads = 1
[data]
path = "task.jsonl"
validation_size = 32
test_size = 32
[[candidates]]
model = "tiny:gpt2"
[[candidates]]
model = "tiny:llama"
[finetune]
learning_rate = 3e-3
batch_size = 16
max_length = 40
max_steps = {max_steps}
[selection]
method = "vanilla_fit"
target = 1024
max_data = 128
[ntk]
enabled = false
"""


def test_unconverged_runs_are_counted_in_json_and_report(tmp_path, capsys):
    from lensllm.cli import main
    from lensllm.zoo import write_task

    write_task(tmp_path / "task.jsonl", 128 + 64, seed=0)
    config = tmp_path / "conv.toml"
    config.write_text(_select_config(tmp_path, max_steps=3))
    assert main(["select", "--config", str(config), "--json",
                 "--report", str(tmp_path / "rep")]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    # independently, from the store's own rows: every run hit its 3-step horizon, so one
    # converged only when its kept step came before its last and it had gone its patience
    # without a better validation by then: P = max(S epochs of 1, I) steps, S = ceil(D / 16),
    # I = min(3, max(ceil(S / 2), 5)) = 3, at least a quarter of the steps to the best
    with sqlite3.connect(tmp_path / "conv.sqlite") as db:
        rows = db.execute("SELECT model, size, steps, early_stop_step FROM runs "
                          "WHERE status = 'finished' AND size > 0").fetchall()
    assert rows and all(steps == 3 for _, _, steps, _ in rows)

    def waited(size, steps, best):
        patience = max(math.ceil(size / 16), 3, math.ceil(best / 4))
        return best < steps and steps - best >= patience

    stuck = sorted((m, s) for m, s, steps, best in rows if not waited(s, steps, best))
    conv = out["convergence"]
    assert conv["points_used"] == len(rows)
    assert conv["converged"] == len(rows) - len(stuck)
    assert sorted((u["model"], u["size"]) for u in conv["unconverged"]) == stuck
    assert stuck and all(u["horizon_hit"] for u in conv["unconverged"])
    assert "NOT converged" in captured.err  # the warning while selecting
    page = (tmp_path / "rep" / "index.html").read_text()
    assert f"{len(rows) - len(stuck)} of {len(rows)} runs used converged" in page
    assert "NOT converged" in page

    # the runs at 128 as the truth at D* (budget 64): the truth check names the same
    # unconverged runs as the rule computed from the store's rows above
    truth_config = (_select_config(tmp_path, max_steps=3)
                    .replace("sizes = [32, 64, 128]", "sizes = [16, 32, 64, 128]")
                    .replace("target = 1024", "target = 128")
                    .replace("max_data = 128", "max_data = 64"))
    config.write_text(truth_config)
    assert main(["select", "--config", str(config), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    late = sorted(m for m, s in stuck if s == 128)
    assert late  # a 3-step horizon leaves some 128-example run unconverged
    assert sorted(out["truth"]["unconverged"]) == late
    assert {r["model"]: r["true_loss_converged"] for r in out["ranking"]} == {
        m: m not in late for m in ("tiny:gpt2", "tiny:llama")}
    assert main(["select", "--config", str(config), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "NOT converged at D=128" in text and all(m in text for m in late)

    # the same experiment with the default horizon: every point converges
    config.write_text(_select_config(tmp_path, max_steps=0).replace('"conv.sqlite"',
                                                                    '"conv2.sqlite"'))
    assert main(["select", "--config", str(config), "--json"]) == 0
    captured = capsys.readouterr()
    conv = json.loads(captured.out)["convergence"]
    assert conv["converged"] == conv["points_used"] > 0 and conv["unconverged"] == []
    assert "NOT converged" not in captured.err


def test_the_convergence_check_replays_the_trend_for_runs_at_their_horizon():
    from types import SimpleNamespace

    from lensllm.finetune.config import FinetuneConfig
    from lensllm.pipeline.convergence import convergence

    recipe = FinetuneConfig(batch_size=16, epochs=10.0)  # 4096 examples: 2560-step horizon
    plan = recipe.plan(4096)
    patience = plan.patience_at(2048)  # max(256 steps, a quarter of 2048) = 512
    assert plan.planned_steps == 2560 and patience == 512
    before = [(s, 2.2 - 0.2 * s / 2048) for s in range(0, 2049, 128)]  # falling to 2.0
    falling = before + [(s, 2.0 * (1.001 + 1e-6 * (2560 - s))) for s in range(2176, 2561, 128)]
    rising = before + [(s, 2.0 * (1 + 2e-4 * (s - 2048))) for s in range(2176, 2561, 128)]
    runs = {1: (2048, 2560, falling), 2: (2048, 2560, rising), 3: (2048, 2400, falling)}
    records = [SimpleNamespace(status="finished", run_id=i, key=SimpleNamespace(seed=i),
                               result=SimpleNamespace(early_stop_step=b, steps=s))
               for i, (b, s, _) in runs.items()]
    view = SimpleNamespace(
        recipe=recipe, models=["m"], paid_runs=frozenset({("m", 4096)}),
        records=lambda model, size: records, validation_losses=lambda run_id: runs[run_id][2])
    points = {p.seed: p for p in convergence(view)}
    assert not points[1].converged and points[1].still_falling and points[1].horizon_hit
    assert points[2].converged and not points[2].still_falling
    assert points[3].converged and not points[3].horizon_hit  # stopped before the horizon


def test_a_loss_shrinking_towards_zero_never_plateaus_and_the_text_says_so(tmp_path):
    """A task learnt almost perfectly (the parity of a number written in words): the
    validation loss falls by a few percent every validation towards 0, so the relative
    plateau rule never ends the run; the horizon does, the run is reported unconverged,
    and the advice says why rather than asking for a setting that would not help."""
    import random

    from lensllm.finetune.config import FinetuneConfig
    from lensllm.finetune.data import load_task_data
    from lensllm.finetune.train import finetune
    from lensllm.pipeline.convergence import PointConvergence, convergence_text

    words = "zero one two three four five six seven eight nine".split()
    rng = random.Random(0)
    numbers = [rng.randint(0, 99999) for _ in range(400)]
    path = tmp_path / "parity.jsonl"
    path.write_text("".join(json.dumps({"prompt": " ".join(words[int(c)] for c in str(n))
                                        + " ->", "completion": " even" if n % 2 == 0
                                        else " odd"}) + "\n" for n in numbers))
    config = FinetuneConfig(learning_rate=3e-3, batch_size=16, max_length=40)
    result = finetune("tiny:llama", load_task_data(path), size=32, seed=0, config=config,
                      validation_size=64, test_size=64)
    plan = config.plan(32)
    validation = _validation(result)
    assert result.steps == plan.planned_steps  # the horizon ended it ...
    assert validation[-1][1] < 0.05 * validation[0][1]  # ... with the task nearly learnt
    assert validation[-1][1] < validation[-2][1] * (1 - config.min_improvement)  # still falling
    assert not plan.converged(result.early_stop_step, result.steps, validation)
    point = PointConvergence("tiny:llama", 32, 0, result.early_stop_step, result.steps,
                             plan.planned_steps, plan.patience_at(result.early_stop_step))
    text = convergence_text([point])
    assert "NOT converged" in text and "never plateaus" in text
    assert "lower `min_improvement`" not in text
