"""``lensllm ntk``: end to end on tiny models, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from lensllm.cli import main
from lensllm.ntk.spectrum import NTKSpectrum


def _write_causal(path, n):
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for _ in range(n):
            text = " ".join(rng.choice(words, size=int(rng.integers(3, 8))))
            f.write(json.dumps({"text": text}) + "\n")
    return path


def _write_seq2seq(path, n):
    with open(path, "w") as f:
        f.writelines(json.dumps({"source": f"add {i} {i + 1}", "target": str(2 * i + 1)}) + "\n" for i in range(n))
    return path


def test_ntk_command_writes_features_and_store(tmp_path, capsys):
    data = _write_causal(tmp_path / "task.jsonl", 12)
    out = tmp_path / "f.json"
    store = tmp_path / "s.sqlite"
    rc = main(["ntk", "--model", "tiny:gpt2", "--data", str(data), "--n", "6", "--dim", "64",
               "--eta", "0.001", "--chunk-size", "4", "--max-length", "16", "--out", str(out),
               "--store", str(store), "--no-progress"])
    assert rc == 0
    assert "tiny:gpt2: n=6 d=64 params=lora" in capsys.readouterr().out
    spec = NTKSpectrum.load(out)
    assert spec.n == 6 and spec.eta == 0.001
    for key, value in {"model_id": "tiny:gpt2", "probe_seed": 0, "n": 6, "dim": 64,
                       "params": "lora", "dtype": "float32"}.items():
        assert spec.meta[key] == value
    assert spec.meta["lensllm_version"]
    assert spec.meta["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    from lensllm.store import open_store

    with open_store(store) as s:
        (rec,) = s.get_ntk(model="tiny:gpt2")
        assert rec.dataset == "task" and rec.d == 64
        assert [c.kind for c in s.costs()] == ["ntk"]
    np.testing.assert_allclose(rec.eigenvalues, spec.eigenvalues)


def test_ntk_command_curvature_is_saved_with_the_features(tmp_path):
    data = _write_causal(tmp_path / "task.jsonl", 8)
    out = tmp_path / "f.json"
    store = tmp_path / "s.sqlite"
    rc = main(["ntk", "--model", "tiny:llama", "--data", str(data), "--n", "4", "--dim", "64",
               "--max-length", "12", "--curvature", "--engine", "batched", "--out", str(out),
               "--store", str(store), "--no-progress"])
    assert rc == 0
    spec = NTKSpectrum.load(out)
    curv = spec.meta["curvature"]
    assert spec.meta["engine"] == "batched" and curv["n_examples"] == 4
    assert curv["hvps"] == curv["lanczos_steps"] + curv["probes"]
    assert np.isclose(curv["trace"], sum(curv["layer_trace"].values()))
    from lensllm.store import open_store

    with open_store(store) as s:
        (rec,) = s.get_ntk(model="tiny:llama")
    from lensllm.ntk import spectrum_from_record

    assert spectrum_from_record(rec).meta["curvature"] == curv


def test_ntk_command_seq2seq_exact_all_params(tmp_path):
    data = _write_seq2seq(tmp_path / "s2s.jsonl", 5)
    out = tmp_path / "t5.json"
    rc = main(["ntk", "--model", "tiny:bart", "--data", str(data), "--n", "3", "--dim", "0",
               "--params", "all", "--max-length", "12", "--out", str(out), "--no-progress"])
    assert rc == 0
    spec = NTKSpectrum.load(out)
    assert spec.meta["dim"] is None and spec.meta["params"] == "all"


@pytest.mark.parametrize(
    ("setup", "argv", "match"),
    [
        ("ok", ["--n", "1"], "--n must be an integer in [2,"),
        ("ok", ["--n", "50"], "--n 50: the data file"),
        ("empty", [], "holds no examples"),
        ("missing", [], "does not exist"),
        ("ok", ["--model", "no/such-model-here"], "no/such-model-here"),
        ("ok", ["--dim", "-1"], "--dim"),
        ("ok", ["--params", "all", "--lora-r", "4"], "--params lora"),
    ],
)
def test_ntk_command_errors_are_one_line(tmp_path, capsys, setup, argv, match):
    data = tmp_path / "task.jsonl"
    if setup == "ok":
        _write_causal(data, 8)
    elif setup == "empty":
        data.write_text("")
    base = ["ntk", "--model", "tiny:gpt2", "--data", str(data), "--out",
            str(tmp_path / "o.json"), "--no-progress", "--n", "4"]
    if "--model" in argv:
        base[2] = argv[argv.index("--model") + 1]
        argv = [a for a in argv if a not in ("--model", base[2])]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and match in err, err
    assert not (tmp_path / "o.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_ntk_command_without_cuda_says_so_in_one_line(tmp_path, capsys):
    data = _write_causal(tmp_path / "task.jsonl", 8)
    assert main(["ntk", "--model", "tiny:gpt2", "--data", str(data), "--n", "4", "--device",
                 "cuda", "--out", str(tmp_path / "o.json"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no CUDA device" in err, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("params", ["lora", "all"])
def test_ntk_command_on_cuda_matches_the_cpu_features(tmp_path, params):
    data = _write_causal(tmp_path / "task.jsonl", 12)
    spectra = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.json"
        assert main(["ntk", "--model", "tiny:llama", "--data", str(data), "--n", "6", "--dim",
                     "64", "--params", params, "--precision", "float32", "--max-length", "16",
                     "--device", device, "--out", str(out), "--no-progress"]) == 0
        spectra[device] = NTKSpectrum.load(out)
    assert spectra["cuda"].meta["device"].startswith("cuda")
    np.testing.assert_allclose(spectra["cuda"].eigenvalues, spectra["cpu"].eigenvalues,
                               rtol=1e-3, atol=1e-6 * spectra["cpu"].eigenvalues[0])


def test_help_does_not_import_torch():
    code = ("import sys; from lensllm.cli import main\n"
            "try:\n    main(['ntk', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "--chunk-size" in out.stdout and out.stdout.strip().endswith("NOTORCH")
