#!/usr/bin/env bash
# The GPU figures in one go, on one CUDA machine (under 10 minutes on an H200): the CUDA
# tests, the end-to-end selection of benchmarks/gpu_select.py, then the NTK stage's cost.
# Results (logs, select.json, summary.txt) go to ${OUT:-gpu_results}/.
#   bash benchmarks/gpu_checks.sh
set -u
out="${OUT:-gpu_results}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-}:$PWD/src"
py="${PYTHON:-python}"
work="${GPU_WORK:-/tmp/lensllm_gpu_select}"
run() {  # name, timeout (s), command...
  local name="$1" limit="$2"; shift 2
  echo "== $name" | tee -a "$out/summary.txt"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "exit $? after $((SECONDS - t0)) s | $(tail -n 1 "$out/$name.log")" | tee -a "$out/summary.txt"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/summary.txt"
"$py" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/summary.txt"
run cuda_tests 110 "$py" -m pytest -q -x tests/ntk_tests tests/finetune_tests/test_engine.py tests/finetune_tests/test_reuse.py \
  -k "cuda" -p no:cacheprovider
run gpu_select 330 "$py" benchmarks/gpu_select.py --work "$work"
cp "$work"/*.log "$work"/select.json "$out"/ 2>/dev/null
run ntk_cost 90 "$py" benchmarks/bench_ntk_cost.py --model 300m --device cuda \
  --skip engines,precision,curvature
