"""Issue 11 (outputs half): each case of the issue, one stderr line naming the thing at
fault, exit status 2, no traceback, and no file outside the named outputs created or
changed (checksums of the working folder before and after)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.commands_tests.cli_helpers import assert_one_line_error, run_cli

ROWS = [("m-good", [3.0, 2.6, 2.3, 2.1, 2.0, 1.95]), ("m-b", [3.2, 2.9, 2.7, 2.5, 2.4, 2.35]),
        ("m-c", [3.1, 2.8, 2.5, 2.35, 2.25, 2.2])]
HEADER = "config name,0,200,400,800,1600,3200,size,family"


def _table(path: Path, rows=ROWS, header=HEADER) -> Path:
    lines = [header] + [f"{m},{','.join(map(str, v))},1e8,x" for m, v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link->" + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir" if p.is_dir() else "special"
    return out


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _table(tmp_path / "t.csv")
    return tmp_path


def _refused(capsys, work, argv, words):
    before = _snapshot(work)
    status, out, err = run_cli(capsys, argv)
    assert_one_line_error(status, out, err, words)
    assert _snapshot(work) == before


# --- JSON: always valid, one policy --------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["bench", "--table", "t.csv", "--ratios", "inf", "--json"], ["--ratios", "'inf'", "finite"]),
    (["bench", "--table", "t.csv", "--ratios", "nan", "--json"], ["--ratios", "finite"]),
    (["fit", "--table", "t.csv", "--law", "power", "--max-data", "inf", "--json"],
     ["--max-data", "finite"]),
    (["fit", "--table", "t.csv", "--law", "power", "--max-data", "800", "--target", "inf"],
     ["--target", "finite"]),
])
def test_non_finite_options_are_refused_before_any_output(capsys, work, argv, words):
    _refused(capsys, work, argv, words)


def test_fit_json_is_strict_and_explains_missing_intervals(capsys, work):
    status, out, _ = run_cli(capsys, ["fit", "--table", "t.csv", "--law", "power",
                                      "--max-data", "800", "--json"])
    assert status == 0
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert all(r["lower"] is None and r["upper"] is None for r in data)
    assert all("3 points for 3 parameters" in r["interval_note"] for r in data)


# --- validation of tables -------------------------------------------------------------

@pytest.mark.parametrize("header, rows, words", [
    ("config name,0,200,400,800,1600,size,size,family", None, ["duplicate column", "'size'"]),
    ("config name,0,200,00,800,1600,3200,size,family", None, ["duplicate column", "'00'"]),
    (HEADER, [("a", [3, 2, 1.5, 1.2, 1.1, 1e308]), ("b", [3, 2, 1, 1, 1, 1])],
     ["model 'a'", "'3200'", "loss must be > 0 and <= 1e+06"]),
])
def test_bad_tables(capsys, work, header, rows, words):
    rows = rows or [(m, v) for m, v in ROWS]
    if header.count(",") != HEADER.count(","):
        rows = [(m, v[:5]) for m, v in rows] if "size,size" in header else rows
    _table(work / "bad.csv", rows, header)
    _refused(capsys, work, ["fit", "--table", "bad.csv", "--law", "power", "--max-data", "800"],
             words)


# --- output paths, checked before the computation --------------------------------------

def test_bench_out_under_a_file(capsys, work):
    (work / "file").write_text("x")
    _refused(capsys, work, ["bench", "--table", "t.csv", "--methods", "rectified_fit",
                            "--ratios", "2", "--out", "file/sub"], ["--out", "file"])


def test_fit_quality_out_is_an_existing_file(capsys, work):
    (work / "file").write_text("x")
    _refused(capsys, work, ["fit-quality", "--table", "t.csv", "--out", "file"],
             ["--out", "not a folder"])


def test_ntk_out_under_a_file_and_bad_seed_before_any_model(capsys, work):
    (work / "file").write_text("x")
    (work / "d.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    base = ["ntk", "--model", "tiny:gpt2", "--data", "d.jsonl", "--n", "2"]
    _refused(capsys, work, base + ["--out", "file/x.json"], ["--out", "file"])
    _refused(capsys, work, base + ["--out", "x.json", "--seed", "-1"], ["--seed", "-1"])
    _refused(capsys, work, base + ["--out", "x.json", "--threads", "100000"],
             ["--threads", "CPU count"])


def _store_with_runs(path: Path) -> None:
    from lensllm.store import SQLiteStore

    SQLiteStore(path).close()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "device"])
def test_export_out_refuses_links_and_special_files(capsys, work, kind):
    _store_with_runs(work / "s.sqlite")
    victim = work / "victim.csv"
    victim.write_text("keep")
    if kind == "symlink":
        out = work / "out.csv"
        out.symlink_to(victim)
    elif kind == "fifo":
        out = work / "pipe"
        os.mkfifo(out)
    else:
        out = Path("/dev/null")
    words = ["--out", "symbolic link" if kind == "symlink" else "special file"]
    _refused(capsys, work, ["export", "--store", "s.sqlite", "--out", str(out)], words)
    assert victim.read_text() == "keep"


def test_a_corrupted_store_is_one_line(capsys, work):
    path = work / "s.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [("y" * 500,)] * 200)
    con.commit()
    con.close()
    data = bytearray(path.read_bytes())
    data[4096 + 8: 4096 + 400] = b"\xff" * 392  # a b-tree page's cell pointers
    path.write_bytes(bytes(data))
    status, out, err = run_cli(capsys, ["export", "--store", str(path), "--out", "o.csv"])
    assert_one_line_error(status, out, err, ["store"])
    assert not (work / "o.csv").exists()


# --- escaping -------------------------------------------------------------------------

def test_bench_out_with_math_and_markup_in_names(capsys, work):
    rows = [(r"$\frac{$a", ROWS[0][1]), ("b|<i>*x*", ROWS[1][1]), ("c$x^{$", ROWS[2][1])]
    _table(work / "we$ird [name].csv", rows)
    status, _, err = run_cli(capsys, ["bench", "--table", "we$ird [name].csv", "--methods",
                                      "rectified_fit", "--ratios", "2", "--out", "rep"])
    assert status == 0, err
    summary = (work / "rep" / "summary.md").read_text()
    assert r"we\$ird \[name\]" in summary
    assert "we%24ird%20%5Bname%5D" in summary  # link targets percent-encoded
    assert len(list((work / "rep").glob("*.png"))) >= 2
    assert sorted(p.name for p in (work / "rep").iterdir() if p.name.startswith(".")) == []


def test_demo_config_and_intro_escape_the_out_path(tmp_path):
    from lensllm.commands.demo import demo_config
    from lensllm.finetune.config import read_toml

    work = tmp_path / 'we"ird\\dir <b>'
    models = {"a": tmp_path / 'model "a"'}
    pytest.importorskip("torch")
    path = demo_config(work, models, "adaptive")
    assert read_toml(path)["candidates"][0]["model"] == str(models["a"])


@pytest.mark.parametrize("command", ["select", "validate"])
def test_select_and_validate_report_under_a_file_before_any_run(capsys, work, command):
    """The report folder is checked before the config is run (no store is created)."""
    pytest.importorskip("torch")
    from tests.pipeline_tests.select_tiny import write_select_config

    config = write_select_config(work)
    (work / "file").write_text("x")
    extra = ["--size", "64"] if command == "validate" else []
    _refused(capsys, work, [command, "--config", str(config), "--report", "file/sub", *extra],
             ["--report", "file"])
