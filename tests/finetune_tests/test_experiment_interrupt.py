"""An interrupt at any point of :func:`run_experiment`'s loop gives back every run the
process holds, including one it claimed whose record had not come back yet (a stop signal
landing in ``claim_run`` after its commit: seen once in CI as a run left ``running``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from lensllm.finetune.config import load_config  # noqa: E402
from lensllm.finetune.experiment import prepare_experiment, run_experiment  # noqa: E402
from lensllm.store import InMemoryStore  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "tiny_addition.jsonl"


class _InterruptAfterClaim(InMemoryStore):
    """Claims as the store does (the row is committed ``running`` with this owner), then
    raises as a signal handler would before the record is returned."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.claims = after, 0

    def claim_run(self, run_ids, owner, *, lease_s=60.0):
        record = super().claim_run(run_ids, owner, lease_s=lease_s)
        self.claims += 1
        if record is not None and self.claims == self.after:
            raise KeyboardInterrupt
        return record


def _prepared(tmp_path: Path):
    path = tmp_path / "exp.toml"
    path.write_text(f"""[experiment]
sizes = [16]
seeds = [0]
threads = 1
[data]
path = "{DATA}"
validation_size = 32
test_size = 32
[[candidates]]
model = "tiny:gpt2"
[finetune]
learning_rate = 3e-3
batch_size = 16
epochs = 1
min_steps = 1
max_length = 16
""")
    return prepare_experiment(load_config(path), store_path=tmp_path / "s.sqlite")


@pytest.mark.parametrize("after", [1, 2], ids=["first claim", "claim after a finished run"])
def test_a_run_claimed_when_the_interrupt_lands_is_given_back(tmp_path, after):
    prepared = _prepared(tmp_path)  # two runs: zero-shot and 16 examples
    store = _InterruptAfterClaim(after)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(prepared, store, owner="here:1:ab")
    runs = store.get_runs()
    assert len(runs) == 2
    assert [r for r in runs if r.status == "running" or r.owner is not None
            and r.status == "pending"] == []
    assert sum(r.status == "finished" for r in runs) == after - 1  # the finished run is kept
    assert sum(r.status == "pending" for r in runs) == 3 - after
