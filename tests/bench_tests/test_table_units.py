"""A table says which unit its losses are in; tables of different units never mix."""

from __future__ import annotations

import pytest

from lensllm.bench import LOSS_UNITS, check_same_unit, load_table, parse_table
from lensllm.exceptions import TableError

BODY = "config name,0,100,200,size\na,3.0,2.0,1.5,10\nb,3.5,2.5,1.0,20\n"


def test_default_unit_is_per_token_and_the_old_line_is_still_read():
    assert LOSS_UNITS == ("nats_per_token", "nats_per_byte")
    assert load_table("flan").loss_unit == "nats_per_token"
    table = parse_table("# loss_unit: nats_per_byte\n" + BODY, name="t", source="t.csv")
    assert table.loss_unit == "nats_per_byte"
    assert table.losses.tolist() == [[2.0, 1.5], [2.5, 1.0]]
    again = parse_table(table.to_csv(), name="t", source="t.csv")
    assert again.loss_unit == "nats_per_byte"
    assert again.losses.tolist() == table.losses.tolist()


@pytest.mark.parametrize(
    ("head", "match"),
    [
        ("# loss_unit: bits_per_byte\n", r"t.csv: line 1: loss_unit 'bits_per_byte' is not"),
        ("# units: nats\n", r"line 1: unknown metadata"),
        ("# loss_unit: nats_per_byte\n# loss_unit: nats_per_token\n",
         r"line 2: loss_unit 'nats_per_token' contradicts 'nats_per_byte'"),
    ],
)
def test_bad_metadata_names_the_line(head, match):
    with pytest.raises(TableError, match=match):
        parse_table(head + BODY, name="t", source="t.csv")


def test_line_numbers_count_the_metadata_line():
    bad = "# loss_unit: nats_per_byte\n" + BODY.replace("2.5", "x")
    with pytest.raises(TableError, match=r"line 4 \(model 'b'\), column '100'"):
        parse_table(bad, name="t", source="t.csv")


def test_mixed_units_are_refused():
    per_token = parse_table(BODY, name="tok", source="tok.csv")
    per_byte = parse_table("# loss_unit: nats_per_byte\n" + BODY, name="byt", source="b.csv")
    assert check_same_unit([per_byte, per_byte]) == "nats_per_byte"
    with pytest.raises(TableError, match="tables mix loss units: 'tok' holds nats_per_token, "
                                         "'byt' holds nats_per_byte"):
        check_same_unit([per_token, per_byte])


def test_the_unit_in_the_header_round_trips_and_pandas_reads_the_file(tmp_path):
    table = parse_table(BODY.replace("config name", "config name [nats_per_byte]"),
                        name="t", source="t.csv")
    assert table.loss_unit == "nats_per_byte"
    text = table.to_csv()
    assert text.splitlines()[0] == "config name [nats_per_byte],0,100,200,size,family"
    again = parse_table(text, name="t", source="t.csv")
    assert again.loss_unit == "nats_per_byte" and again.losses.tolist() == [[2.0, 1.5],
                                                                            [2.5, 1.0]]
    pd = pytest.importorskip("pandas")
    path = tmp_path / "t.csv"
    path.write_text(text)
    frame = pd.read_csv(path, index_col=0)
    assert frame.index.name == "config name [nats_per_byte]"
    assert frame.loc["b", "200"] == 1.0 and list(frame.index) == ["a", "b"]


@pytest.mark.parametrize(("head", "match"), [
    ("config name [bits_per_byte]", r"line 1, column 1 .*'bits_per_byte' is not one of"),
    ("config name [nats_per_token]",
     r"line 2, column 1 .*'nats_per_token' contradicts 'nats_per_byte'"),
])
def test_bad_unit_in_the_header_names_the_cell(head, match):
    text = BODY.replace("config name", head)
    if "token" in head:
        text = "# loss_unit: nats_per_byte\n" + text
    with pytest.raises(TableError, match=match):
        parse_table(text, name="t", source="t.csv")
