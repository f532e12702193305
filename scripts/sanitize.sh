#!/usr/bin/env bash
# ASan + UBSan build of the native test runner, then a run of it. One command, no Node needed:
#   scripts/sanitize.sh [test-name filters…]
# Builds into native/out/asan (separate from the normal build). Uses 2 threads and the portable and
# SIMD paths alike (the tests loop over every SIMD level the CPU has).
set -euo pipefail
cd "$(dirname "$0")/../native"
make -j"${DBT_BUILD_JOBS:-2}" OUT=out/asan SANITIZE=1 OPT=-O1 out/asan/dbt-test
# allocator_may_return_null: the out-of-memory test asks for 4 TiB and expects an error, not an abort
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
exec out/asan/dbt-test "$@"
