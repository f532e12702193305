// GEMM on SD1.5 linear-layer shapes. "gemm MxNxK" = [M,K] @ [N,K]^T (the linear layout).
#include "bench_cases.h"
#include "ops/gemm.h"

namespace dbt::bench {
namespace {

Case linear_case(int64_t M, int64_t N, int64_t K) {
  return Case{"gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K),
              2.0 * M * N * K, [=] {
                Tensor x = filled({M, K}, 1), w = filled({N, K}, 2), y = Tensor::empty({M, N});
                return std::function<void()>([=]() mutable { ops::linear_forward(x, w, nullptr, y); });
              }};
}

Registrar r1(linear_case(4096, 320, 320));
Registrar r2(linear_case(1024, 640, 2560));
Registrar r3(linear_case(1024, 5120, 640));
Registrar r4(linear_case(4096, 320, 768));

}  // namespace
}  // namespace dbt::bench
