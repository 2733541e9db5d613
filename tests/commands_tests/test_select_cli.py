"""`lensllm select` and `lensllm demo` on the command line."""

from __future__ import annotations

import json

import pytest

from lensllm.cli import main

pytest.importorskip("torch")


def _config(tmp_path, method="subtuning"):
    from lensllm.zoo import write_task

    write_task(tmp_path / "task.jsonl", 16 + 8 + 8, seed=1)
    path = tmp_path / "sel.toml"
    path.write_text(f"""[experiment]
sizes = [8, 16]
store = "sel.sqlite"
[data]
path = "task.jsonl"
validation_size = 8
test_size = 8
[[candidates]]
model = "tiny:gpt2"
[[candidates]]
model = "tiny:opt"
[finetune]
batch_size = 8
epochs = 1
min_steps = 1
max_length = 32
[selection]
method = "{method}"
target = 1000
max_data = 16
[ntk]
enabled = false
""")
    return path


@pytest.mark.parametrize("command", ["select", "demo"])
def test_help_teaches(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"lensllm {command}" in text
    assert "--report" in text if command == "select" else "--out" in text


def test_select_json_then_nothing_new(tmp_path, capsys):
    path = _config(tmp_path)
    assert main(["select", "--config", str(path), "--json", "--quiet"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["method"] == "subtuning" and first["runs_executed"] == 4  # 2 x (0, 16)
    # subtuning ranks by the loss at the largest affordable size: check it on the store
    from lensllm.store import open_store

    with open_store(tmp_path / "sel.sqlite") as store:
        loss = {r.key.model: r.result.test_loss for r in store.get_runs(status="finished")
                if r.key.size == 16}
    assert first["selected"] == min(loss, key=loss.get)
    assert [r["model"] for r in first["ranking"]] == sorted(loss, key=loss.get)
    assert main(["select", "--config", str(path), "--json", "--quiet"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["runs_executed"] == 0 and again["selected"] == first["selected"]


def test_select_method_override_and_report(tmp_path, capsys):
    path = _config(tmp_path)
    status = main(["select", "--config", str(path), "--method", "zero_shot", "--quiet",
                   "--report", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert status == 0
    # zero_shot predicts no loss: its distribution is unknown, the verdict does not commit
    assert "No clear winner: " in out and (tmp_path / "rep" / "index.html").is_file()
    assert main(["select", "--config", str(path), "--method", "nope"]) == 2


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LENSLLM_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-open"]) == 0
    out = capsys.readouterr().out
    assert ("Pick " in out or "No clear winner: " in out) and \
        (tmp_path / "demo" / "index.html").is_file()


def test_select_with_ray_gives_the_local_ranking_and_losses(tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lensllm[ray]')")
    results = []
    for where in ("local", "ray"):
        folder = tmp_path / where
        folder.mkdir()
        path = _config(folder)
        extra = ["--ray", "local"] if where == "ray" else []
        try:
            status = main(["select", "--config", str(path), "--json", "--quiet", *extra])
        finally:
            if ray.is_initialized():
                ray.shutdown()
        assert status == 0
        results.append(json.loads(capsys.readouterr().out))
    local, remote = results
    assert remote["runs_executed"] == local["runs_executed"] == 4  # 2 x (0, 16)
    assert remote["ranking"] == local["ranking"]
    assert remote["cost_flops"] == local["cost_flops"]
