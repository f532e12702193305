// Fast fill/copy/cast: typed loops split over threads in fixed chunks.
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "ops/tensor_ops.h"

namespace dbt::ops::ref {
double load_as_double(const Tensor& t, int64_t i);
void store_from_double(Tensor& t, int64_t i, double v);
}  // namespace dbt::ops::ref

namespace dbt::ops::cpu {
namespace {
constexpr int64_t kGrain = 1 << 16;

template <class T> void fill_t(Tensor& t, T v) {
  T* p = t.data<T>();
  parallel_for(t.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) p[i] = v;
  });
}

template <class S, class D, class F> void convert(const Tensor& src, Tensor& dst, F f) {
  const S* s = src.data<S>();
  D* d = dst.data<D>();
  parallel_for(src.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) d[i] = f(s[i]);
  });
}
}  // namespace

void fill(Tensor& t, double value) {
  switch (t.dtype()) {
    case DType::f32: fill_t<float>(t, float(value)); break;
    case DType::f64: fill_t<double>(t, value); break;
    case DType::f16: fill_t<f16_t>(t, f32_to_f16(float(value))); break;
    case DType::bf16: fill_t<bf16_t>(t, f32_to_bf16(float(value))); break;
    default: {
      // integer fills: convert once through the reference rule, then broadcast the bytes
      Tensor one = Tensor::empty(Shape{1}, t.dtype());
      ref::store_from_double(one, 0, value);
      if (t.dtype() == DType::i32) fill_t<int32_t>(t, one.data<int32_t>()[0]);
      else fill_t<uint8_t>(t, one.data<uint8_t>()[0]);
    }
  }
}

void copy(const Tensor& src, Tensor& dst) {
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(dst.raw());
  if (s == d) return;
  std::memmove(d, s, src.nbytes());
}

void cast(const Tensor& src, Tensor& dst) {
  DType a = src.dtype(), b = dst.dtype();
  if (a == b) return copy(src, dst);
  if (a == DType::f32 && b == DType::f16) return convert<float, f16_t>(src, dst, f32_to_f16);
  if (a == DType::f32 && b == DType::bf16) return convert<float, bf16_t>(src, dst, f32_to_bf16);
  if (a == DType::f16 && b == DType::f32) return convert<f16_t, float>(src, dst, f16_to_f32);
  if (a == DType::bf16 && b == DType::f32) return convert<bf16_t, float>(src, dst, bf16_to_f32);
  if (a == DType::f16 && b == DType::bf16)
    return convert<f16_t, bf16_t>(src, dst, [](f16_t h) { return f32_to_bf16(f16_to_f32(h)); });
  if (a == DType::bf16 && b == DType::f16)
    return convert<bf16_t, f16_t>(src, dst, [](bf16_t h) { return f32_to_f16(bf16_to_f32(h)); });
  if (a == DType::f32 && b == DType::f64) return convert<float, double>(src, dst, [](float v) { return double(v); });
  if (a == DType::f64 && b == DType::f32) return convert<double, float>(src, dst, [](double v) { return float(v); });
  // Integer conversions are rare (ids, masks): the element-wise rule of the reference.
  parallel_for(src.numel(), kGrain, [&](int64_t b0, int64_t e0) {
    for (int64_t i = b0; i < e0; i++) ref::store_from_double(dst, i, ref::load_as_double(src, i));
  });
}

void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key) {
  const float* s = src.data<float>();
  bf16_t* d = dst.data<bf16_t>();
  const int64_t n = src.numel();
  parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      const Philox4 r = sr_block(key, b);
      for (int64_t j = 0; j < 4 && b * 4 + j < n; j++) {
        uint32_t u;
        std::memcpy(&u, s + b * 4 + j, 4);
        d[b * 4 + j] = bf16_t{f32_bits_to_bf16_sr(u, r.v[j])};
      }
    }
  });
}

}  // namespace dbt::ops::cpu
