#!/usr/bin/env bash
# One command for a GPU machine (nvcc and PyTorch present; Node and network not needed):
#   1. builds the native core with the CUDA backend for the visible GPU (make, all cores),
#   2. runs every CUDA op test against the CPU reference (native/out/dbt-test-cuda),
#   3. runs the CUDA benchmarks (SD1.5 shapes) and the same shapes through PyTorch (bf16, cuDNN/cuBLAS/SDPA),
#   4. prints a table of times, PyTorch/dbt ratios and peak memory (and a markdown block for docs/perf.md).
# Usage: scripts/gpu-check.sh [--tests-only] [bench name filters...]
# Writes gpu-check.log and the raw JSON lines to $OUT when set, else to native/out/gpu-check/.
# Designed to finish in well under 8 minutes on an H100; each phase has its own time limit.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGDIR=${OUT:-$ROOT/native/out/gpu-check}
mkdir -p "$LOGDIR"
exec > >(tee "$LOGDIR/gpu-check.log") 2>&1

tests_only=0
if [[ "${1:-}" == "--tests-only" ]]; then tests_only=1; shift; fi
start=$SECONDS
status=0
phase() { echo; echo "== $* (t+$((SECONDS - start)) s)"; }

phase "machine"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed"
nvcc --version | tail -n 2
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo "no PyTorch"
DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)

phase "build (make -C native, CUDA for the visible GPU)"
if ! DBT_CUDA=1 timeout 300 make -C native -j"$(nproc)" cuda out/dbt-test >"$LOGDIR/build.log" 2>&1; then
  tail -n 60 "$LOGDIR/build.log"
  echo "gpu-check: build failed (full log: $LOGDIR/build.log)"
  exit 1
fi
grep -m1 -- "-gencode" "$LOGDIR/build.log" | sed 's/ -I.*//' || true

phase "CUDA op tests (against the CPU reference)"
if ! timeout 240 native/out/dbt-test-cuda; then status=1; echo "gpu-check: CUDA tests FAILED"; fi
timeout 60 native/out/dbt-test cuda_status || status=1

if [[ $tests_only == 1 ]]; then exit $status; fi

phase "dbt benchmarks"
timeout 200 native/out/dbt-bench-cuda --json "$@" >"$LOGDIR/dbt-bench.jsonl"
echo "dbt-bench-cuda exit $?; $(grep -c '"ms"' "$LOGDIR/dbt-bench.jsonl") cases timed"

phase "PyTorch on the same shapes"
PYTHONPATH="$ROOT/scripts/torch_ref" timeout 200 python3 scripts/torch_ref/bench_torch.py "$LOGDIR/dbt-bench.jsonl" \
  >"$LOGDIR/torch-bench.jsonl" || echo "gpu-check: PyTorch benchmarks incomplete (exit $?)"

phase "report"
python3 scripts/torch_ref/report.py "$LOGDIR/dbt-bench.jsonl" "$LOGDIR/torch-bench.jsonl" "$DEVICE"

phase "done: $([[ $status == 0 ]] && echo "tests passed" || echo "TESTS FAILED"), log in $LOGDIR/gpu-check.log"
exit $status
