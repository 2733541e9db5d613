"""`lensllm select` configs refused whole, before any run (issue 11): one line naming the key."""

from __future__ import annotations

import pytest

from tests.commands_tests.cli_helpers import assert_one_line_error, run_cli

BASE = {"selection": 'method = "rectified_fit"\ntarget = 1000\nmax_data = 16',
        "data": 'path = "task.jsonl"\nvalidation_size = 8\ntest_size = 8',
        "experiment": 'sizes = [8, 16]\nstore = "sel.sqlite"'}


def _config(tmp_path, **override):
    (tmp_path / "task.jsonl").write_text("".join(f'{{"text": "x {i}"}}\n' for i in range(40)))
    tables = {**BASE, **override}
    text = "\n".join(f"[{k}]\n{v}" for k, v in tables.items())
    text += '\n[[candidates]]\nmodel = "tiny:gpt2"\n[[candidates]]\nmodel = "tiny:opt"\n'
    path = tmp_path / "sel.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("override, words", [
    ({"selection": 'method = "rectified_fit"\ntarget = inf\nmax_data = 16'},
     ["selection.target", "inf"]),
    ({"selection": 'method = "rectified_fit"\ntarget = 1e300\nmax_data = 16'},
     ["selection.target", "1e+300"]),
    ({"selection": 'method = "rectified_fit"\ntarget = 1000\noptions = {bogus = 1}'},
     ["selection.options.bogus", "rectified_fit"]),
    ({"selection": 'method = "ats"\ntarget = 1000\noptions = {k = 1}'},
     ["selection.options", "`k` must be >= 2"]),
    ({"data": 'path = "task.jsonl"\nvalidation_size = 8\ntest_size = 8\nsplit_seed = -1'},
     ["data.split_seed", "-1"]),
    ({"experiment": 'sizes = [8, 16]\nthreads = 100000'}, ["experiment.threads", "100000"]),
    ({"experiment": 'sizes = [8, 16]\nseeds = [-1]'}, ["experiment.seeds", "-1"]),
])
def test_bad_select_configs_fail_before_any_run(tmp_path, capsys, monkeypatch, override, words):
    monkeypatch.chdir(tmp_path)
    path = _config(tmp_path, **override)
    status, out, err = run_cli(capsys, ["select", "--config", str(path), "--quiet"])
    assert_one_line_error(status, out, err, words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel.toml", "task.jsonl"]


def test_report_on_an_existing_file_fails_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _config(tmp_path)
    (tmp_path / "rep").write_text("x")
    status, out, err = run_cli(capsys, ["select", "--config", str(path), "--report", "rep"])
    assert_one_line_error(status, out, err, ["--report", "not a folder"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep", "sel.toml", "task.jsonl"]


@pytest.mark.parametrize("sizes, candidates, budget, want", [
    ([8, 16, 32, 64], 3, None, "halving"),        # 4 sizes within the budget, 3 to prune
    ([8, 16, 32, 64, 128], 3, 64, "halving"),
    ([8, 16, 32, 64, 128], 3, 32, "adaptive"),    # 3 sizes within the budget: no rung
    ([8, 16, 32, 64], 2, None, "adaptive"),       # too few candidates to prune
])
def test_a_config_without_a_method_gets_halving_where_it_pays(sizes, candidates, budget, want):
    from lensllm.pipeline.config import select_config_from_dict

    raw = {"experiment": {"sizes": sizes}, "data": {"path": "task.jsonl"},
           "candidates": [{"model": f"tiny:gpt2-{i}"} for i in range(candidates)],
           "selection": {"target": 1024, **({"max_data": budget} if budget else {})}}
    config = select_config_from_dict(raw)
    assert config.selection.method == want
    assert type(config.selection.selector).__name__.lower() == want
    if want == "halving":  # select's halving prunes a 5-size grid (the tables' does not)
        assert config.selection.selector.early_first_rung is True
    # a method named in the config is kept
    raw["selection"]["method"] = "rectified_fit"
    assert select_config_from_dict(raw).selection.method == "rectified_fit"


@pytest.mark.parametrize("sizes, budget, noted", [
    ([8, 16, 32, 64], None, "with 5 or more"),    # halving is AtS on 4 sizes
    ([4, 8, 16, 32, 64], None, None),             # 5: the early first rung prunes
    ([8, 16, 32, 64, 128, 256], 64, "4 size(s)"),  # only 4 within the budget
])
def test_a_grid_too_short_to_prune_is_noted_before_any_run(sizes, budget, noted):
    from lensllm.pipeline.config import select_config_from_dict
    from lensllm.pipeline.stages import grid_note

    raw = {"experiment": {"sizes": sizes}, "data": {"path": "task.jsonl"},
           "candidates": [{"model": f"tiny:gpt2-{i}"} for i in range(3)],
           "selection": {"target": 1024, **({"max_data": budget} if budget else {})}}
    config = select_config_from_dict(raw)
    note = grid_note(config, 3)
    assert (note is None) == (noted is None)
    if noted:
        assert noted in note and "every candidate pays for every size" in note
    raw["selection"]["method"] = "adaptive"  # a selector that does not prune: no note
    assert grid_note(select_config_from_dict(raw), 3) is None
