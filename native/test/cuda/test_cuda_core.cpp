// CUDA backend basics: the device is there, fill/copy/cast agree with the CPU bit for bit, the caching
// allocator reuses and counts, out-of-memory and CUDA errors are clear errors and leave the engine usable.
#include <cmath>
#include <cstring>

#include "allocator.h"
#include "core/allocator.h"
#include "core/backends.h"
#include "cuda_util.h"
#include "runtime.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

DBT_TEST(cuda_device_is_available) {
  CudaStatus s = cuda_status();
  EXPECT_TRUE(s.built, "this runner needs a build with the CUDA backend");
  EXPECT_TRUE(s.available, "CUDA unavailable: " + s.reason);
  const cuda::DeviceProps& d = cuda::device();
  std::printf("     device cuda:%d %s, sm_%d, %d SMs, %.1f GiB, built for %s\n", d.index, d.name.c_str(), d.cc(), d.sms,
              double(d.total_memory) / (1 << 30), s.archs.c_str());
}

DBT_TEST(cuda_fill_matches_cpu_bits) {
  for (DType dt : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i32, DType::u8})
    for (double v : {2.5, -3.75, 1e6, -1e10, 300.7, 0.1}) {
      Tensor dev = Tensor::empty({1000}, dt, Device::cuda);
      ops::fill(dev, v);
      Tensor want = Tensor::empty({1000}, dt);
      ops::fill(want, v);
      expect_equal_bits(download_raw(dev), want, tag(dt) + "fill " + std::to_string(v));
    }
}

DBT_TEST(cuda_copy_round_trips_views_and_device_copies) {
  Tensor h = rnd({6, 7, 5}, 1);
  Tensor d = upload(h, DType::f32);
  expect_equal_bits(download_raw(d), h, "host -> device -> host");
  Tensor d2 = Tensor::empty({6, 7, 5}, DType::f32, Device::cuda);
  ops::copy(d, d2);
  expect_equal_bits(download_raw(d2), h, "device -> device");
  // A slice has a byte offset into its storage.
  Tensor part = Tensor::empty({2, 7, 5});
  ops::copy(d.slice(3, 5), part);
  EXPECT_TRUE(std::memcmp(part.raw(), h.slice(3, 5).raw(), part.nbytes()) == 0, "slice copied");
  Tensor hz = Tensor::zeros({2, 7, 5});
  Tensor dz = d.slice(1, 3);
  ops::copy(hz, dz);  // host -> device view
  Tensor back = download_raw(d);
  for (int64_t i = 0; i < back.numel(); i++) {
    bool zeroed = i >= 35 && i < 105;
    EXPECT_TRUE(zeroed ? get(back, i) == 0.0 : get(back, i) == get(h, i), "write through a device view");
  }
}

DBT_TEST(cuda_cast_matches_cpu_bits_for_every_pair) {
  // Edge values: rounding ties, f16 overflow and subnormals, integer saturation, negative zero, infinities.
  std::vector<float> vals = {0.0f,     -0.0f,  1.0f,      -1.5f,   2.5f,    3.5f,     255.49f, 255.5f, 256.7f,
                             -0.7f,    1e-8f,  6.1e-5f,   65504.f, 65519.f, 65520.f,  1e6f,    -1e6f,  3e9f,
                             -3e9f,    1e-40f, 0.33333f,  INFINITY, -INFINITY, 1.00390625f, 1.01171875f, 77.0f};
  Rng r(5);
  while (vals.size() < 4099) vals.push_back(float(r.uniform(-400, 400)));
  Tensor base = Tensor::empty({int64_t(vals.size())});
  std::memcpy(base.raw(), vals.data(), vals.size() * 4);
  const DType all[] = {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i32, DType::u8};
  for (DType s : all) {
    Tensor src = Tensor::empty(base.shape(), s);
    ops::cast(base, src);  // CPU
    Tensor dsrc = Tensor::empty(base.shape(), s, Device::cuda);
    ops::copy(src, dsrc);
    for (DType d : all) {
      Tensor want = Tensor::empty(base.shape(), d);
      ops::cast(src, want);
      Tensor got = Tensor::empty(base.shape(), d, Device::cuda);
      // Poisoned like every output (0xA5 bytes: NaN fill would be 0 in the integer types, a value the casts
      // produce); a cached block could otherwise still hold an earlier cast's result.
      cuda::check(cudaMemsetAsync(got.raw(), 0xA5, got.nbytes(), cuda::stream()), "poison");
      ops::cast(dsrc, got);
      expect_equal_bits(download_raw(got), want, std::string("cast ") + dtype_name(s) + " -> " + dtype_name(d));
    }
  }
}

DBT_TEST(cuda_allocator_reuses_blocks_and_counts) {
  for (size_t b : {size_t(0), size_t(1), size_t(512), size_t(513), size_t(1) << 20, (size_t(1) << 20) + 1,
                   size_t(3) << 27, size_t(123456789)}) {
    size_t c = cuda::allocation_class(b);
    EXPECT_TRUE(c >= b && c % 512 == 0 && c <= b + b / 8 + 512, "size class of " + std::to_string(b));
    EXPECT_TRUE(cuda::allocation_class(c) == c, "a class is its own class");
  }
  Allocator& a = allocator(Device::cuda);
  a.release_cached();
  AllocStats s0 = a.stats();
  {
    Tensor t = Tensor::empty({1000, 1000}, DType::f32, Device::cuda);
    AllocStats s1 = a.stats();
    EXPECT_TRUE(s1.current == s0.current + 4000000 && s1.live == s0.live + 1, "counted");
    EXPECT_TRUE(s1.reserved >= s0.reserved + 4000000, "reserved grows");
  }
  AllocStats s2 = a.stats();
  EXPECT_TRUE(s2.current == s0.current && s2.reserved > s0.reserved, "freed block stays cached");
  {
    Tensor t = Tensor::empty({4000000}, DType::u8, Device::cuda);  // same class: reuses the block
    EXPECT_TRUE(a.stats().reserved == s2.reserved, "cached block reused");
  }
  EXPECT_TRUE(a.stats().peak >= s0.current + 4000000, "peak recorded");
  a.release_cached();
  EXPECT_TRUE(a.stats().reserved == s0.reserved, "release gives the cache back");
}

DBT_TEST(cuda_out_of_memory_is_an_error_and_the_engine_survives) {
  expect_throws<OutOfMemoryError>([] { Tensor::empty({int64_t(1) << 40}, DType::f32, Device::cuda); },
                                  "out of memory on cuda:", "4 TiB request");
  expect_throws<OutOfMemoryError>([] { Tensor::empty({int64_t(1) << 40}, DType::f32, Device::cuda); }, "free of",
                                  "device figures in the message");
  Tensor t = Tensor::empty({1024}, DType::f32, Device::cuda);
  ops::fill(t, 1.5);
  EXPECT_TRUE(get(download_raw(t), 1023) == 1.5, "usable after OOM");
}

DBT_TEST(cuda_errors_are_values_and_the_engine_survives) {
  expect_throws<cuda::CudaError>([] { cuda::check(cudaErrorInvalidValue, "probe_op", "x [2] f32"); },
                                 "probe_op: CUDA error cudaErrorInvalidValue", "non-sticky error");
  Tensor t64 = Tensor::empty({4}, DType::f64, Device::cuda);
  expect_throws<OpError>([&] { ops::axpby(1.0f, t64, 0.0f, t64); }, "CUDA kernels take f32, f16 or bf16, got f64",
                         "f64 op on the GPU");
  Tensor a = Tensor::empty({3}, DType::f32, Device::cuda), h = Tensor::empty({3});
  expect_throws<OpError>([&] { ops::axpby(1.0f, a, 0.0f, h); }, "different devices", "mixed devices");
  Tensor t = Tensor::empty({16}, DType::f32, Device::cuda);
  ops::fill(t, 2.0);
  cuda::synchronize("after errors");
  EXPECT_TRUE(get(download_raw(t), 0) == 2.0, "usable after errors");
}
