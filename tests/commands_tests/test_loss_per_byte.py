"""Losses comparable across tokenizers: two tokenizers, the same text, the same bytes.

A tiny GPT-2 with the byte-level tokenizer and a tiny GPT-2 with a BPE tokenizer trained
here (``tokenizers``, a few hundred lines) fine-tune on the same text through
``lensllm run``; the store and the per-byte export must divide each model's summed test
loss by the same byte count, counted here from the text alone.
"""

from __future__ import annotations

import json
import random

import pytest
import transformers
from cli_helpers import assert_one_line_error, run_cli

from lensllm.bench import load_table
from lensllm.finetune.data import split_indices
from lensllm.store import SQLiteStore

WORDS = ["réseau", "año", "naïve", "straße", "cost", "loss", "byte", "token", "€", "data"]
TEST_SIZE, VALIDATION_SIZE = 16, 8


def _lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]


@pytest.fixture(scope="module")
def bpe_model_dir(bpe_gpt2_dir):
    return bpe_gpt2_dir


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, bpe_model_dir):
    root = tmp_path_factory.mktemp("perbyte")
    texts = _lines(80, seed=2)
    (root / "words.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts),
                                      encoding="utf-8")
    (root / "exp.toml").write_text(f"""
[experiment]
sizes = [16, 32]
seeds = [0]
store = "runs.sqlite"
[data]
path = "words.jsonl"
validation_size = {VALIDATION_SIZE}
test_size = {TEST_SIZE}
[[candidates]]
model = "tiny:gpt2"
[[candidates]]
model = "{bpe_model_dir[0]}"
[finetune]
learning_rate = 3e-3
batch_size = 8
epochs = 2
max_length = 96
""", encoding="utf-8")
    return root, texts


def test_per_byte_losses_divide_by_the_same_independently_counted_bytes(
        experiment, bpe_model_dir, capsys):
    root, texts = experiment
    status, _, err = run_cli(capsys, ["run", "--config", str(root / "exp.toml")])
    assert status == 0, err
    # The bytes scored on the test split, counted from the text alone.
    test = split_indices(len(texts), n_validation=VALIDATION_SIZE, n_test=TEST_SIZE).test
    test_bytes = sum(len(texts[i].encode("utf-8")) for i in test)
    assert test_bytes > sum(len(texts[i]) for i in test)  # non-ASCII text: bytes != chars
    _, bpe = bpe_model_dir
    byt5 = transformers.ByT5Tokenizer()
    # Scored tokens: every text token plus the final EOS, for each tokenizer.
    scored = {
        "tiny:gpt2": sum(len(byt5(texts[i], add_special_tokens=False)["input_ids"]) + 1
                         for i in test),
        str(bpe_model_dir[0]): sum(len(bpe(texts[i], add_special_tokens=False)["input_ids"])
                                   + 1 for i in test),
    }
    assert scored["tiny:gpt2"] != scored[str(bpe_model_dir[0])]
    store = SQLiteStore(root / "runs.sqlite")
    runs = store.get_runs(status="finished")
    store.close()
    assert len(runs) == 2 * 3  # two models x (zero-shot, 16, 32)
    per_byte = {}
    for run in runs:
        result = run.result
        assert result.test_bytes == test_bytes
        assert result.test_scored_tokens == scored[run.key.model]
        assert result.test_truncated == 0
        per_byte[(run.key.model, run.key.size)] = (
            result.test_loss * scored[run.key.model] / test_bytes)

    out = root / "per_byte.csv"
    status, _, err = run_cli(capsys, ["export", "--store", str(root / "runs.sqlite"),
                                      "--unit", "byte", "--out", str(out)])
    assert status == 0, err
    assert out.read_text().startswith("config name [nats_per_byte],0,")
    table = load_table(out)
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(out, index_col=0)  # a plain CSV: no options needed
    assert list(frame.index) == list(table.models)
    assert frame["0"].tolist() == pytest.approx(table.zero_shot.tolist(), rel=1e-12)
    assert table.loss_unit == "nats_per_byte"
    for i, model in enumerate(table.models):
        assert table.zero_shot[i] == pytest.approx(per_byte[(model, 0)], rel=1e-12)
        for j, size in enumerate(table.sizes):
            assert table.losses[i, j] == pytest.approx(per_byte[(model, int(size))], rel=1e-12)

    # A per-token table of the same runs cannot be benched together with it.
    per_token = root / "per_token.csv"
    assert run_cli(capsys, ["export", "--store", str(root / "runs.sqlite"),
                            "--out", str(per_token)])[0] == 0
    assert load_table(per_token).loss_unit == "nats_per_token"
    status, out_text, err = run_cli(capsys, ["bench", "--table", str(out), str(per_token),
                                             "--methods", "zero_shot"])
    assert_one_line_error(status, out_text, err, ["mix loss units", "nats_per_byte",
                                                  "nats_per_token"])


def test_truncated_scored_text_is_refused_per_byte(experiment, capsys):
    root, _ = experiment
    config = (root / "exp.toml").read_text().replace("max_length = 96", "max_length = 12")
    config = config.replace('store = "runs.sqlite"', 'store = "short.sqlite"')
    config = config.replace("sizes = [16, 32]", "sizes = [16]")
    (root / "short.toml").write_text(config, encoding="utf-8")
    assert run_cli(capsys, ["run", "--config", str(root / "short.toml")])[0] == 0
    status, out, err = run_cli(capsys, ["export", "--store", str(root / "short.sqlite"),
                                        "--unit", "byte", "--out", str(root / "short.csv")])
    assert_one_line_error(status, out, err, ["test examples had scored text cut",
                                             "max_length"])
    assert not (root / "short.csv").exists()
