#!/usr/bin/env bash
# The GPU figures of issue 25 in one go, on one CUDA machine (about 12 minutes on an H200):
# the CUDA tests, then each benchmark's GPU shape. Results go to ${OUT:-gpu_results}/.
#   bash benchmarks/gpu_checks.sh
set -u
out="${OUT:-gpu_results}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="${PYTHONPATH:-}:$PWD/src"
py="${PYTHON:-python}"
run() {  # name, timeout (s), command...
  local name="$1" limit="$2"; shift 2
  echo "== $name" | tee -a "$out/summary.txt"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "exit $? | $(tail -n 1 "$out/$name.log")" | tee -a "$out/summary.txt"
}
run cuda_tests 180 "$py" -m pytest -q -x tests/ntk_tests tests/finetune_tests/test_engine.py tests/finetune_tests/test_reuse.py \
  -k "cuda" -p no:cacheprovider
run ntk_cost 150 "$py" benchmarks/bench_ntk_cost.py --model 300m --device cuda \
  --skip engines,precision,curvature
run run_overhead 120 "$py" benchmarks/bench_run_overhead.py --model 300m --device cuda
run throughput_seq2seq 120 "$py" benchmarks/bench_train_throughput.py --device cuda \
  --model 300m --task seq2seq --vocab 262144 --repeats 2
run gpu_select 480 "$py" benchmarks/gpu_select.py --work "$out/gpu_select"
