// Start-up of the compiled-in backends. The CPU needs nothing; a build with DBT_WITH_CUDA defined calls
// dbt::cuda::register_backend(), which installs the CUDA allocator and registers its kernels in the op
// tables (and returns false when no device is usable, leaving the CPU as the only device).
#pragma once
#include <string>
#include <vector>

namespace dbt {

// Idempotent and thread-safe; called by the addon, the test runner and the benchmarks at start.
void init_backends();

// What the CUDA backend found (plain C++, usable without CUDA headers; filled in every build).
struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  size_t total_memory = 0;   // bytes
};
struct CudaStatus {
  bool built = false;      // this build has the CUDA backend
  bool available = false;  // a usable device was found (ops on Device::cuda work)
  std::string reason;      // why it is unavailable (empty when available)
  std::string archs;       // compute capabilities compiled in, e.g. "75 80 86 89 90 (+PTX 90)"
  int device = -1;         // the device ops run on (index into devices)
  int runtime_version = 0, driver_version = 0;  // e.g. 13000
  std::vector<CudaDeviceInfo> devices;
};
CudaStatus cuda_status();  // calls init_backends() first
// Chooses the CUDA device ops run on (cuda:N); only before the first CUDA allocation or launch.
// Throws Error when CUDA is unavailable or the index does not exist.
void cuda_select_device(int index);

#ifdef DBT_WITH_CUDA
namespace cuda {
bool register_backend();
CudaStatus status();
void select_device(int index);
}  // namespace cuda
#endif

}  // namespace dbt
