#include "core/backends.h"

#include <mutex>

#include "core/error.h"

namespace dbt {

void init_backends() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef DBT_WITH_CUDA
    cuda::register_backend();
#endif
  });
}

CudaStatus cuda_status() {
  init_backends();
#ifdef DBT_WITH_CUDA
  return cuda::status();
#else
  CudaStatus s;
  s.reason = "this build has no CUDA backend (nvcc was not found when it was built, or DBT_CUDA=0)";
  return s;
#endif
}

void cuda_select_device(int index) {
  init_backends();
#ifdef DBT_WITH_CUDA
  cuda::select_device(index);
#else
  throw Error("cuda:" + std::to_string(index) + " is unavailable: " + cuda_status().reason);
#endif
}

}  // namespace dbt
