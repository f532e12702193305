// Start-up of the compiled-in backends. The CPU needs nothing; a build with DBT_WITH_CUDA defined calls
// dbt::cuda::register_backend(), which installs the CUDA allocator and registers its kernels in the op
// tables (and returns false when no device is usable, leaving the CPU as the only device).
#pragma once

namespace dbt {

// Idempotent and thread-safe; called by the addon, the test runner and the benchmarks at start.
void init_backends();

#ifdef DBT_WITH_CUDA
namespace cuda {
bool register_backend();
}
#endif

}  // namespace dbt
