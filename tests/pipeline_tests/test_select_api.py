"""`lensllm.select`: the outcome of `lensllm select`, typed, with the command's JSON."""

from __future__ import annotations

import json

import lensllm
from lensllm.cli import main


def _without_wall_time(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "wall_time_s"}


def test_select_returns_the_commands_json(tiny_select, capsys):
    path, outcome = tiny_select
    result = lensllm.select(path)  # every run is in the store: nothing runs again
    assert result.record["runs_executed"] == 0
    assert result.selected == outcome.view.models[outcome.selection.selected]
    assert result.ranking == [outcome.view.models[i] for i in outcome.selection.ranking()]
    assert 0 < result.cost_fraction < 1
    assert main(["select", "--config", str(path), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert _without_wall_time(printed) == _without_wall_time(json.loads(result.to_json()))
    frame = result.to_frame()
    assert list(frame.index) == result.ranking
