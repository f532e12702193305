#!/usr/bin/env bash
# One command for a GPU machine (bash, make, g++, nvcc; PyTorch for the comparison; no Node, no network):
#   1. builds the native core with the CUDA backend for the visible GPU (make -j, all cores),
#   2. runs every CUDA op test against the CPU reference (native/out/dbt-test-cuda),
#   3. runs the CUDA benchmarks (SD1.5 shapes) and the same shapes through PyTorch (bf16, cuDNN/cuBLAS/SDPA),
#   4. prints a table of times, PyTorch/dbt ratios and peak memory (and a markdown block for docs/perf.md).
# Usage: scripts/gpu-check.sh [--tests-only] [bench name filters...]
# Writes gpu-check.log (everything), build.log, summary.txt (one line per phase) and the raw JSON lines to
# $OUT when set, else to native/out/gpu-check/.
# Time: the whole script keeps within GPU_CHECK_BUDGET seconds (default 450, i.e. 7.5 min): each phase has
# its own cap and never eats the time reserved for the phases after it (the tests come before the benches).
# Compiler warnings do not fail this build (DBT_CUDA_WERROR=0: an unknown nvcc/g++ version must not cost
# the run); they are counted in the summary and listed in build.log.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGDIR=${OUT:-$ROOT/native/out/gpu-check}
mkdir -p "$LOGDIR"
exec > >(tee "$LOGDIR/gpu-check.log") 2>&1
TEE_PID=$!
# On exit: close our end of the pipe and let tee write the last lines before the machine is given back.
trap 'rc=$?; exec 1>&- 2>&-; wait "$TEE_PID" 2>/dev/null; exit $rc' EXIT

tests_only=0
if [[ "${1:-}" == "--tests-only" ]]; then tests_only=1; shift; fi
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH=/usr/local/cuda/bin:$PATH; fi
BUDGET=${GPU_CHECK_BUDGET:-450}
start=$SECONDS
status=0
: >"$LOGDIR/summary.txt"
phase() { echo; echo "== $* (t+$((SECONDS - start)) s of $BUDGET)"; }
note() { echo "$*" | tee -a "$LOGDIR/summary.txt"; }
left() { echo $((BUDGET - (SECONDS - start))); }
# limit CAP RESERVE: seconds a phase may run: CAP, or less so that RESERVE seconds stay for later phases.
limit() {
  local l=$(($(left) - $2))
  ((l > $1)) && l=$1
  ((l < 10)) && l=10
  echo "$l"
}
# run_for SECONDS CMD...: CMD under a time limit; sets rc (124: out of time) and took (seconds).
run_for() {
  local t0=$SECONDS
  timeout -k 5 "$@"
  rc=$?
  took=$((SECONDS - t0))
  return $rc
}

phase "machine"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed"
nvcc --version | tail -n 2 || echo "nvcc not found"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo "no PyTorch"
echo "cores: $(nproc)"
DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)
# One architecture, the GPU's: cuda.mk asks nvidia-smi too, but falls back to all five (a build several
# times longer than the budget allows) when that query fails (older drivers): ask PyTorch then.
if [[ -z "${DBT_CUDA_ARCH:-}" ]]; then
  DBT_CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d '. ')
  [[ -n "$DBT_CUDA_ARCH" ]] ||
    DBT_CUDA_ARCH=$(python3 -c 'import torch; print("%d%d" % torch.cuda.get_device_capability())' 2>/dev/null)
  export DBT_CUDA_ARCH
fi
echo "DBT_CUDA_ARCH=${DBT_CUDA_ARCH:-(unset: the build takes every architecture)}"

phase "build (make -C native -j$(nproc), CUDA for the visible GPU)"
# OUT=out on the command line: the Makefile's build directory is `OUT ?= out`, and $OUT in the environment
# (the GPU machine's output folder) would otherwise move the whole build there.
# -lineinfo: compute-sanitizer (below) names source lines; the code is the same. -allow-unsupported-compiler:
# an nvcc older than the machine's g++ refuses it outright, which would end the run at the build.
if ! DBT_CUDA=1 DBT_CUDA_WERROR=${DBT_CUDA_WERROR:-0} run_for "$(limit 300 150)" make -C native -j"$(nproc)" OUT=out \
  NVCCFLAGS="-O3 -lineinfo -allow-unsupported-compiler" cuda out/dbt-test >"$LOGDIR/build.log" 2>&1; then
  tail -n 60 "$LOGDIR/build.log"
  note "build: FAILED (exit $rc after ${took}s; 124 = out of time) - full log: $LOGDIR/build.log"
  exit 1
fi
note "build: ok (${took}s), $(grep -c 'warning' "$LOGDIR/build.log") warning lines"
grep -m1 -- "-gencode" "$LOGDIR/build.log" | sed 's/ -I.*//' || true
grep -B2 -A3 'warning' "$LOGDIR/build.log" | head -n 40 || true

phase "CUDA op tests (against the CPU reference)"
# DBT_CUDA_SYNC=1: each kernel is waited for, so an asynchronous error is reported by the op that caused it.
DBT_CUDA_SYNC=1 run_for "$(limit 200 60)" native/out/dbt-test-cuda >"$LOGDIR/tests.log" 2>&1
cat "$LOGDIR/tests.log"
if [[ $rc == 0 ]]; then
  note "tests: passed (${took}s)"
else
  status=1
  note "tests: FAILED (exit $rc after ${took}s; 124 = out of time, 2 = no usable GPU): $(grep -c '^FAIL' "$LOGDIR/tests.log") failed"
  [[ $rc == 2 ]] && exit 1
  # A sticky CUDA error (illegal address, ...) fails every later test of the process, and a crash loses
  # them: each test that did not pass runs again in its own process, and one failing with a CUDA error
  # once more under compute-sanitizer (when the toolkit has it) to name the kernel and line.
  sanitizer=$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")/compute-sanitizer
  again=()
  for t in $(grep -ho 'DBT_TEST([a-z0-9_]*)' native/test/cuda/*.cpp | sed 's/DBT_TEST(\(.*\))/\1/'); do
    grep -qE "^ok   $t " "$LOGDIR/tests.log" || again+=("$t")
  done
  note "rerun one per process: ${again[*]:-(none)}"
  for t in ${again[@]+"${again[@]}"}; do
    if (($(left) < 70)); then note "rerun: stopped, $(left) s left"; break; fi
    DBT_CUDA_SYNC=1 run_for 60 native/out/dbt-test-cuda "$t" >"$LOGDIR/rerun-$t.log" 2>&1
    if [[ $rc == 0 ]]; then
      note "rerun $t: ok alone"
      continue
    fi
    note "rerun $t: exit $rc: $(grep -m1 -A1 '^FAIL' "$LOGDIR/rerun-$t.log" | tail -n1 | cut -c1-400)"
    if grep -q "CUDA error" "$LOGDIR/rerun-$t.log" && [[ -x $sanitizer ]] && (($(left) > 100)); then
      DBT_CUDA_NO_CACHE=1 run_for 90 "$sanitizer" --tool memcheck --print-limit 4 native/out/dbt-test-cuda "$t" >"$LOGDIR/memcheck-$t.log" 2>&1
      note "memcheck $t (exit $rc): $(grep -m6 -E 'Invalid|Misaligned|Out of bounds|at .*\.cu:[0-9]+|ERROR SUMMARY' \
        "$LOGDIR/memcheck-$t.log" | tr -s ' \n' ' ' | cut -c1-600)"
    fi
  done
fi
if run_for 30 native/out/dbt-test cuda_status; then
  note "cuda_status (CPU runner): ok"
else
  status=1
  note "cuda_status (CPU runner): FAILED (exit $rc)"
fi

if [[ $tests_only == 1 ]]; then
  phase "done: $([[ $status == 0 ]] && echo "tests passed" || echo "TESTS FAILED"), log in $LOGDIR/gpu-check.log"
  exit $status
fi
if (($(left) < 40)); then
  note "benchmarks: skipped ($(left) s left of the budget)"
  exit $status
fi

phase "dbt benchmarks"
run_for "$(limit 100 45)" native/out/dbt-bench-cuda --json "$@" >"$LOGDIR/dbt-bench.jsonl"
note "dbt benchmarks: exit $rc after ${took}s, $(grep -c '"ms"' "$LOGDIR/dbt-bench.jsonl") cases timed"

phase "PyTorch on the same shapes"
PYTHONPATH="$ROOT/scripts/torch_ref" run_for "$(limit 100 5)" python3 scripts/torch_ref/bench_torch.py \
  "$LOGDIR/dbt-bench.jsonl" >"$LOGDIR/torch-bench.jsonl"
note "PyTorch benchmarks: exit $rc after ${took}s, $(grep -c '"ms"' "$LOGDIR/torch-bench.jsonl") cases timed"

phase "report"
python3 scripts/torch_ref/report.py "$LOGDIR/dbt-bench.jsonl" "$LOGDIR/torch-bench.jsonl" "$DEVICE"

phase "done: $([[ $status == 0 ]] && echo "tests passed" || echo "TESTS FAILED"), log in $LOGDIR/gpu-check.log"
cat "$LOGDIR/summary.txt"
exit $status
