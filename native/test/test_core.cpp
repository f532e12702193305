// Core: tensors, allocator statistics, errors, thread pool, f16/bf16 conversions, casts.
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/allocator.h"
#include "core/thread_pool.h"
#include "harness.h"
#include "ops/tensor_ops.h"

using namespace dbt;
using namespace dbt::test;

DBT_TEST(tensor_views_share_storage_and_stats_return_to_baseline) {
  AllocStats before = allocator(Device::cpu).stats();
  {
    Tensor t = Tensor::zeros({4, 3, 2});
    EXPECT_TRUE(t.numel() == 24 && t.nbytes() == 96, t.desc());
    Tensor v = t.view({12, 2});
    Tensor s = t.slice(1, 3);
    EXPECT_TRUE(s.shape() == Shape({2, 3, 2}), s.desc());
    s.data<float>()[0] = 5.0f;
    EXPECT_TRUE(t.data<float>()[6] == 5.0f, "slice writes through");
    EXPECT_TRUE(v.data<float>()[6] == 5.0f, "view writes through");
    EXPECT_TRUE(t.use_count() == 3, "three handles");
    AllocStats mid = allocator(Device::cpu).stats();
    EXPECT_TRUE(mid.current == before.current + 96 && mid.live == before.live + 1, "one allocation of 96 bytes");
  }
  AllocStats after = allocator(Device::cpu).stats();
  EXPECT_TRUE(after.current == before.current && after.live == before.live, "memory back to baseline");
  EXPECT_TRUE(after.peak >= before.current + 96, "peak recorded");
}

DBT_TEST(tensor_errors_name_shapes) {
  Tensor t = Tensor::zeros({2, 3});
  expect_throws<Error>([&] { t.view({4, 2}); }, "cannot view tensor [2,3] f32 as [4,2]", "view");
  expect_throws<Error>([&] { t.slice(1, 3); }, "out of range", "slice");
  expect_throws<Error>([&] { t.data<int32_t>(); }, "accessed as i32", "dtype access");
  expect_throws<Error>([&] { Shape({1, 2, 3, 4, 5, 6}); }, "at most 5", "6 dims");
  if (!has_allocator(Device::cuda))  // GPU machines: see test_cuda_backend.cpp
    expect_throws<Error>([&] { Tensor::empty({2}, DType::f32, Device::cuda); }, "no cuda backend", "no cuda");
  Tensor u;
  expect_throws<Error>([&] { u.raw(); }, "undefined", "undefined tensor");
}

DBT_TEST(allocation_failure_is_an_error_with_figures) {
  expect_throws<OutOfMemoryError>([] { Tensor::empty({1 << 20, 1 << 20}); }, "tried to allocate 4096.00 GiB", "4 TiB");
  AllocStats s = allocator(Device::cpu).stats();
  Tensor t = Tensor::zeros({4});  // still usable afterwards
  EXPECT_TRUE(allocator(Device::cpu).stats().live == s.live + 1, "allocator still works");
}

DBT_TEST(thread_pool_covers_range_and_rethrows) {
  for (int64_t n : {0, 1, 7, 1000}) {
    std::vector<std::atomic<int>> hits(size_t(n + 1));
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) hits[size_t(i)]++;
    });
    for (int64_t i = 0; i < n; i++) EXPECT_TRUE(hits[size_t(i)] == 1, "each index once");
  }
  expect_throws<std::runtime_error>(
      [] {
        parallel_for(100, 1, [](int64_t b, int64_t) {
          if (b > 0) throw std::runtime_error("worker failed");
        });
      },
      "worker failed", "exception from a worker");
  // nested calls run inline
  std::atomic<int> total{0};
  parallel_for(4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) parallel_for(10, 1, [&](int64_t b2, int64_t e2) { total += int(e2 - b2); });
  });
  EXPECT_TRUE(total == 40, "nested total");
}

DBT_TEST(f16_conversion_round_trips_every_value) {
  for (uint32_t bits = 0; bits < 65536; bits++) {
    f16_t h{uint16_t(bits)};
    float f = f16_to_f32(h);
    uint16_t back = f32_to_f16(f).bits;
    if (std::isnan(f)) EXPECT_TRUE((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN stays NaN");
    else EXPECT_TRUE(back == bits, "f16 -> f32 -> f16 identity at " + std::to_string(bits));
    bf16_t b{uint16_t(bits)};
    float g = bf16_to_f32(b);
    if (!std::isnan(g)) EXPECT_TRUE(f32_to_bf16(g).bits == bits, "bf16 identity at " + std::to_string(bits));
  }
}

DBT_TEST(f16_and_bf16_round_to_nearest_even) {
  // Against a brute-force nearest search over all finite f16 values (ties to even mantissa).
  Rng r(5);
  for (int it = 0; it < 20000; it++) {
    float f = float(r.uniform(-1, 1) * std::pow(2.0, double(r.below(40)) - 26));
    uint16_t got = f32_to_f16(f).bits;
    double best = 1e300;
    uint16_t want = 0;
    for (uint32_t bits = 0; bits < 0x7c00; bits++) {
      uint16_t cand = uint16_t(bits | (f < 0 ? 0x8000 : 0));
      double d = std::fabs(double(f16_to_f32(f16_t{cand})) - double(f));
      if (d < best || (d == best && (cand & 1) == 0)) {
        best = d;
        want = cand;
      }
    }
    if (f == 0.0f) continue;
    EXPECT_TRUE(got == want || (std::fabs(double(f)) < 1e-7 && (got & 0x7fff) == (want & 0x7fff)),
                "f16 of " + std::to_string(f));
    if (it > 2000) break;  // the brute force is slow; 2000 values cover normals and subnormals
  }
  EXPECT_TRUE(f32_to_f16(65520.0f).bits == 0x7c00, "65520 rounds to inf");
  EXPECT_TRUE(f32_to_f16(65519.0f).bits == 0x7bff, "65519 rounds to max");
  EXPECT_TRUE(f32_to_bf16(1.00390625f).bits == 0x3f80, "bf16 tie to even (down)");
  EXPECT_TRUE(f32_to_bf16(1.01171875f).bits == 0x3f82, "bf16 tie to even (up)");
  EXPECT_TRUE(std::isinf(bf16_to_f32(f32_to_bf16(3.4e38f))), "bf16 overflow to inf");
}

DBT_TEST(cast_fast_matches_reference_all_float_pairs) {
  const DType types[] = {DType::f32, DType::f16, DType::bf16, DType::f64};
  Tensor base = rand_tensor({3, 37, 11}, 9, -300, 300);
  set(base, 0, std::nan(""));
  set(base, 1, 1e6);  // overflows f16
  for (DType a : types)
    for (DType b : types) {
      Tensor src = Tensor::empty(base.shape(), a);
      ops::ref::cast(base, src);
      Tensor got = Tensor::empty(base.shape(), b), want = Tensor::empty(base.shape(), b);
      ops::cast(src, got);
      ops::ref::cast(src, want);
      std::string what = std::string("cast ") + dtype_name(a) + " -> " + dtype_name(b);
      for (int64_t i = 0; i < got.numel(); i++) {
        double g = get(got, i), w = get(want, i);
        EXPECT_TRUE((std::isnan(g) && std::isnan(w)) || g == w, what + " at " + std::to_string(i));
      }
    }
  Tensor i = Tensor::empty({3}, DType::i32), f = rand_tensor({3}, 1, 0, 1);
  set(f, 0, -2.7);
  set(f, 1, 3.9);
  ops::cast(f, i);
  EXPECT_TRUE(i.data<int32_t>()[0] == -2 && i.data<int32_t>()[1] == 3, "float -> i32 truncates");
}

DBT_TEST(fill_and_copy) {
  for (DType d : {DType::f32, DType::f16, DType::bf16, DType::i32, DType::u8, DType::f64}) {
    Tensor t = Tensor::empty({5, 7}, d);
    ops::fill(t, 3.0);
    for (int64_t i = 0; i < t.numel(); i++) EXPECT_TRUE(get(t, i) == 3.0, std::string("fill ") + dtype_name(d));
    Tensor c = Tensor::empty({35}, d);
    ops::copy(t, c);
    EXPECT_TRUE(std::memcmp(c.raw(), t.raw(), t.nbytes()) == 0, "copy");
  }
  Tensor a = Tensor::empty({3}), b = Tensor::empty({4});
  expect_throws<OpError>([&] { ops::copy(a, b); }, "copy: src and dst must have the same number of elements", "copy numel");
}
