// Data-movement references: element loops (byte copies for concat/split, any dtype).
#include <cstring>
#include <vector>

#include "ops/ref/ref_util.h"
#include "ops/shape_ops.h"

namespace dbt::ops::ref {
namespace {

template <class T> void up_fwd(const Tensor& x, Tensor& y) {
  const int64_t NC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t p = 0; p < NC; p++)
    for (int64_t i = 0; i < 2 * H; i++)
      for (int64_t j = 0; j < 2 * W; j++) Y[(p * 2 * H + i) * 2 * W + j] = X[(p * H + i / 2) * W + j / 2];
}

template <class T> void up_bwd(const Tensor& dy, Tensor& dx) {
  const int64_t NC = dx.dim(0) * dx.dim(1), H = dx.dim(2), W = dx.dim(3);
  const T* DY = dy.data<T>();
  T* DX = dx.data<T>();
  for (int64_t p = 0; p < NC; p++)
    for (int64_t i = 0; i < H; i++)
      for (int64_t j = 0; j < W; j++) {
        double s = 0;
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++) s += double(DY[(p * 2 * H + 2 * i + a) * 2 * W + 2 * j + b]);
        DX[(p * H + i) * W + j] = T(s);
      }
}

}  // namespace

void upsample_nearest2x_forward(const Tensor& x, Tensor& y) {
  switch (x.dtype()) {
    case DType::f32: return up_fwd<float>(x, y);
    case DType::f64: return up_fwd<double>(x, y);
    case DType::i32: return up_fwd<int32_t>(x, y);
    case DType::u8: return up_fwd<uint8_t>(x, y);
    case DType::f16: return up_fwd<f16_t>(x, y);
    case DType::bf16: return up_fwd<bf16_t>(x, y);
  }
}

void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx) {
  DBT_REF_FLOAT_SWITCH(dx.dtype(), "upsample_nearest2x_backward", up_bwd<T>(dy, dx));
}

void concat(const std::vector<Tensor>& xs, int dim, Tensor& y) {
  const size_t es = dtype_size(y.dtype());
  const int64_t outer = y.shape().prod(0, dim), inner = y.shape().prod(dim + 1, y.ndim());
  char* Y = static_cast<char*>(y.raw());
  for (int64_t o = 0; o < outer; o++) {
    int64_t at = 0;
    for (const Tensor& x : xs) {
      const int64_t len = x.dim(dim) * inner;
      for (int64_t e = 0; e < len; e++)
        std::memcpy(Y + size_t((o * y.dim(dim) * inner + at + e)) * es,
                    static_cast<const char*>(x.raw()) + size_t(o * len + e) * es, es);
      at += len;
    }
  }
}

void split(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts) {
  const size_t es = dtype_size(y.dtype());
  const int64_t outer = y.shape().prod(0, dim), inner = y.shape().prod(dim + 1, y.ndim());
  const char* Y = static_cast<const char*>(y.raw());
  for (int64_t o = 0; o < outer; o++) {
    int64_t at = 0;
    for (size_t i = 0; i < parts.size(); i++) {
      const int64_t len = sizes[i] * inner;
      if (parts[i])
        for (int64_t e = 0; e < len; e++)
          std::memcpy(static_cast<char*>(parts[i]->raw()) + size_t(o * len + e) * es,
                      Y + size_t(o * y.dim(dim) * inner + at + e) * es, es);
      at += len;
    }
  }
}

void transpose(const Tensor& x, Tensor& y) {
  const int64_t B = x.dim(0), R = x.dim(1), C = x.dim(2);
  auto run = [&](auto word) {
    using U = decltype(word);
    const U* X = static_cast<const U*>(x.raw());
    U* Y = static_cast<U*>(y.raw());
    for (int64_t b = 0; b < B; b++)
      for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) Y[(b * C + c) * R + r] = X[(b * R + r) * C + c];
  };
  switch (dtype_size(x.dtype())) {
    case 1: return run(uint8_t{});
    case 2: return run(uint16_t{});
    case 4: return run(uint32_t{});
    default: return run(uint64_t{});
  }
}

}  // namespace dbt::ops::ref
