#!/usr/bin/env bash
# The GPU figures in one go, on one CUDA machine: the CUDA tests (20 s on an H200), the
# end-to-end selection of benchmarks/gpu_select.py (zoo 80 s + brute force 220 s + select
# about 160 s), then the NTK stage's cost. Measured figures: benchmarks/results/gpu/NOTE.md.
# Results (logs, select.json, summary.txt) go to ${OUT:-gpu_results}/.
# About 13 minutes in all, more than one 10-minute device call: choose steps with STEPS.
#   bash benchmarks/gpu_checks.sh
#   STEPS="cuda_tests gpu_select" bash benchmarks/gpu_checks.sh; STEPS=ntk_cost bash ...
set -u
out="${OUT:-gpu_results}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-}:$PWD/src"
py="${PYTHON:-python}"
work="${GPU_WORK:-/tmp/lensllm_gpu_select}"
steps=" ${STEPS:-cuda_tests gpu_select ntk_cost} "
run() {  # name, timeout (s), command...
  local name="$1" limit="$2"; shift 2
  [[ "$steps" == *" $name "* ]] || return 0
  echo "== $name" | tee -a "$out/summary.txt"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "exit $? after $((SECONDS - t0)) s | $(tail -n 1 "$out/$name.log")" | tee -a "$out/summary.txt"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/summary.txt"
"$py" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/summary.txt"
run cuda_tests 60 "$py" -m pytest -q -x tests/ntk_tests tests/finetune_tests/test_engine.py tests/finetune_tests/test_reuse.py \
  -k "cuda" -p no:cacheprovider
run gpu_select 480 "$py" benchmarks/gpu_select.py --work "$work"
cp "$work"/*.log "$work"/select.json "$out"/ 2>/dev/null
run ntk_cost 240 "$py" benchmarks/bench_ntk_cost.py --model 300m --device cuda \
  --skip engines,precision,curvature
