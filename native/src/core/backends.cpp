#include "core/backends.h"

#include <mutex>

namespace dbt {

void init_backends() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef DBT_WITH_CUDA
    cuda::register_backend();
#endif
  });
}

}  // namespace dbt
