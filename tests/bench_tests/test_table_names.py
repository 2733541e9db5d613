"""Model and family names in a table are plain text: a NUL, a newline inside quotes, an
escape sequence or another control character is refused naming the line and column."""

from __future__ import annotations

import pytest

from lensllm.bench import load_table
from lensllm.exceptions import TableError


@pytest.mark.parametrize(("name", "family", "column"), [
    ("a\x00b", "f", "config name"), ('"a\nb"', "f", "config name"),
    ("a\x1b[31mred", "f", "config name"), ("a\x7f", "f", "config name"),
    ("a", "fam\x00", "family"), ("a", "\x07", "family"),
])
def test_control_characters_in_names_are_refused(tmp_path, name, family, column):
    path = tmp_path / "t.csv"
    path.write_bytes(f"config name,0,200,400,size,family\n{name},3,2,1.5,100,{family}\n"
                     "b,3,2.2,1.6,200,g\n".encode())
    with pytest.raises(TableError, match=f"line 2.*column '{column}'.*control character"):
        load_table(path)


def test_plain_unicode_names_load(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("config name,0,200,400,size,family\nmodèle-α,3,2,1.5,100,famille\n"
                    "b,3,2.2,1.6,200,g\n", encoding="utf-8")
    assert load_table(path).models == ("modèle-α", "b")
