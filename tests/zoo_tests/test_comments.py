"""The large natural-language downstream task: standard-library code lines and their comments."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from lensllm.zoo import write_task
from lensllm.zoo.comments import comment_pairs, make_comment_task


@pytest.fixture(scope="module")
def pairs():
    return comment_pairs()


def test_every_example_is_a_comment_directly_above_its_code_line(pairs):
    # read independently: every stdlib line that equals the code line, and the comment
    # block right above it; the sentence must open that block
    lib = Path(sysconfig.get_paths()["stdlib"])
    sample = pairs[:: max(1, len(pairs) // 80)]
    wanted = {code for code, _ in sample}
    blocks: dict[str, list[str]] = {}
    for path in lib.rglob("*.py"):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for j, line in enumerate(lines):
            if line.strip() in wanted:
                i = j
                while i > 0 and lines[i - 1].strip().startswith("#"):
                    i -= 1
                text = " ".join(x.strip().lstrip("#").strip() for x in lines[i:j])
                blocks.setdefault(line.strip(), []).append(" ".join(text.split()))
    for code, sentence in sample:
        assert 15 <= len(sentence) <= 140 and 6 <= len(code) <= 100
        assert any(b.startswith(sentence) for b in blocks.get(code, [])), (code, sentence)


def test_enough_distinct_examples_for_a_large_target(pairs):
    # the zoo benchmark's comments task: D* = 3200 + 64 validation + 128 test
    assert len(pairs) >= 3392
    assert len({s for _, s in pairs}) == len(pairs)


def test_examples_are_nested_seeded_and_written(tmp_path):
    small, large = make_comment_task(40, seed=0), make_comment_task(400, seed=0)
    assert large[:40] == small
    assert make_comment_task(40, seed=1) != small
    assert all(ex["source"].endswith("\n#") and ex["target"].startswith(" ") for ex in large)
    path = write_task(tmp_path / "c.jsonl", 25, seed=3, task="comments")
    assert [json.loads(x) for x in path.read_text().splitlines()] == make_comment_task(25,
                                                                                      seed=3)
    with pytest.raises(ValueError, match="comments task has"):
        make_comment_task(10**7)
