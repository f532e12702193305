// The CUDA backend as every build sees it: with or without CUDA compiled in, with or without a GPU, the
// status is consistent and CUDA tensors either work or fail with a clear error. (The CUDA op tests are
// in test/cuda/, run on GPU machines by scripts/gpu-check.sh.)
#include "core/allocator.h"
#include "core/backends.h"
#include "harness.h"
#include "ops/tensor_ops.h"

using namespace dbt;
using namespace dbt::test;

DBT_TEST(cuda_status_is_consistent_with_the_build) {
  CudaStatus s = cuda_status();
#ifdef DBT_WITH_CUDA
  EXPECT_TRUE(s.built, "built with DBT_WITH_CUDA");
  EXPECT_TRUE(!s.archs.empty(), "compiled architectures listed");
#else
  EXPECT_TRUE(!s.built && !s.available, "CPU-only build");
  EXPECT_TRUE(s.reason.find("no CUDA backend") != std::string::npos, s.reason);
#endif
  EXPECT_TRUE(s.available == has_allocator(Device::cuda), "available exactly when cuda tensors can be made");
  if (!s.available) {
    EXPECT_TRUE(s.reason.size() > 10 && s.device == -1, "unavailable with a reason: " + s.reason);
    expect_throws<Error>([] { Tensor::empty({2}, DType::f32, Device::cuda); }, "cuda", "cuda tensor without CUDA");
    expect_throws<Error>([] { cuda_select_device(0); }, "unavailable", "selecting a device without CUDA");
  } else {
    EXPECT_TRUE(s.device >= 0 && s.device < int(s.devices.size()), "selected device listed");
    Tensor h = rand_tensor({5, 3}, 1), back = Tensor::empty({5, 3});
    Tensor d = Tensor::empty({5, 3}, DType::f32, Device::cuda);
    ops::copy(h, d);
    ops::copy(d, back);
    expect_equal_bits(back, h, "host -> cuda -> host");
    expect_throws<Error>([&] { cuda_select_device(int(s.devices.size())); }, "does not exist", "bad index");
  }
}
