"""Every reader of a user's file refuses, in one line naming the file (and the line), a
special file, a byte that is not UTF-8, a lone surrogate and a JSON number beyond float64:
one table of (reader, defect) cases."""

from __future__ import annotations

import json
import os

import pytest

from lensllm.exceptions import ConfigError, InputError, LensLLMError
from lensllm.inputs import check_input_path, check_text, decode_text, loads_strict


def _spectrum(eigen: str = "[2.0, 1.0]") -> str:
    return ('{"format": "lensllm.ntk_spectrum", "format_version": 1,\n"eigenvalues": '
            f'{eigen}, "proj_sq": [1.0, 1.0], "meta": {{"model_id": "m"}}}}')


def _load_data(path):
    from lensllm.finetune.data import load_task_data

    return load_task_data(path)


def _load_table(path):
    from lensllm.bench import load_table

    return load_table(path)


def _load_features(path):
    from lensllm.ntk.files import read_spectra

    return read_spectra(path)


def _load_spectrum(path):
    from lensllm.ntk import NTKSpectrum

    return NTKSpectrum.load(path)


def _load_config(path):
    from lensllm.finetune.config import load_config

    return load_config(path)


_TABLE = "config name,0,200,400,size\na,3,2,1.5,100\nb,3,2.2,1.6,200\n"
_CONFIG = ('[experiment]\nsizes = [8]\n[data]\npath = "d.jsonl"\n[[candidates]]\n'
           'model = "tiny:gpt2"\n')

#: reader -> (file name, good text, text with a bad byte's line, text with a lone surrogate)
READERS = {
    "data jsonl": (_load_data, "d.jsonl", '{"text": "a"}\n{"text": "b"}\n',
                   '{"text": "a"}\n{"text": "\\ud800"}\n'),
    "data csv": (_load_data, "d.csv", "text\na\nb\n", None),
    "table": (_load_table, "t.csv", _TABLE, None),
    "ntk features": (_load_features, "f.json", _spectrum(), None),
    "ntk spectrum": (_load_spectrum, "f.json", _spectrum(), None),
    "config": (_load_config, "c.toml", _CONFIG, _CONFIG.replace("tiny:gpt2", "\\ud800")),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_a_byte_that_is_not_utf8_names_the_file_line_and_byte(tmp_path, reader):
    load, name, good, _ = READERS[reader]
    path = tmp_path / name
    lines = good.splitlines(keepends=True)
    path.write_bytes("".join(lines[:1]).encode() + b"\xff" + "".join(lines[1:]).encode())
    with pytest.raises(LensLLMError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert name in message and "line 2" in message and "0xff" in message, message


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_special_files_are_refused_before_reading(tmp_path, reader, special):
    load = READERS[reader][0]
    if special == "fifo":
        path = tmp_path / READERS[reader][1]
        os.mkfifo(path)  # reading it would block for ever
    elif special == "folder":
        if reader in ("data jsonl", "data csv", "ntk features"):
            pytest.skip("a folder is a valid input here (saved dataset, features folder)")
        path = tmp_path
    else:
        path = special
    with pytest.raises(LensLLMError, match="special file|folder") as info:
        load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("reader", [r for r in READERS if READERS[r][3]])
def test_a_lone_surrogate_is_refused_on_load(tmp_path, reader):
    load, name, _, bad = READERS[reader]
    path = tmp_path / name
    path.write_text(bad)
    (tmp_path / "d.jsonl").exists() or (tmp_path / "d.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(LensLLMError, match="surrogate") as info:
        load(path)
    assert name in str(info.value)


@pytest.mark.parametrize("number", ["1e400", "-1e309", "1" + "0" * 400, "NaN", "Infinity",
                                    "-Infinity"])
@pytest.mark.parametrize("reader", ["ntk features", "ntk spectrum"])
def test_json_numbers_beyond_float64_are_one_line(tmp_path, reader, number):
    load, name = READERS[reader][:2]
    path = tmp_path / name
    path.write_text(_spectrum(f"[{number}, 1.0]"))
    with pytest.raises(InputError) as info:
        load(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_a_data_line_with_an_overflowing_number_names_its_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b", "w": 1e999}\n')
    with pytest.raises(InputError, match=r"d.jsonl, line 2: the number 1e999 overflows"):
        _load_data(path)


@pytest.mark.parametrize(("text", "ok"), [("1.5", True), ("-2", True), ("1e308", True),
                                          ("1e309", False), ("9" * 309, False),
                                          ("[1, NaN]", False), ('{"a": [1e-400]}', True)])
def test_loads_strict_accepts_exactly_the_finite_float64_numbers(text, ok):
    if ok:
        assert json.dumps(loads_strict(text, "x")) == json.dumps(json.loads(text))
    else:
        with pytest.raises(InputError, match="^x: "):
            loads_strict(text, "x")


def test_decode_and_check_text_say_where():
    assert decode_text("\ufeffab".encode(), "f") == "ab"  # a BOM is dropped
    with pytest.raises(ConfigError, match=r"f, line 3: byte 0xc3 .*byte 2 of the line"):
        decode_text(b"a\nb\nc\xc3", "f", error=ConfigError)
    with pytest.raises(InputError, match=r"r: field 'm'\[1\] character 2"):
        check_text({"m": ["ok", "a\udc80"]}, "r")
    with pytest.raises(InputError, match="does not exist"):
        check_input_path("/no/such/file", "thing")
