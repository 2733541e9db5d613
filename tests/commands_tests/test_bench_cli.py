"""`lensllm bench` on the command line: bad input gives one stderr line naming the row and
column (or the option) at fault and exit status 2; the numeric core runs without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cli_helpers import assert_one_line_error, run_cli

HEAD = "config name,0,200,400,800,1600,size,family"
GOOD_A = "org/alpha,3.0,2.5,2.2,2.0,1.9,1000000,x"
GOOD_B = "org/beta,3.1,2.6,2.3,2.1,2.0,2000000,y"

# name -> (file text, words the one error line must contain)
BAD_TABLES = {
    "nan": (f"{HEAD}\n{GOOD_A}\norg/beta,3.1,2.6,nan,2.1,2.0,2000000,y\n",
            ["line 3", "org/beta", "column '400'", "not finite"]),
    "zero_loss": (f"{HEAD}\n{GOOD_A}\norg/beta,3.1,2.6,2.3,0,2.0,2000000,y\n",
                  ["line 3", "org/beta", "column '800'", "must be > 0"]),
    "negative_loss": (f"{HEAD}\norg/alpha,-3.0,2.5,2.2,2.0,1.9,1000000,x\n{GOOD_B}\n",
                      ["line 2", "org/alpha", "column '0'", "must be > 0"]),
    "non_numeric": (f"{HEAD}\n{GOOD_A}\norg/beta,3.1,2.6,2.3,2.1,n/a,2000000,y\n",
                    ["line 3", "org/beta", "column '1600'", "not a number"]),
    "no_size_columns": ("config name,size,family\norg/alpha,1000000,x\norg/beta,2000000,y\n",
                        ["line 1", "no size columns"]),
    "single_row": (f"{HEAD}\n{GOOD_A}\n", ["line 2", "org/alpha", "at least 2"]),
    "empty_file": ("", ["empty"]),
    "ragged_row": (f"{HEAD}\n{GOOD_A}\norg/beta,3.1,2.6,2.3,2.1,2.0,2000000\n",
                   ["line 3", "org/beta", "ragged", "column 'family'"]),
    "duplicated_model": (f"{HEAD}\n{GOOD_A}\n{GOOD_A}\n",
                         ["line 3", "column 'config name'", "duplicated", "org/alpha",
                          "line 2"]),
    "non_increasing_sizes": ("config name,0,400,200,size\na,3,2,1.9,10\nb,3,2,1.9,20\n",
                             ["line 1", "column '200'", "increasing"]),
    "bad_param_count": (f"{HEAD}\n{GOOD_A}\norg/beta,3.1,2.6,2.3,2.1,2.0,-5,y\n",
                        ["line 3", "org/beta", "column 'size'", "> 0"]),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_table_gives_one_line_and_status_2(case, tmp_path, capsys):
    text, words = BAD_TABLES[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    status, out, err = run_cli(capsys, ["bench", "--table", str(path), "--json"])
    assert_one_line_error(status, out, err, [f"{case}.csv"] + words)


@pytest.mark.parametrize("argv, words", [
    (["--ratios", "8,x"], ["--ratios", "'x'"]),
    (["--ratios", "0.5"], ["--ratios", ">= 1"]),
    (["--methods", "ats,nope"], ["--methods", "'nope'"]),
    (["--target", "1000"], ["1000", "no column"]),
    (["--target", "-3"], ["--target", "> 0"]),
    (["--table", "no_such_table"], ["no_such_table", "bundled"]),
])
def test_bad_options_give_one_line_and_status_2(argv, words, capsys):
    base = ["bench", "--methods", "ats"] if "--methods" not in argv else ["bench"]
    if "--table" not in argv:
        base += ["--table", "gigaword"]
    status, out, err = run_cli(capsys, base + argv)
    assert_one_line_error(status, out, err, words)


def test_bad_table_in_a_real_process_exits_2_without_traceback(tmp_path):
    path = tmp_path / "nan.csv"
    path.write_text(BAD_TABLES["nan"][0])
    proc = subprocess.run([sys.executable, "-m", "lensllm.cli", "bench", "--table", str(path)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_json_records_have_the_documented_fields(capsys):
    status, out, _ = run_cli(capsys, ["bench", "--table", "flan", "--methods",
                                      "ats,rectified_fit", "--ratios", "8,512", "--json"])
    assert status == 0
    records = json.loads(out)
    assert [(r["budget_ratio"], r["method"]) for r in records] == [
        (8, "ats"), (8, "rectified_fit"), (512, "ats"), (512, "rectified_fit")]
    for r in records:
        assert {"dataset", "budget_ratio", "max_data_num", "method", "pearcorr", "relacc",
                "rmse", "cost_fraction", "selected"} <= set(r)
        assert r["dataset"] == "flan" and 0 < r["cost_fraction"] < 1


NO_TORCH = textwrap.dedent("""
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test ({name})")
            return None

    sys.meta_path.insert(0, BlockTorch())
    import lensllm.laws, lensllm.bench, lensllm.selection, lensllm.cli
    status = lensllm.cli.main(["bench", "--table", "gigaword", "--methods", "ats", "--json"])
    assert status == 0, status
    assert "torch" not in sys.modules
    print("NO_TORCH_OK")
""")


def test_numeric_core_and_bench_run_with_torch_blocked():
    proc = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, check=False,
                          timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("NO_TORCH_OK")
    assert json.loads(proc.stdout.rsplit("NO_TORCH_OK", 1)[0])[0]["method"] == "ats"


def test_importing_the_numeric_core_does_not_import_torch():
    code = ("import sys, lensllm.laws, lensllm.bench, lensllm.selection, lensllm.cli, "
            "lensllm.report.bench_report; "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_help_lists_every_registered_method_with_its_summary(capsys):
    from lensllm.selection import REGISTRY

    status, out, _ = run_cli(capsys, ["bench", "--help"])
    assert status == 0
    section = out[out.index("methods (--methods"):]
    for name, cls in REGISTRY.items():
        assert f"  {name} " in section and cls.summary in section
