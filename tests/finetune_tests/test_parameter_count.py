"""Parameter counts that load no weights (``[selection] max_params``): meta-device builds
against loaded models and a published count, GGUF headers against the shapes written."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from lensllm.exceptions import ConfigError  # noqa: E402
from lensllm.finetune.gguf_meta import gguf_parameter_count  # noqa: E402
from lensllm.finetune.models import count_parameters, load_model, parameter_count  # noqa: E402


@pytest.mark.parametrize("model_id", ["tiny:gpt2", "tiny:llama-deep", "tiny:opt-wide",
                                      "tiny:t5", "tiny:bart"])
def test_tiny_count_equals_the_loaded_model(model_id):
    assert parameter_count(model_id) == count_parameters(load_model(model_id)[0])


def test_hf_config_only_gives_gpt2_small_published_count(tmp_path):
    """A directory holding only GPT-2 small's config (no weights): 124,439,808 parameters,
    the count of the released `gpt2` checkpoint (embeddings tied to the output layer)."""
    import transformers as tf

    tf.GPT2Config().save_pretrained(tmp_path)
    assert not any(p.suffix in (".safetensors", ".bin") for p in tmp_path.iterdir())
    assert parameter_count(str(tmp_path)) == 124_439_808


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path, tensors: dict[str, tuple[int, ...]], *, version: int = 3) -> None:
    """A GGUF file by the format's specification: a few metadata entries of every kind
    (scalar, string, arrays of numbers and of strings) and tensor records of the given
    shapes (f32, data not written: only the header is read)."""
    meta = [
        (_string("general.architecture"), 8, _string("llama")),
        (_string("llama.block_count"), 4, struct.pack("<I", 2)),
        (_string("llama.rope.freq_base"), 6, struct.pack("<f", 1e4)),
        (_string("general.flag"), 7, b"\x01"),
        (_string("tokenizer.ggml.scores"), 9, struct.pack("<IQ", 6, 3) + b"\0" * 12),
        (_string("tokenizer.ggml.tokens"), 9,
         struct.pack("<IQ", 8, 2) + _string("<s>") + _string("hello")),
    ]
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(meta))
    out += b"".join(k + struct.pack("<I", kind) + v for k, kind, v in meta)
    offset = 0
    for name, shape in tensors.items():
        out += _string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", 0, offset)
        offset += 4
    path.write_bytes(out)


def test_gguf_header_count_is_the_sum_of_tensor_sizes(tmp_path):
    shapes = {"token_embd.weight": (64, 384), "blk.0.attn_q.weight": (64, 64),
              "blk.0.attn_norm.weight": (64,), "output_norm.weight": (64,)}
    path = tmp_path / "m.gguf"
    write_gguf(path, shapes)
    expected = 64 * 384 + 64 * 64 + 64 + 64
    assert gguf_parameter_count(path) == expected
    assert parameter_count(f"gguf:{path}") == expected  # counting needs no `gguf` package


@pytest.mark.parametrize("mangle, match", [
    (lambda b: b"GGML" + b[4:], "not a GGUF file"),
    (lambda b: b[:4] + struct.pack("<I", 1) + b[8:], "version 1 is not supported"),
    (lambda b: b[:-10], "truncated"),
])
def test_bad_gguf_files_are_named(tmp_path, mangle, match):
    path = tmp_path / "bad.gguf"
    write_gguf(path, {"a": (3, 4)})
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(ConfigError, match=f"'{path}'.*{match}"):
        gguf_parameter_count(path)
