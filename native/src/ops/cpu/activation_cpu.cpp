// Activations and softmax, fast CPU version: vectorisable loops over fixed chunks with the branch-free
// exp/erf of vec_math.h.
#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "ops/activation.h"
#include "ops/cpu/vec_kernels.h"

namespace dbt::ops::cpu {

namespace {
constexpr int64_t kGrain = 1 << 14;
}  // namespace

namespace {
using ArrayFn = void (*)(const float*, float*, int64_t);
using GradFn = void (*)(const float*, const float*, float*, int64_t);
}  // namespace

void activation_forward(Activation a, const Tensor& x, Tensor& y) {
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  ArrayFn f = a == Activation::silu ? dbt::cpu::vsilu : a == Activation::gelu ? dbt::cpu::vgelu : dbt::cpu::vquick_gelu;
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { f(X + b, Y + b, e - b); });
}

void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  const float* X = x.data<float>();
  const float* DY = dy.data<float>();
  float* DX = dx.data<float>();
  GradFn f = a == Activation::silu   ? dbt::cpu::vsilu_grad
             : a == Activation::gelu ? dbt::cpu::vgelu_grad
                                     : dbt::cpu::vquick_gelu_grad;
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { f(X + b, DY + b, DX + b, e - b); });
}

void geglu_forward(const Tensor& x, Tensor& y) {
  const int64_t F = y.dim(-1), R = y.numel() / std::max<int64_t>(F, 1);
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  parallel_for(R, std::max<int64_t>(1, kGrain / std::max<int64_t>(F, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) dbt::cpu::vgeglu(X + r * 2 * F, X + r * 2 * F + F, Y + r * F, F);
  });
}

void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t F = dy.dim(-1), R = dy.numel() / std::max<int64_t>(F, 1);
  const float* X = x.data<float>();
  const float* DY = dy.data<float>();
  float* DX = dx.data<float>();
  parallel_for(R, std::max<int64_t>(1, kGrain / std::max<int64_t>(F, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      dbt::cpu::vgeglu_grad(X + r * 2 * F, X + r * 2 * F + F, DY + r * F, DX + r * 2 * F, DX + r * 2 * F + F, F);
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
      float m = dbt::cpu::vrow_max(xr, C);
      if (m == -INFINITY) m = 0.0f;  // fully masked row: exp gives zeros, sum 0 -> NaN like the reference
      if (yr != xr) std::copy(xr, xr + C, yr);
      dbt::cpu::vexp_shifted(yr, C, m);
      const float inv = 1.0f / dbt::cpu::vrow_sum(yr, C);
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
      const float s = dbt::cpu::vrow_dot(yr, dr, C);
      float* o = DX + r * C;
      for (int64_t i = 0; i < C; i++) o[i] = yr[i] * (dr[i] - s);
    }
  });
}

}  // namespace dbt::ops::cpu
