#include "ops/cpu/vec_kernels.h"

#include "ops/cpu/vec_math.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(DBT_NO_TARGET_CLONES)
#define DBT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DBT_CLONES
#endif

namespace dbt::cpu {
namespace {
constexpr float kInvSqrt2 = 0.70710678118654752440f, kInvSqrt2Pi = 0.39894228040143267794f;
inline float gelu(float x) { return 0.5f * x * (1.0f + erf_approx(x * kInvSqrt2)); }
inline float gelu_grad(float x) {
  return 0.5f * (1.0f + erf_approx(x * kInvSqrt2)) + x * kInvSqrt2Pi * exp_approx(-0.5f * x * x);
}
}  // namespace

DBT_CLONES void vexp_shifted(float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; i++) x[i] = exp_approx(x[i] - shift);
}
DBT_CLONES float vexp_shifted_sum(float* x, int64_t n, float shift) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) {
      x[i + j] = exp_approx(x[i + j] - shift);
      lane[j] += x[i + j];
    }
  float s = 0.0f;
  for (; i < n; i++) {
    x[i] = exp_approx(x[i] - shift);
    s += x[i];
  }
  for (int j = 0; j < 16; j++) s += lane[j];
  return s;
}
DBT_CLONES float vrow_max(const float* x, int64_t n) { return row_max(x, n); }
DBT_CLONES float vrow_sum(const float* x, int64_t n) { return row_sum(x, n); }
DBT_CLONES float vrow_dot(const float* a, const float* b, int64_t n) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) lane[j] += a[i + j] * b[i + j];
  float s = 0.0f;
  for (; i < n; i++) s += a[i] * b[i];
  for (int j = 0; j < 16; j++) s += lane[j];
  return s;
}

DBT_CLONES void vsilu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * sigmoid_approx(x[i]);
}
DBT_CLONES void vsilu_grad(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float s = sigmoid_approx(x[i]);
    dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
  }
}
DBT_CLONES void vgelu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = gelu(x[i]);
}
DBT_CLONES void vgelu_grad(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_grad(x[i]);
}
DBT_CLONES void vquick_gelu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * sigmoid_approx(1.702f * x[i]);
}
DBT_CLONES void vquick_gelu_grad(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float s = sigmoid_approx(1.702f * x[i]);
    dx[i] = dy[i] * (s + 1.702f * x[i] * s * (1.0f - s));
  }
}
DBT_CLONES void vgeglu(const float* h, const float* g, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = h[i] * gelu(g[i]);
}
DBT_CLONES void vgeglu_grad(const float* h, const float* g, const float* dy, float* dh, float* dg, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float hv = h[i], gv = g[i], dv = dy[i];
    dh[i] = dv * gelu(gv);
    dg[i] = dv * hv * gelu_grad(gv);
  }
}
DBT_CLONES void vscale_shift(const float* x, float* y, int64_t n, float scale, float shift, bool silu) {
  if (silu)
    for (int64_t i = 0; i < n; i++) {
      float z = x[i] * scale + shift;
      y[i] = z * sigmoid_approx(z);
    }
  else
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale + shift;
}
DBT_CLONES void vscale_shift_silu_grad(const float* x, const float* dy, float* dz, int64_t n, float scale,
                                       float shift) {
  for (int64_t i = 0; i < n; i++) {
    float z = x[i] * scale + shift, s = sigmoid_approx(z);
    dz[i] = dy[i] * s * (1.0f + z * (1.0f - s));
  }
}

}  // namespace dbt::cpu
