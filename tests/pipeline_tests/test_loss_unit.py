"""`lensllm select` ranks in nats per byte when the candidates' tokenizers differ."""

from __future__ import annotations

import pytest
from select_tiny import write_select_config

from lensllm.exceptions import InputError
from lensllm.finetune.config import Candidate
from lensllm.pipeline.stages import CandidateRecord, choose_loss_unit
from lensllm.store import RunResult


def _zero_shot(loss, scored, n_bytes, truncated=0):
    result = RunResult(test_loss=loss, steps=0, train_tokens=0, eval_tokens=1, flops=1.0,
                       wall_time=0.1, learning_rate=1e-3, early_stop_step=0, n_params=1,
                       n_trainable=0, base_params=1, family="x", test_scored_tokens=scored,
                       test_bytes=n_bytes, test_truncated=truncated)
    return CandidateRecord(Candidate("m", "x"), loss, 1.0, zero_shot_result=result)


def test_auto_is_per_byte_exactly_when_scored_token_counts_differ():
    same = [_zero_shot(2.0, 100, 80), _zero_shot(3.0, 100, 80)]
    differ = [_zero_shot(2.0, 100, 80), _zero_shot(3.0, 40, 80)]
    assert choose_loss_unit("auto", same) == "nats_per_token"
    assert choose_loss_unit("auto", differ) == "nats_per_byte"
    assert choose_loss_unit("token", differ) == "nats_per_token"
    assert choose_loss_unit("byte", same) == "nats_per_byte"
    # Per token, the first model looks better (2.0 < 3.0); per byte it is worse:
    # 2.0 * 100 / 80 = 2.5 nats per byte against 3.0 * 40 / 80 = 1.5.
    assert [c.zero_shot_result.loss("nats_per_byte") for c in differ] == [2.5, 1.5]


def test_per_byte_without_bytes_or_with_truncation_is_refused():
    old = _zero_shot(2.0, 100, None)
    with pytest.raises(InputError, match="tokenizers differ.*has no byte count"):
        choose_loss_unit("auto", [old, _zero_shot(3.0, 40, 80)])
    with pytest.raises(InputError, match="truncated the scored text of 3 test examples"):
        choose_loss_unit("byte", [_zero_shot(2.0, 100, 80, truncated=3)])


def test_same_tokenizer_keeps_nats_per_token(tiny_select):
    _, outcome = tiny_select
    assert outcome.view.loss_unit == "nats_per_token"


def test_different_tokenizers_rank_per_byte(tmp_path, bpe_gpt2_dir):
    from lensllm.pipeline import load_select_config, run_select
    from lensllm.report.select_report import outcome_record
    from lensllm.store import SQLiteStore

    bpe_dir, _ = bpe_gpt2_dir
    path = write_select_config(tmp_path, candidates=("tiny:gpt2", str(bpe_dir)),
                               extra="enabled = false")
    # max_length 40 cuts some byte-level test texts: per byte is then refused, by name.
    with pytest.raises(InputError, match="zero-shot run of tiny:gpt2 truncated the scored"):
        run_select(load_select_config(path), threads=1)
    path.write_text(path.read_text().replace("max_length = 40", "max_length = 128"))
    outcome = run_select(load_select_config(path), threads=1)
    view = outcome.view
    assert view.loss_unit == "nats_per_byte"
    assert outcome_record(outcome)["loss_unit"] == "nats_per_byte"
    store = SQLiteStore(tmp_path / "select.sqlite")
    runs = {(r.key.model, r.key.size): r.result for r in store.get_runs(status="finished")}
    store.close()
    assert runs[("tiny:gpt2", 0)].test_bytes == runs[(str(bpe_dir), 0)].test_bytes
    for i, model in enumerate(view.models):
        zs = runs[(model, 0)]
        assert view.zero_shot[i] == pytest.approx(
            zs.test_loss * zs.test_scored_tokens / zs.test_bytes, rel=1e-12)
        for size in view.sizes[view.paid[i]]:
            r = runs[(model, int(size))]
            assert view.mean_loss(i, int(size)) == pytest.approx(
                r.test_loss * r.test_scored_tokens / r.test_bytes, rel=1e-12)
