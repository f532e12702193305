#include "nn/tensor_util.h"

#include <string>

#include "core/thread_pool.h"
#include "ops/shape_ops.h"

namespace dbt::nn {
namespace {

void require_cpu_float(const Tensor& t, const char* what) {
  if (!t.is_cpu() || (t.dtype() != DType::f32 && t.dtype() != DType::f64))
    throw Error(std::string(what) + ": expected an f32 or f64 CPU tensor, got " + t.desc());
}

template <class F>
void float_switch(DType dt, F&& f) {
  if (dt == DType::f64) f(double{});
  else f(float{});
}

}  // namespace

Tensor to_tokens(const Tensor& x) {
  require_cpu_float(x, "to_tokens");
  const int64_t N = x.dim(0), C = x.dim(1), S = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty({N, S, C}, x.dtype());
  float_switch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    parallel_for(N * S, 256, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        const int64_t n = i / S, s = i % S;
        for (int64_t c = 0; c < C; c++) dst[i * C + c] = src[(n * C + c) * S + s];
      }
    });
  });
  return y;
}

Tensor from_tokens(const Tensor& t, int64_t h, int64_t w) {
  require_cpu_float(t, "from_tokens");
  const int64_t N = t.dim(0), S = t.dim(1), C = t.dim(2);
  if (S != h * w) throw Error("from_tokens: " + t.desc() + " is not " + std::to_string(h) + "x" + std::to_string(w));
  Tensor y = Tensor::empty({N, C, h, w}, t.dtype());
  float_switch(t.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* src = t.data<T>();
    T* dst = y.data<T>();
    parallel_for(N * C, 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        const int64_t n = i / C, c = i % C;
        for (int64_t s = 0; s < S; s++) dst[i * S + s] = src[(n * S + s) * C + c];
      }
    });
  });
  return y;
}

Tensor slice_channels(const Tensor& x, int64_t from, int64_t to) {
  Tensor y = Tensor::empty({x.dim(0), to - from, x.dim(2), x.dim(3)}, x.dtype(), x.device());
  ops::split(x, 1, {from, to - from, x.dim(1) - to}, {nullptr, &y, nullptr});
  return y;
}

}  // namespace dbt::nn
