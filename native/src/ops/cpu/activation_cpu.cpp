// Activations and softmax, fast CPU version: vectorisable loops over fixed chunks with the branch-free
// exp/erf of vec_math.h.
#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "ops/activation.h"
#include "ops/cpu/vec_math.h"

namespace dbt::ops::cpu {
using dbt::cpu::erf_approx;
using dbt::cpu::exp_approx;
using dbt::cpu::sigmoid_approx;

namespace {
constexpr int64_t kGrain = 1 << 14;
constexpr float kInvSqrt2 = 0.70710678118654752440f, kInvSqrt2Pi = 0.39894228040143267794f;

inline float gelu(float x) { return 0.5f * x * (1.0f + erf_approx(x * kInvSqrt2)); }
inline float gelu_grad(float x) {
  return 0.5f * (1.0f + erf_approx(x * kInvSqrt2)) + x * kInvSqrt2Pi * exp_approx(-0.5f * x * x);
}

template <class F> void map(const float* x, float* y, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) y[i] = f(x[i]);
  });
}
template <class F> void map2(const float* x, const float* dy, float* dx, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) dx[i] = dy[i] * f(x[i]);
  });
}
}  // namespace

void activation_forward(Activation a, const Tensor& x, Tensor& y) {
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  const int64_t n = x.numel();
  switch (a) {
    case Activation::silu: return map(X, Y, n, [](float v) { return v * sigmoid_approx(v); });
    case Activation::gelu: return map(X, Y, n, [](float v) { return gelu(v); });
    case Activation::quick_gelu: return map(X, Y, n, [](float v) { return v * sigmoid_approx(1.702f * v); });
  }
}

void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  const float* X = x.data<float>();
  const float* DY = dy.data<float>();
  float* DX = dx.data<float>();
  const int64_t n = x.numel();
  switch (a) {
    case Activation::silu:
      return map2(X, DY, DX, n, [](float v) {
        float s = sigmoid_approx(v);
        return s * (1.0f + v * (1.0f - s));
      });
    case Activation::gelu: return map2(X, DY, DX, n, [](float v) { return gelu_grad(v); });
    case Activation::quick_gelu:
      return map2(X, DY, DX, n, [](float v) {
        float s = sigmoid_approx(1.702f * v);
        return s + 1.702f * v * s * (1.0f - s);
      });
  }
}

void geglu_forward(const Tensor& x, Tensor& y) {
  const int64_t F = y.dim(-1), R = y.numel() / std::max<int64_t>(F, 1);
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  parallel_for(R, std::max<int64_t>(1, kGrain / std::max<int64_t>(F, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* h = X + r * 2 * F;
      const float* g = h + F;
      float* o = Y + r * F;
      for (int64_t i = 0; i < F; i++) o[i] = h[i] * gelu(g[i]);
    }
  });
}

void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t F = dy.dim(-1), R = dy.numel() / std::max<int64_t>(F, 1);
  const float* X = x.data<float>();
  const float* DY = dy.data<float>();
  float* DX = dx.data<float>();
  parallel_for(R, std::max<int64_t>(1, kGrain / std::max<int64_t>(F, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* h = X + r * 2 * F;
      const float* g = h + F;
      const float* d = DY + r * F;
      float* dh = DX + r * 2 * F;
      float* dg = dh + F;
      for (int64_t i = 0; i < F; i++) {
        float hv = h[i], gv = g[i], dv = d[i];  // read before writing: dx may alias x
        dh[i] = dv * gelu(gv);
        dg[i] = dv * hv * gelu_grad(gv);
      }
    }
  });
}

void softmax_forward(const Tensor& x, Tensor& y) {
  const int64_t C = x.dim(-1), R = x.numel() / std::max<int64_t>(C, 1);
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  parallel_for(R, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = X + r * C;
      float* yr = Y + r * C;
      float m = -INFINITY;
      for (int64_t i = 0; i < C; i++) m = std::max(m, xr[i]);
      if (m == -INFINITY) m = 0.0f;  // fully masked row: exp gives zeros, sum 0 -> NaN like the reference
      float s = 0.0f;
      for (int64_t i = 0; i < C; i++) {
        yr[i] = exp_approx(xr[i] - m);
        s += yr[i];
      }
      const float inv = 1.0f / s;
      for (int64_t i = 0; i < C; i++) yr[i] *= inv;
    }
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t C = y.dim(-1), R = y.numel() / std::max<int64_t>(C, 1);
  const float* Y = y.data<float>();
  const float* DY = dy.data<float>();
  float* DX = dx.data<float>();
  parallel_for(R, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* yr = Y + r * C;
      const float* dr = DY + r * C;
      float s = 0.0f;
      for (int64_t i = 0; i < C; i++) s += yr[i] * dr[i];
      float* o = DX + r * C;
      for (int64_t i = 0; i < C; i++) o[i] = yr[i] * (dr[i] - s);
    }
  });
}

}  // namespace dbt::ops::cpu
