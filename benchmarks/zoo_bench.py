"""The zoo benchmark: do the scaling laws predict real fine-tuning, and what ranks best?

Fine-tunes ten candidates - the real SmolLM2-135M-Instruct (``gguf:smollm2``) and nine
0.1M-1.1M models of the CPU zoo (:mod:`lensllm.zoo`, pretrained here on
``pydoc_data.topics``) - on nested subsets of a downstream task from 16 to ``D*`` = 400
examples (the ground truth is the measured loss at ``D*``), computes NTK features, and
scores in nats per byte (the tokenizers differ), for budgets ``D*/4`` and ``D*/8``:

- the laws alone: log-RMSE of the predicted ``L(D*)`` for the power law, the rectified law
  and the LensLLM law (``t`` fitted, and ``t`` fixed to the run's early-stopping step);
- every registered selection method (``adaptive``, ``lensllm``, ``nlp_metrics``...):
  PearCorr, Spearman, RelAcc, log-RMSE and the cost fraction (counted FLOPs of the runs it
  paid for / FLOPs of fine-tuning every candidate on ``D*``, both measured);

and writes ``zoo_table.csv`` (shared table format), ``ntk_features.json``, ``bench.json``,
``summary.md`` and ``bench.png`` to ``--out``. Tasks (``--task``): ``docstrings`` (default;
name a standard-library callable, answer with its docstring's first sentence: natural
language, :mod:`lensllm.zoo.docstrings`) and ``wordlist`` (reverse/sort/count word lists:
algorithmic, learnt abruptly; kept as the hard case, results in ``results/zoo/wordlist``).

    python benchmarks/zoo_bench.py                   # everything: ~70 min on 2 cores
    python benchmarks/zoo_bench.py --real smollm2-135m   # without Gemma: 24 min
    python benchmarks/zoo_bench.py --task wordlist   # the algorithmic task
    python benchmarks/zoo_bench.py --analyse-only    # re-score from the store (minutes)

Runs are stored in ``--work`` (default ``~/.cache/lensllm/bench-zoo-TASK``) and never
repeated; set ``LENSLLM_CACHE`` to a new folder to time a run from scratch (zoo
pretraining and the GGUF conversion included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: per task: the subset sizes (nested, doubling-ish) and D* (measured for every candidate);
#: the budgets D*/32, D*/16 and D*/8 read the sizes up to them
TASK_GRID = {
    "docstrings": ((6, 12, 25, 50, 100, 200, 400, 800), 800),
    "comments": ((12, 25, 50, 100, 200, 400, 3200), 3200),
    "wordlist": ((8, 16, 32, 64, 100, 200, 400, 800), 800),
}
SIZES, TARGET = TASK_GRID["docstrings"]
RATIOS = (32, 16, 8)
N_VAL, N_TEST = 64, 128
SMOKE = bool(os.environ.get("ZOO_BENCH_SMOKE"))  # a minutes-long check of the whole script
LAWS = ("power", "rectified", "lens_fit_t", "lens_fixed_t", "lens_fixed_t_steps")
#: the selector `lensllm select` uses by default (scored first in the last line)
DEFAULT_METHOD = "halving"
#: real pretrained candidates (table name -> model id), besides the zoo's own models;
#: their tokenizers differ from the zoo's, so everything is ranked in nats per byte
REAL = {"gemma3-270m": "gguf:gemma3-270m", "smollm2-135m": "gguf:smollm2"}
#: the recipe group of each real candidate (the zoo's models are group "zoo")
REAL_GROUP = {"gemma3-270m": "gemma3", "smollm2-135m": "smollm2"}
#: the downstream task (``--task``): the natural-language one by default
TASK = "docstrings"
TASK_DESCRIPTION = {
    "docstrings": "docstrings (name a standard-library callable -> first sentence of its "
                  "docstring; lensllm.zoo.docstrings)",
    "comments": "comments (a line of standard-library code -> first sentence of the comment "
                "above it; lensllm.zoo.comments)",
    "wordlist": "wordlist (generated; reverse/sort/first/last/count over corpus words)"}

# The default recipe of `lensllm select` (docs/running.md): a constant learning rate until
# the validation loss has not improved for an epoch or a quarter of the steps to its best
# (whichever is longer), no step floor, validation twice an epoch on a quarter as many
# examples as the run trains on (at least 32). Only what a user sets is set here: the
# family's learning rate, the batch and the sequence length. The learning rates: the zoo's
# 0.1M-1.1M models need a large one; SmolLM2 at that rate would be wrecked (3e-4 already
# overfits it within an epoch); Gemma-3 at 3e-4 got worse at the first validation of every
# size, at 1e-5 it learns (a 32-example pilot: 3.23 nats/token against 3.31 at 3e-5 and
# 4.51 zero-shot).
_RECIPE = """[finetune]
method = "full"
learning_rate = {lr}
batch_size = 8
max_length = {max_length}
"""
GROUP_RECIPE = {"gemma3": {"lr": "1e-5"}, "smollm2": {"lr": "3e-4"}, "zoo": {"lr": "1e-3"}}
#: tokens kept per example: the docstring task's longest examples (about 190 bytes) are
#: longer than 64 tokens of the zoo's 1024-token BPE, and a cut example has no per-byte loss
MAX_LENGTH = {"docstrings": 128, "comments": 128, "wordlist": 64}


def set_task(task: str) -> None:
    """Point the module's task, sizes and target at ``task``."""
    global TASK, SIZES, TARGET, RATIOS
    TASK = task
    SIZES, TARGET = TASK_GRID[task]
    RATIOS = (32, 16, 8)
    if SMOKE:
        SIZES, TARGET, RATIOS = (8, 12, 16, 24, 32, 64), 64, (2,)


set_task(TASK)


#: Extra ``[finetune]`` lines for every group (``--finetune``): a recipe variant measured
#: the same way, into its own ``--work`` and ``--out``.
RECIPE_EXTRA: list[str] = []


def recipe(group: str) -> str:
    """The ``[finetune]`` table of a group's configs for the current task."""
    text = _RECIPE.format(max_length=MAX_LENGTH[TASK], **GROUP_RECIPE[group])
    return text + "".join(f"{line}\n" for line in RECIPE_EXTRA)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and every finished child process."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def groups_of(paths: dict[str, Path | str]) -> dict[str, dict[str, Path | str]]:
    """The candidates of each recipe, in :data:`GROUP_RECIPE` order (slowest first; empty
    groups left out): ``{"gemma3": {...}, "smollm2": {...}, "zoo": {...}}``."""
    groups = {g: {n: p for n, p in paths.items() if REAL_GROUP.get(n, "zoo") == g}
              for g in GROUP_RECIPE}
    return {g: c for g, c in groups.items() if c}


def write_configs(work: Path, paths: dict[str, Path | str]) -> dict[str, tuple[Path, Path]]:
    """Write the task and, per group, a `lensllm run` and a `lensllm select` config.

    Every group shares the task, its splits and the store; the runs of a group carry its
    recipe's config hash. Returns ``{group: (run config, select config)}``, slowest group first.
    """
    from lensllm.zoo import write_task

    data = work / f"{TASK}_task.jsonl"
    if not data.is_file():
        write_task(data, TARGET + N_VAL + N_TEST, seed=0, task=TASK)
    configs = {}
    for group, members in groups_of(paths).items():
        cands = "\n".join(f'[[candidates]]\nmodel = "{p}"\nfamily = "{n.split("-")[0]}"\n'
                          for n, p in members.items())
        base = f"""[experiment]
sizes = {list(SIZES)}
seeds = [0]
store = "zoo.sqlite"
threads = 1

[data]
path = "{data.name}"
name = "{TASK}"
validation_size = {N_VAL}
test_size = {N_TEST}

{cands}
{recipe(group)}"""
        run_cfg = work / f"{group}_run.toml"
        run_cfg.write_text(base)
        sel_cfg = work / f"{group}_select.toml"
        sel_cfg.write_text(base + f"""
[selection]
method = "{DEFAULT_METHOD}"
target = {TARGET}
max_data = {TARGET // RATIOS[-1]}

[ntk]
n = 32
dim = 4096
params = "all"
# Gemma-3's tied 262k x 640 embedding is one 168M-parameter layer: the automatic chunk
# (planned from free memory) ran this 23 GB machine out of memory; 2 examples per pass fit
chunk_size = 2
""")
        configs[group] = (run_cfg, sel_cfg)
    return configs


def run_all(run_cfgs: list[Path], workers: int) -> float:
    """Every (candidate, size) run: ``workers`` processes, each running the configs in turn.

    The processes claim runs from one store. Worker ``i`` starts at config ``i`` (rotated
    order): a ``lensllm run`` whose remaining runs are all held by other processes waits for
    them, so with one shared order a worker would sit idle behind the slowest group's last
    run while other groups' runs were still unclaimed (measured: 11 idle minutes behind
    Gemma's D* run). Rotated, each worker reaches the shared groups only after its own.
    """
    import threading

    start = time.perf_counter()
    failed: list[str] = []

    def worker(i: int) -> None:
        with open(run_cfgs[0].parent / f"run{i}.log", "w") as f:
            n = len(run_cfgs)
            for cfg in run_cfgs[i % n:] + run_cfgs[: i % n]:
                cmd = [sys.executable, "-m", "lensllm.cli", "run", "--config", str(cfg),
                       "--threads", "1"]
                code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
                if code:
                    failed.append(f"{cfg.name} (worker {i}, exit {code})")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        log(f"some runs failed: {', '.join(failed)}; see {run_cfgs[0].parent}/run*.log")
    return time.perf_counter() - start


def select_and_export(work: Path, configs: dict[str, tuple[Path, Path]],
                      paths: dict[str, Path | str], out: Path, timings: dict[str, float]):
    """Run `select` (adaptive at D*/8; NTK features stored) per group, export one table.

    Each group's runs are exported in nats per byte under its own config hash and the rows
    joined into ``zoo_table.csv``. Returns ``(table, runs, spectra, validations)``: the
    loaded table, the finished runs by ``(name, size)``, the NTK spectra in the table's
    model order and each run's validation losses ``(step, loss)`` by ``(name, size)``.
    """
    from lensllm.bench.table import load_table
    from lensllm.ntk import spectrum_from_record
    from lensllm.pipeline import load_select_config, run_select
    from lensllm.store import open_store
    from lensllm.store.export import export_table

    names = {str(p): n for n, p in paths.items()}
    n_probe = {}
    for group, (_, sel_cfg) in configs.items():
        t0 = time.perf_counter()
        config = load_select_config(sel_cfg)
        n_probe[group] = config.ntk.n
        run_select(config, threads=1, log=log)
        # first (uncached: NTK features computed) timing kept; re-analyses reuse the store
        timings.setdefault(f"select_{DEFAULT_METHOD}_{group}_s", time.perf_counter() - t0)
    store = open_store(work / "zoo.sqlite")
    finished = store.get_runs(status="finished", dataset=TASK)
    header, rows, runs, spectra, validations = None, [], {}, {}, {}
    for group, members in groups_of(paths).items():
        ids = {str(p) for p in members.values()}
        lr = tomllib.loads(recipe(group))["finetune"]["learning_rate"]
        hashes = {r.key.config_hash for r in finished
                  if r.key.model in ids and r.result.learning_rate == lr}
        (config_hash,) = hashes  # one recipe per group
        mine = [r for r in finished if r.key.model in ids and r.key.config_hash == config_hash]
        runs.update({(names[r.key.model], r.key.size): r.result for r in mine})
        # validation curves, for the convergence check's trend replay at the horizon
        validations.update({(names[r.key.model], r.key.size): sorted(
            (p.step, p.loss) for p in store.loss_points(r.run_id) if p.split == "validation")
            for r in mine})
        lines = export_table(store, dataset=TASK, config_hash=config_hash,
                             unit="byte").to_csv().splitlines()
        header = header or lines[:2]
        assert lines[:2] == header, (lines[:2], header)  # same unit line and sizes
        rows += [line for line in lines[2:] if line.split(",")[0] in ids]
        for model in members.values():
            feats = [f for f in store.get_ntk(model=str(model), dataset=TASK)
                     if f.n == n_probe[group]]
            spectra[names[str(model)]] = spectrum_from_record(feats[-1])
    store.close()
    csv = "\n".join(header + rows) + "\n"
    for path, name in names.items():
        csv = csv.replace(path, name)
    (out / "zoo_table.csv").write_text(csv)
    table = load_table(out / "zoo_table.csv")
    ntk_json = {m: {**spectra[m].to_dict(), "model": m} for m in table.models}
    (out / "ntk_features.json").write_text(json.dumps(ntk_json, indent=1))
    return table, runs, [spectra[m] for m in table.models], validations


def analyse(work: Path, configs: dict[str, tuple[Path, Path]], paths: dict[str, Path | str],
            out: Path, timings: dict[str, float]) -> None:
    from lensllm.bench.budget import BudgetView
    from lensllm.bench.metrics import coverage, log_rmse, pearson_corr, rel_acc
    from lensllm.finetune.config import FinetuneConfig
    from lensllm.finetune.models import load_model
    from lensllm.pipeline import fit_laws
    from lensllm.selection import REGISTRY, NotApplicable, get_selector

    out.mkdir(parents=True, exist_ok=True)
    table, runs, spectra, validations = select_and_export(work, configs, paths, out, timings)
    models = list(table.models)
    path_of = {n: str(p) for n, p in paths.items()}
    flops = np.array([[runs[(m, int(s))].flops for s in table.sizes] for m in models])
    # fine-tuning every candidate on D*: the training FLOPs of the measured D* runs
    # (6 * n_params * train_tokens; as `lensllm select`'s RunView.full_cost, which uses the
    # training FLOPs per example of the largest run times D*)
    full_flops = float(sum(6.0 * runs[(m, TARGET)].n_params * runs[(m, TARGET)].train_tokens
                           for m in models))
    truth = table.column(TARGET)
    early = np.array([[runs[(m, int(s))].early_stop_step for s in table.sizes] for m in models])
    steps = np.array([[runs[(m, int(s))].steps for s in table.sizes] for m in models])

    # 3. laws alone, on every point up to the budget (and the zero-shot point)
    law_rmse: dict[str, dict[str, float | None]] = {}
    law_pred: dict[str, dict[str, list]] = {}
    for ratio in RATIOS:
        vis = table.sizes <= TARGET / ratio
        idx = int(np.flatnonzero(vis)[-1])
        view = SimpleNamespace(n_models=len(models), zero_shot=table.zero_shot, ntk=spectra,
                               models=models, target=float(TARGET))
        observed = [(table.sizes[vis], table.losses[i, vis]) for i in range(len(models))]
        res = fit_laws(view, observed, t_fixed=early[:, idx].astype(float))
        res["lens_fixed_t_steps"] = fit_laws(view, observed, t_fixed=steps[:, idx].astype(float),
                                             names=("lens_fixed_t",))["lens_fixed_t"]
        key = f"1/{ratio}"
        law_rmse[key], law_pred[key] = {}, {}
        for lname in LAWS:
            pred = res[lname].predicted
            ok = np.isfinite(pred)
            law_rmse[key][lname] = float(log_rmse(pred[ok], truth[ok])) if ok.all() else None
            law_pred[key][lname] = [None if not np.isfinite(v) else float(v) for v in pred]
        law_rmse[key]["n_points"] = int(vis.sum()) + 1

    # 4. every selection method at every budget
    class ZooView(BudgetView):
        def load_weights(self, i: int):
            return load_model(path_of[self.models[i]])[0]

    records, cache = [], {}
    zoo = np.array([m not in REAL for m in models])
    # pretrained: every candidate but the zoo's untrained (0 pretraining steps) controls
    pretrained = np.array([not m.endswith("-p0") for m in models])
    zs_flops = np.array([runs[(m, 0)].flops for m in models])
    ntk_flops = np.array([float(sp.meta.get("flops", 0.0)) for sp in spectra])
    # converged: the recipe's plateau rule ended the run, or would have at its horizon
    # (TrainingPlan.converged, the trend replayed on its validations), as in `lensllm
    # select`'s convergence check
    plans = {g: FinetuneConfig(**tomllib.loads(recipe(g))["finetune"]) for g in GROUP_RECIPE}
    converged = np.array([[plans[REAL_GROUP.get(m, "zoo")].plan(int(s)).converged(
        int(early[i, j]), int(steps[i, j]), validations[(m, int(s))]) if s > 0 else True
        for j, s in enumerate(table.sizes)] for i, m in enumerate(models)])
    for ratio in RATIOS:
        for method in REGISTRY:
            max_data = TARGET / ratio
            view = ZooView(table, max_data, TARGET, ntk=spectra)
            # built as `lensllm select` builds it (the method's report options), with the
            # fits' raw bootstrap intervals (calibrated separately below)
            opts = {**REGISTRY[method].report_options,
                    **({"interval": "bootstrap"} if method in ("vanilla_fit", "rectified_fit",
                                                               "lensllm") else {})}
            t0 = time.perf_counter()
            try:
                if method == "nlp_metrics" and method in cache:
                    sel = cache[method]  # budget-independent: computed once
                else:
                    sel = get_selector(method, **opts).select(view)
                    cache[method] = sel
            except NotApplicable as exc:
                records.append({"budget_ratio": ratio, "max_data_num": max_data,
                                "method": method, "note": f"not applicable: {exc}"})
                continue
            paid = view.paid
            used = paid & (table.sizes[None, : paid.shape[1]] > 0)
            runs_cost = float((paid * flops[:, : paid.shape[1]]).sum())
            extra = zs_flops.sum() + (ntk_flops.sum() if method == "lensllm" else 0.0)
            width = (np.log(np.asarray(sel.upper, float) / np.asarray(sel.lower, float))
                     if sel.lower is not None else None)
            rec = {
                "budget_ratio": ratio, "max_data_num": max_data, "method": method,
                "pearcorr": pearson_corr(sel.score, truth),
                "relacc": rel_acc(sel.selected, truth),
                "rmse": (log_rmse(sel.predicted, truth) if sel.predicted is not None
                         and method != "subtuning" else None),
                "coverage": (coverage(sel.lower, sel.upper, truth) if sel.lower is not None
                             else None),
                "cost_fraction": runs_cost / full_flops,
                # everything the method paid: its runs (evaluations included), the zero-shot
                # evaluations, and the NTK features for the method that uses them
                "cost_fraction_total": float((runs_cost + extra) / full_flops),
                "rmse_pretrained": (log_rmse(np.asarray(sel.predicted)[pretrained],
                                             truth[pretrained])
                                    if sel.predicted is not None and method != "subtuning"
                                    else None),
                "interval_median_log_width": (float(np.nanmedian(width)) if width is not None
                                              else None),
                "converged_share": (float(converged[:, : paid.shape[1]][used].mean())
                                    if used.any() else None),
                "cost_fraction_params": view.cost() / view.full_cost(),
                "selected": models[sel.selected], "seconds": time.perf_counter() - t0,
                # the real model's loss is far below the zoo's: PearCorr over all models is
                # dominated by it, so the ranking of the others is scored on its own too
                "pearcorr_zoo_only": pearson_corr(np.asarray(sel.score)[zoo], truth[zoo]),
                "spearman": spearman(sel.score, truth),
                "score": [float(v) for v in sel.score]}
            rec.update(calibrated_scores(sel, view, method, opts, table, spectra, truth,
                                         pretrained))
            records.append(rec)
            log(f"1/{ratio} {method}: PearCorr {rec['pearcorr']} RelAcc {rec['relacc']:.3f} "
                f"rmse {rec['rmse']} cost {rec['cost_fraction']:.4f}")

    bench = {
        "task": TASK_DESCRIPTION[TASK], "python": sys.version.split()[0],
        "pretraining": "pydoc_data.topics, lensllm.zoo.PRETRAIN", "sizes": list(SIZES),
        "target": TARGET, "seeds": [0], "finetune": {g: recipe(g) for g in GROUP_RECIPE},
        "models": {m: {"n_params": int(table.n_params[i]), "path_name": m,
                       "zero_shot": float(table.zero_shot[i]), "true_L_target": float(truth[i])}
                   for i, m in enumerate(models)},
        "loss_unit": table.loss_unit,
        "runs": {m: {str(int(s)): {"steps": int(runs[(m, int(s))].steps),
                                   "early_stop_step": int(runs[(m, int(s))].early_stop_step),
                                   "wall_s": float(runs[(m, int(s))].wall_time)}
                     for s in table.sizes} for m in models},
        "law_log_rmse": law_rmse, "law_predictions": law_pred, "records": records,
        "converged_share_all_runs": float(converged[:, table.sizes > 0].mean()),
        "full_cost_flops": full_flops, "timings_s": timings,
        "ntk_flops_fraction": sum(float(sp.meta.get("flops", 0.0)) for sp in spectra)
        / full_flops,
        "zero_shot_flops_fraction": sum(runs[(m, 0)].flops for m in models) / full_flops,
        "cost_note": ("cost_fraction = counted FLOPs of the runs a method paid for "
                      "(training and evaluation passes) / training FLOPs of fine-tuning every "
                      "candidate on D* (6 * n_params * train_tokens of the measured D* runs); "
                      "cost_fraction_params = sum n_params * D (the published tables' unit)"),
    }
    (out / "bench.json").write_text(json.dumps(bench, indent=1))
    summary = format_summary(bench)
    (out / "summary.md").write_text(summary)
    plot_bench(bench, out / "bench.png")
    plot_frontier(bench, out / "frontier.png")
    print(json.dumps(last_line(bench)), flush=True)


def last_line(bench: dict) -> dict:
    """The machine-readable summary: the default selector at every budget, and zero-shot."""
    out: dict = {"task": bench["task"].split()[0], "target": bench["target"], "method": DEFAULT_METHOD,
                 "converged_share_all_runs": bench["converged_share_all_runs"]}
    for rec in bench["records"]:
        if rec["method"] not in (DEFAULT_METHOD, "zero_shot") or "pearcorr" not in rec:
            continue
        tag = f"{'zs_' if rec['method'] == 'zero_shot' else ''}d{rec['budget_ratio']}"
        keys = (("pearcorr",) if rec["method"] == "zero_shot" else
                ("relacc", "pearcorr", "cost_fraction_total", "rmse_pretrained",
                 "reported_rmse_pretrained", "reported_pearcorr", "calibrated_coverage",
                 "calibrated_width", "brier_p_best", "brier_uniform",
                 "converged_share"))
        out.update({f"{tag}_{k}": rec.get(k) for k in keys})
    return out


def plot_frontier(bench: dict, path: Path) -> None:
    """Cost fraction (all FLOPs paid over training every candidate on D*) against RelAcc and
    PearCorr, one line per selector across the budgets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    methods = list(dict.fromkeys(r["method"] for r in bench["records"] if "pearcorr" in r))
    for ax, metric in zip(axes, ("relacc", "pearcorr")):
        for j, m in enumerate(methods):
            pts = sorted((r["cost_fraction_total"], r[metric]) for r in bench["records"]
                         if r["method"] == m and r.get(metric) is not None)
            if pts:
                ax.plot(*zip(*pts), "os^vD<>ph"[j % 9] + "-", label=m, color=f"C{j % 10}",
                        lw=2.5 if m == DEFAULT_METHOD else 1.0, ms=6)
        ax.axvline(0.15, color="grey", ls=":", lw=1)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlabel("cost fraction (all FLOPs paid / training all candidates on D*)")
        ax.set_ylabel("RelAcc" if metric == "relacc" else "PearCorr of predicted L(D*)")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{TASK}: budgets D*/32, D*/16, D*/8 per selector", fontsize=10)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def spearman(score, truth) -> float | None:
    """Spearman rank correlation of a score with the true ``L(D*)`` (None if undefined)."""
    from scipy.stats import spearmanr

    value = float(spearmanr(np.asarray(score, float), np.asarray(truth, float)).statistic)
    return value if np.isfinite(value) else None


def plot_bench(bench: dict, path: Path) -> None:
    """Law log-RMSE and each method's RelAcc / PearCorr against the budget ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ratios = [int(k.split("/")[1]) for k in bench["law_log_rmse"]]
    ax = axes[0]
    # identical values (rectified = lens_fit_t...) overlap: shrinking markers and dashes
    # keep every line visible
    for j, law in enumerate(LAWS):
        vals = [bench["law_log_rmse"][f"1/{r}"][law] for r in ratios]
        ax.plot(ratios, [np.nan if v is None else v for v in vals], "os^vD"[j] + "-:"[j % 2],
                label=law, color=f"C{j}", ms=9 - 1.5 * j, lw=2.5 - 0.4 * j)
    ax.set_title("laws: log-RMSE of predicted L(D*) (lower is better)", fontsize=10)
    ax.set_ylabel("log-RMSE")
    for k, metric in enumerate(("pearcorr", "relacc")):
        ax = axes[k + 1]
        methods = list(dict.fromkeys(r["method"] for r in bench["records"]))
        for j, m in enumerate(methods):
            pts = [(r["budget_ratio"], r[metric]) for r in bench["records"]
                   if r["method"] == m and r.get(metric) is not None]
            if pts:
                ax.plot(*zip(*pts), "os^vD<>ph"[j % 9] + "-:"[j % 2], label=m,
                        color=f"C{j % 10}", ms=9 - 0.6 * j,
                        lw=2.5 if m in ("adaptive", "lensllm") else 1.2)
        ax.set_title(f"methods: {'PearCorr' if metric == 'pearcorr' else 'RelAcc'} "
                     "(higher is better)", fontsize=10)
        ax.set_ylabel("PearCorr" if metric == "pearcorr" else "RelAcc")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget ratio D*/max_data (log scale)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def calibrated_scores(sel, view, method, opts, table, spectra, truth, pretrained) -> dict:
    """The calibrated 90% intervals and P(best) of ``select`` (lensllm.selection.predictive):
    coverage, median width (upper / lower), the Brier score of P(best), next to the uniform
    prior's and the 0/1 pick's (see docs/select.md), and the accuracy of the point
    prediction ``select`` reports (the median of the calibrated distribution)."""
    from lensllm.bench.budget import BudgetView
    from lensllm.bench.metrics import log_rmse, pearson_corr
    from lensllm.selection import get_selector
    from lensllm.selection.p_best import brier_score
    from lensllm.selection.predictive import calibrate

    pred = calibrate(sel, view, lambda: get_selector(method, **opts),
                     lambda b, t: BudgetView(table, b, t, ntk=spectra))
    if not pred.known:
        return {"calibrated_coverage": None, "calibrated_width": None, "brier_p_best": None,
                "reported_rmse_pretrained": None, "reported_pearcorr": None}
    lo, hi = pred.interval(0.9)
    best, c = int(np.argmin(truth)), len(truth)
    return {"calibrated_coverage": float(np.mean((lo <= truth) & (truth <= hi))),
            "calibrated_width": float(np.median(hi / lo)),
            "brier_p_best": brier_score(pred.p_best(), best), "brier_uniform": 1 - 1 / c,
            "brier_pick": brier_score(np.eye(c)[sel.selected], best),
            "reported_rmse_pretrained": float(log_rmse(pred.predicted[pretrained],
                                                       truth[pretrained])),
            "reported_pearcorr": pearson_corr(pred.predicted, truth)}


def format_summary(bench: dict) -> str:
    lines = ["# Zoo benchmark: measured results", ""]
    lines.append("## log-RMSE of the predicted L(D*) (laws fitted to every point up to the "
                 "budget, plus the zero-shot point)\n")
    keys = list(bench["law_log_rmse"])
    lines.append("| law | " + " | ".join(keys) + " |")
    lines.append("|---|" + "---|" * len(keys))
    for law in LAWS:
        vals = [bench["law_log_rmse"][k][law] for k in keys]
        lines.append(f"| {law} | " + " | ".join("n/a" if v is None else f"{v:.4f}"
                                                for v in vals) + " |")
    lines.append("")
    recs = [r for r in bench["records"]]
    methods = list(dict.fromkeys(r["method"] for r in recs))
    ratios = list(dict.fromkeys(r["budget_ratio"] for r in recs))
    by = {(r["method"], r["budget_ratio"]): r for r in recs}
    for metric, title, scale in (("pearcorr", "PearCorr", 1),
                                 ("pearcorr_zoo_only", "PearCorr over the zoo models only "
                                  "(without the real candidate)", 1),
                                 ("spearman", "Spearman rank correlation", 1),
                                 ("relacc", "RelAcc", 1),
                                 ("rmse", "log-RMSE of predicted L(D*)", 1),
                                 ("cost_fraction", "cost fraction of the runs (FLOPs)", 1),
                                 ("cost_fraction_total", "cost fraction, everything paid "
                                  "(runs, zero-shot, NTK)", 1),
                                 ("rmse_pretrained", "log-RMSE of predicted L(D*), pretrained "
                                  "candidates", 1),
                                 ("reported_rmse_pretrained", "log-RMSE of the L(D*) select "
                                  "reports (the calibrated median), pretrained candidates", 1),
                                 ("reported_pearcorr", "PearCorr of the L(D*) select "
                                  "reports", 1),
                                 ("coverage", "90% interval coverage of the true L(D*)", 1),
                                 ("interval_median_log_width", "median interval width "
                                  "(log upper/lower)", 1),
                                 ("converged_share", "share of the runs used that converged",
                                  1),
                                 ("calibrated_coverage", "coverage of the calibrated 90% "
                                  "intervals of select", 1),
                                 ("calibrated_width", "median width (upper / lower) of "
                                  "those intervals", 1),
                                 ("brier_p_best", "Brier score of P(best) (uniform prior: "
                                  "1 - 1/C; the 0/1 pick: 0 or 2)", 1)):
        lines.append(f"## {title}\n")
        lines.append("| method | " + " | ".join(f"1/{r}" for r in ratios) + " |")
        lines.append("|---|" + "---|" * len(ratios))
        for m in methods:
            cells = []
            for r in ratios:
                v = by.get((m, r), {}).get(metric)
                cells.append("n/a" if v is None else f"{v * scale:.4f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    notes = sorted({f"{r['method']} (1/{r['budget_ratio']}): {r['note']}" for r in recs
                    if r.get("note")})
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=tuple(TASK_DESCRIPTION), default="docstrings",
                    help="the downstream task (default: %(default)s)")
    ap.add_argument("--work", type=Path, default=None,
                    help="run store and configs (default ~/.cache/lensllm/bench-zoo-TASK)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results (default benchmarks/results/zoo for docstrings, "
                         "benchmarks/results/zoo/wordlist for wordlist)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--real", default=",".join(REAL),
                    help="comma-separated real candidates to include (default: %(default)s; "
                         "Gemma-3 alone takes about 66 of the 107 worker-minutes of runs)")
    ap.add_argument("--analyse-only", action="store_true")
    ap.add_argument("--finetune", action="append", default=[], metavar="KEY=VALUE",
                    help="a [finetune] setting added to every config, TOML syntax (e.g. "
                         "'min_patience_steps = 50'); use its own --work and --out")
    args = ap.parse_args()
    RECIPE_EXTRA.extend(args.finetune)
    # checked before anything is built or written
    chosen = [n for n in args.real.split(",") if n]
    unknown = sorted(set(chosen) - set(REAL))
    if unknown:
        ap.error(f"--real: unknown candidate(s) {', '.join(unknown)}; known: {', '.join(REAL)}")
    set_task(args.task)
    args.work = args.work or Path.home() / ".cache" / "lensllm" / f"bench-zoo-{TASK}"
    args.out = args.out or (ROOT / "benchmarks" / "results" / "zoo"
                            / ("" if TASK == "docstrings" else TASK))
    from lensllm.zoo import DEMO_ZOO, FULL_ZOO, build_zoo

    args.work.mkdir(parents=True, exist_ok=True)
    timings_path = args.work / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    t0 = time.perf_counter()
    # the demo's four models and the 0.1M-1.1M part of FULL_ZOO (its 1.8M-3.5M models
    # would cost more fine-tuning time than the real 135M candidate's share allows)
    zoo = DEMO_ZOO[1:] if os.environ.get("ZOO_BENCH_SMOKE") else DEMO_ZOO + FULL_ZOO[:5]
    paths = build_zoo(zoo, workers=args.workers, log=log)
    paths.update({n: REAL[n] for n in chosen})
    if not args.analyse_only:  # keep the first (uncached) build time
        timings["zoo_build_s"] = max(timings.get("zoo_build_s", 0.0),
                                     time.perf_counter() - t0)
        timings["zoo_build_cpu_s"] = cpu_seconds()
    configs = write_configs(args.work, paths)
    if not args.analyse_only:
        log(f"fine-tuning {len(paths)} candidates x {len(SIZES)} sizes ({args.workers} workers)")
        c0 = cpu_seconds()
        timings["finetune_runs_s"] = run_all([c[0] for c in configs.values()], args.workers)
        timings["finetune_runs_cpu_s"] = cpu_seconds() - c0
        log(f"runs done in {timings['finetune_runs_s']:.0f} s")
        timings_path.write_text(json.dumps(timings))
    t1, c1 = time.perf_counter(), cpu_seconds()
    analyse(args.work, configs, paths, args.out, timings)
    timings.setdefault("analysis_s", time.perf_counter() - t1)
    timings.setdefault("analysis_cpu_s", cpu_seconds() - c1)
    if not args.analyse_only:
        timings["total_s"] = time.perf_counter() - t0
        timings["total_cpu_s"] = cpu_seconds()
    timings_path.write_text(json.dumps(timings))
    log(f"done: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
