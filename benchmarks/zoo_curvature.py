"""Does the Hessian curvature of the fine-tuning loss predict the phase transition or the ranking?

For each candidate of the zoo benchmark (:data:`lensllm.zoo.FULL_ZOO`), measures the
curvature diagnostics of :func:`lensllm.ntk.hessian_curvature` at its defaults (8 probe
examples, 30 Lanczos steps, 30 probes) on the zoo benchmark's probe set (the one `select`
draws: 32 examples of the training pool, seed 0; the first 8 are used), with the
parameters the zoo's runs train (all of them, full fine-tuning), and correlates the top
eigenvalue, the total trace and the mean per-layer trace with

- (a) each candidate's phase transition, ``transition()`` of the rectified law fitted to its
  curve (zero-shot + sizes up to the budget ``D*/8`` = 800, as the selectors see it; and up
  to 3200, all sizes but ``D*``);
- (b) the true loss at ``D*`` = 6400 (the ranking the selectors are scored against).

Losses come from ``benchmarks/results/zoo/curvature_table.csv`` (the first zoo benchmark's
table, word-list task, D* = 6400, pinned here since ``zoo_table.csv`` now holds the
docstring-task rerun; the probe set is drawn from today's word-list task file, so a rerun
is not bit-identical to ``curvature.json``);
Pearson and Spearman correlations over the candidates are printed and written to
``benchmarks/results/zoo/curvature.json``. Needs torch (the ``finetune`` extra); the zoo's
checkpoints are built if missing (``lensllm.zoo.build_zoo``, never rebuilt).

    python benchmarks/zoo_curvature.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "zoo"
sys.path.insert(0, str(ROOT / "benchmarks"))
import zoo_bench  # noqa: E402  (its task, split sizes and fine-tuning settings)

PROBE_N, PROBE_SEED = 32, 0


def probe_batch(model_id: str, work: Path):
    """The zoo benchmark's probe set for ``model_id``, encoded as its runs encode it."""
    from lensllm.finetune.data import encode_examples, split_indices
    from lensllm.finetune.experiment import prepare_experiment
    from lensllm.finetune.models import is_encoder_decoder, load_model
    from lensllm.ntk import select_probe
    from lensllm.pipeline import load_select_config

    config = load_select_config(work / "zoo_select.toml").experiment
    prepared = prepare_experiment(config, store_path=work / "unused.sqlite")
    task = prepared.task
    split = split_indices(len(task), n_validation=config.data.validation_size,
                          n_test=config.data.test_size, seed=config.data.split_seed)
    pool = [task.examples[i] for i in split.train]
    import torch

    model, tok = load_model(model_id, attn_implementation="eager", dtype=torch.float32)
    batch = encode_examples(tok, select_probe(pool, PROBE_N, PROBE_SEED), task.kind,
                            max_length=config.finetune.max_length,
                            is_encoder_decoder=is_encoder_decoder(model))
    return model, batch


def transitions(table, max_size: int) -> np.ndarray:
    """Rectified-law phase transition per candidate from zero-shot + sizes <= ``max_size``."""
    from lensllm.laws import RectifiedLaw

    keep = table.sizes <= max_size
    d = np.concatenate([[0.0], table.sizes[keep]])
    loss = np.concatenate([table.zero_shot[:, None], table.losses[:, keep]], axis=1)
    return np.asarray(RectifiedLaw().fit_many(d, loss).transition, dtype=float)


def correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of two vectors (finite pairs only)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]

    def rank(v):
        return np.argsort(np.argsort(v)).astype(float)

    return {"pearson": float(np.corrcoef(x, y)[0, 1]),
            "spearman": float(np.corrcoef(rank(x), rank(y))[0, 1]), "n": int(ok.sum())}


#: D* of the pinned table
DSTAR = 6400


def main() -> int:
    import torch

    from lensllm.bench.table import load_table
    from lensllm.ntk import hessian_curvature
    from lensllm.zoo import FULL_ZOO, build_zoo

    torch.set_num_threads(1)
    table = load_table(RESULTS / "curvature_table.csv")
    zoo_bench.TASK = "wordlist"  # the task the pinned table was measured on
    paths = build_zoo(FULL_ZOO, workers=1, log=print)
    work = Path(tempfile.mkdtemp(prefix="zoo-curv-"))
    zoo_bench.write_configs(work, paths)
    rows = {}
    for name in table.models:
        start = time.perf_counter()
        model, batch = probe_batch(str(paths[name]), work)
        curv = hessian_curvature(model, batch, params="all", seed=0)
        layers = [v for k, v in curv.layer_trace.items() if k != "other"]
        rel_se = max(curv.layer_trace_stderr[k] / abs(v) for k, v in curv.layer_trace.items()
                     if v != 0)
        rows[name] = {"top_eigenvalue": curv.top_eigenvalue, "trace": curv.trace,
                      "mean_layer_trace": float(np.mean(layers)),
                      "worst_layer_rel_stderr": rel_se, "n_params": curv.n_params,
                      "wall_s": round(time.perf_counter() - start, 1),
                      "curvature": curv.to_dict()}
        print(f"{name}: top {curv.top_eigenvalue:.4g} trace {curv.trace:.4g} "
              f"mean layer {np.mean(layers):.4g} (worst layer rel. s.e. {rel_se:.2f}) "
              f"{rows[name]['wall_s']} s", flush=True)
    targets = {"transition_800": transitions(table, 800),
               "transition_3200": transitions(table, 3200),
               "loss_at_dstar": table.column(DSTAR)}
    out = {"candidates": {n: {**rows[n], **{k: float(v[i]) for k, v in targets.items()}}
                          for i, n in enumerate(table.models)},
           "correlations": {}}
    for stat in ("top_eigenvalue", "trace", "mean_layer_trace"):
        x = np.array([rows[n][stat] for n in table.models])
        for key, y in targets.items():
            c = correlations(x, np.log(y))
            out["correlations"][f"{stat} vs log {key}"] = c
            print(f"{stat:>17} vs log {key:<16} Pearson {c['pearson']:+.3f} "
                  f"Spearman {c['spearman']:+.3f} (n={c['n']})")
    (RESULTS / "curvature.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
