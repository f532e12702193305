// Data movement, fast CPU version: row copies (memcpy) split over threads.
#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "ops/shape_ops.h"

namespace dbt::ops::cpu {

void upsample_nearest2x_forward(const Tensor& x, Tensor& y) {
  const int64_t NC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const size_t es = dtype_size(x.dtype());
  if (es != 4) return ref::upsample_nearest2x_forward(x, y);  // 16-bit / byte storage: rare, reference loop
  const float* X = static_cast<const float*>(x.raw());
  float* Y = static_cast<float*>(y.raw());
  parallel_for(NC * H, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* src = X + r * W;
      float* d0 = Y + (2 * r) * 2 * W;  // (p, i) -> output rows 2i, 2i+1 of plane p: flat row 2r, 2r+1
      for (int64_t j = 0; j < W; j++) d0[2 * j] = d0[2 * j + 1] = src[j];
      std::memcpy(d0 + 2 * W, d0, sizeof(float) * size_t(2 * W));
    }
  });
}

void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx) {
  const int64_t NC = dx.dim(0) * dx.dim(1), H = dx.dim(2), W = dx.dim(3);
  const float* DY = dy.data<float>();
  float* DX = dx.data<float>();
  parallel_for(NC * H, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* a = DY + (2 * r) * 2 * W;
      const float* b = a + 2 * W;
      float* o = DX + r * W;
      for (int64_t j = 0; j < W; j++) o[j] = (a[2 * j] + a[2 * j + 1]) + (b[2 * j] + b[2 * j + 1]);
    }
  });
}

void concat(const std::vector<Tensor>& xs, int dim, Tensor& y) {
  const size_t es = dtype_size(y.dtype());
  const int64_t outer = y.shape().prod(0, dim), inner = y.shape().prod(dim + 1, y.ndim());
  const int64_t row = y.dim(dim) * inner;
  char* Y = static_cast<char*>(y.raw());
  const int64_t parts = int64_t(xs.size());
  parallel_for(outer * parts, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / parts, i = t % parts;
      int64_t at = 0;
      for (int64_t k = 0; k < i; k++) at += xs[size_t(k)].dim(dim) * inner;
      const Tensor& x = xs[size_t(i)];
      const int64_t len = x.dim(dim) * inner;
      std::memcpy(Y + size_t(o * row + at) * es, static_cast<const char*>(x.raw()) + size_t(o * len) * es,
                  size_t(len) * es);
    }
  });
}

void split(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts) {
  const size_t es = dtype_size(y.dtype());
  const int64_t outer = y.shape().prod(0, dim), inner = y.shape().prod(dim + 1, y.ndim());
  const int64_t row = y.dim(dim) * inner;
  const char* Y = static_cast<const char*>(y.raw());
  const int64_t n = int64_t(parts.size());
  parallel_for(outer * n, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / n, i = t % n;
      if (!parts[size_t(i)]) continue;
      int64_t at = 0;
      for (int64_t k = 0; k < i; k++) at += sizes[size_t(k)] * inner;
      const int64_t len = sizes[size_t(i)] * inner;
      std::memcpy(static_cast<char*>(parts[size_t(i)]->raw()) + size_t(o * len) * es, Y + size_t(o * row + at) * es,
                  size_t(len) * es);
    }
  });
}

namespace {
// 32 x 32 blocks (both sides stay in L1), threads over (batch, block row).
template <class U> void transpose_words(const U* X, U* Y, int64_t B, int64_t R, int64_t C) {
  constexpr int64_t kB = 32;
  const int64_t rb = (R + kB - 1) / kB;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, kB * C));  // small: inline
  parallel_for(B * rb, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / rb, r0 = (t % rb) * kB, r1 = std::min(R, r0 + kB);
      const U* x = X + b * R * C;
      U* y = Y + b * R * C;
      for (int64_t c0 = 0; c0 < C; c0 += kB) {
        const int64_t c1 = std::min(C, c0 + kB);
        for (int64_t r = r0; r < r1; r++)
          for (int64_t c = c0; c < c1; c++) y[c * R + r] = x[r * C + c];
      }
    }
  });
}
}  // namespace

void transpose(const Tensor& x, Tensor& y) {
  const int64_t B = x.dim(0), R = x.dim(1), C = x.dim(2);
  switch (dtype_size(x.dtype())) {
    case 2: return transpose_words(static_cast<const uint16_t*>(x.raw()), static_cast<uint16_t*>(y.raw()), B, R, C);
    case 4: return transpose_words(static_cast<const uint32_t*>(x.raw()), static_cast<uint32_t*>(y.raw()), B, R, C);
    case 8: return transpose_words(static_cast<const uint64_t*>(x.raw()), static_cast<uint64_t*>(y.raw()), B, R, C);
    default: return ref::transpose(x, y);
  }
}

}  // namespace dbt::ops::cpu
