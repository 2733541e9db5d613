"""What a process keeps between runs: the results do not depend on it, the kept model is
never trained, the tokenised rows are the ones a fresh tokenisation gives."""

from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")

from lensllm.finetune import reuse  # noqa: E402
from lensllm.finetune.config import FinetuneConfig  # noqa: E402
from lensllm.finetune.data import load_task_data, tokenize_rows  # noqa: E402
from lensllm.finetune.models import load_model  # noqa: E402
from lensllm.finetune.train import finetune  # noqa: E402

SPLITS = {"validation_size": 16, "test_size": 24}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    rng = random.Random(1)
    lines = [json.dumps({"source": f"add {a} {b}", "target": str(a + b)})
             for a, b in ((rng.randint(1, 999), rng.randint(1, 99)) for _ in range(90))]
    path = tmp_path_factory.mktemp("data") / "add.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return load_task_data(path)


def _run(task, size, method="full"):
    config = FinetuneConfig(method=method, batch_size=4, micro_batch_size=2, min_steps=4,
                            epochs=1, learning_rate=1e-3, max_length=24, lora_r=2)
    return finetune("tiny:llama", task, size=size, seed=3, config=config, **SPLITS)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_runs_from_the_kept_weights_equal_runs_from_a_fresh_load(task, method):
    reuse.clear()
    fresh = [_run(task, size, method) for size in (8, 16)]  # first one loads, second reuses
    reuse.clear()
    second_first = _run(task, 16, method)  # loaded fresh this time
    assert len(reuse.cached_models()) == 1
    assert fresh[1].test_loss == second_first.test_loss
    assert fresh[1].steps == second_first.steps
    assert ([p.loss for p in fresh[1].loss_points]
            == [p.loss for p in second_first.loss_points])
    again = _run(task, 8, method)  # from the kept copy, after a run that trained a copy
    assert again.test_loss == fresh[0].test_loss


def test_the_kept_model_is_never_trained(task):
    reuse.clear()
    _run(task, 16)
    (key,) = reuse.cached_models()
    kept, _ = reuse.fresh_model(key, lambda: pytest.fail("should be kept"))
    loaded, _ = load_model("tiny:llama")
    for (name, a), (_, b) in zip(kept.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_cached_rows_are_the_fresh_rows_and_each_example_is_tokenised_once(task):
    reuse.clear()
    _, tok = load_model("tiny:llama")
    calls = []

    def tokenize(part):
        calls.append(len(part))
        return tokenize_rows(tok, part, "seq2seq", max_length=24, is_encoder_decoder=False)

    first = reuse.token_rows(("k",), task.examples[:10], tokenize)
    nested = reuse.token_rows(("k",), task.examples[:20], tokenize)
    assert calls == [10, 10]
    assert nested == tokenize_rows(tok, task.examples[:20], "seq2seq", max_length=24,
                                   is_encoder_decoder=False)
    assert nested[:10] == first


def test_copy_to_keeps_tied_weights_tied_and_copies_every_tensor():
    model, _ = load_model("tiny:gpt2")  # GPT-2 ties its output layer to the embedding
    copy = reuse.copy_to(model, torch.device("cpu"))
    assert copy.get_output_embeddings().weight is copy.get_input_embeddings().weight
    for (name, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    with torch.no_grad():
        copy.get_input_embeddings().weight.add_(1.0)
    assert not torch.equal(copy.get_input_embeddings().weight,
                           model.get_input_embeddings().weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_copy_to_cuda_equals_the_host_model():
    model, _ = load_model("tiny:llama")
    copy = reuse.copy_to(model, torch.device("cuda"))
    assert {p.device.type for p in copy.parameters()} == {"cuda"}
    for (name, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items()):
        assert torch.equal(a, b.cpu()), name


def test_a_model_over_the_budget_is_used_but_not_kept(monkeypatch):
    reuse.clear()
    monkeypatch.setattr(reuse, "MAX_HOST_BYTES", 1000)
    loaded = load_model("tiny:gpt2")
    model, _ = reuse.fresh_model(("big",), lambda: loaded)
    assert model is loaded[0] and reuse.cached_models() == []


def test_a_full_row_table_starts_again(task, monkeypatch):
    reuse.clear()
    monkeypatch.setattr(reuse, "MAX_ROWS_PER_TABLE", 15)
    seen = []

    def tokenize(part):
        seen.append(len(part))
        return [len(ex["source"]) for ex in part]

    reuse.token_rows(("k",), task.examples[:10], tokenize)
    rows = reuse.token_rows(("k",), task.examples[10:20], tokenize)
    assert seen == [10, 10] and rows == [len(ex["source"]) for ex in task.examples[10:20]]
    assert reuse.token_rows(("k",), task.examples[10:20], tokenize) == rows and seen == [10, 10]
