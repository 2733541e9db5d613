"""Failed candidates are reported with the reason; the others are still ranked."""

from __future__ import annotations

import pytest
from select_tiny import write_select_config

from lensllm.cli import main


def test_failed_candidates_reported_and_others_ranked(tmp_path, capsys):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "gpt2", "n_embd": 32, "n_layer": 1, '
                                        '"n_head": 2, "vocab_size": 300}')  # no weights
    path = write_select_config(
        tmp_path, candidates=("tiny:gpt2", "tiny:nosuch", str(broken), "tiny:opt"))
    status = main(["select", "--config", str(path), "--quiet"])
    out = capsys.readouterr()
    assert status == 1
    assert "failed" in out.err
    lines = out.out.splitlines()
    failed = [ln for ln in lines if " failed " in f" {ln} "]
    assert any("nosuch" in ln for ln in failed)
    assert any("broken-model" in ln for ln in failed)
    ranked = [ln for ln in lines if ln[:1].isdigit()]
    assert len(ranked) == 2 and {"tiny:gpt2", "tiny:opt"} <= {ln.split()[1] for ln in ranked}


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    path = write_select_config(tmp_path, extra="typo_key = 1\n")
    assert main(["select", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ntk.typo_key" in err[0]


@pytest.mark.parametrize("table, message", [
    ('[selection]\nmethod = "nope"', "selection.method"),
    ('[selection]\nmax_data = 1', "below the smallest size"),
])
def test_bad_selection_values(tmp_path, table, message):
    from lensllm.exceptions import ConfigError
    from lensllm.pipeline import load_select_config

    path = write_select_config(tmp_path)
    text = path.read_text()
    head, _, rest = text.partition("[selection]")
    rest = rest.split("[ntk]", 1)[1]
    path.write_text(head + table + "\n[ntk]" + rest)
    with pytest.raises(ConfigError, match=message):
        load_select_config(path)


def test_method_not_applicable_is_one_line_exit_2_before_any_run(tmp_path, capsys):
    """rectified_fit on a budget of 2 sizes (3 points with the zero-shot loss) cannot fit
    its 4 parameters: one line naming the method and the reason, exit 2, no run paid."""
    import sqlite3

    path = write_select_config(tmp_path, sizes=(8, 16))
    assert main(["select", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "'rectified_fit'" in err[0] and "needs 4 points, the budget allows 3" in err[0]
    assert "Traceback" not in err[0]
    con = sqlite3.connect(tmp_path / "select.sqlite")  # zero-shot runs only (size 0)
    sizes = {r[0] for r in con.execute("SELECT size FROM runs")}
    con.close()
    assert sizes <= {0}, sizes
