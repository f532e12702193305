// Entry of dbt-test-cuda: refuses to run (exit 2, one clear line) when no usable GPU is present, so a
// missing driver is not reported as dozens of failing tests; otherwise runs the shared test harness.
#include <cstdio>

#include "core/backends.h"

int dbt_harness_main(int argc, char** argv);  // test/harness.cpp compiled with -Dmain=dbt_harness_main

int main(int argc, char** argv) {
  dbt::CudaStatus s = dbt::cuda_status();
  if (!s.available) {
    std::printf("dbt-test-cuda: CUDA is unavailable: %s\n", s.reason.c_str());
    return 2;
  }
  return dbt_harness_main(argc, argv);
}
