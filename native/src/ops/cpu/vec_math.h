// Branch-free float exp / erf / sigmoid / tanh that compilers vectorise (libm's scalar calls do not).
// Accuracy (tested in native/test/test_activations.cpp): exp within 2 ulp on [-87, 88]; erf within 6e-7
// absolute. Used by the fast activation, norm, softmax and attention kernels; references use libm.
#pragma once
#include <cstdint>
#include <cstring>

namespace dbt::cpu {

inline float exp_approx(float x_in) {
  float x = x_in < -87.0f ? -87.0f : x_in;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln2) with the 1.5*2^23 trick (exact for |x*log2e| < 2^22)
  const float shifter = 12582912.0f;
  float n = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t e = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return x_in < -87.0f ? 0.0f : p * scale;  // exp(-inf) = 0 (masked scores)
}

inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// Abramowitz & Stegun 7.1.26 refined: erf(x) = 1 - poly(t) * exp(-x^2), t = 1 / (1 + p|x|), odd.
inline float erf_approx(float x) {
  float a = x < 0.0f ? -x : x;
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  float y = 1.0f - poly * exp_approx(-a * a);
  return x < 0.0f ? -y : y;
}

// Row helpers with 16 independent lanes so the compiler vectorises them; the lane order is fixed, so
// results are deterministic.
inline float row_max(const float* x, int64_t n) {
  float lane[16];
  for (int j = 0; j < 16; j++) lane[j] = -__builtin_inff();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) lane[j] = lane[j] > x[i + j] ? lane[j] : x[i + j];
  float m = -__builtin_inff();
  for (; i < n; i++) m = m > x[i] ? m : x[i];
  for (int j = 0; j < 16; j++) m = m > lane[j] ? m : lane[j];
  return m;
}

inline float row_sum(const float* x, int64_t n) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) lane[j] += x[i + j];
  float s = 0.0f;
  for (; i < n; i++) s += x[i];
  for (int j = 0; j < 16; j++) s += lane[j];
  return s;
}

// x[i] = exp(x[i] - shift)
inline void exp_shifted(float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; i++) x[i] = exp_approx(x[i] - shift);
}

inline float tanh_approx(float x) { return 2.0f * sigmoid_approx(2.0f * x) - 1.0f; }

}  // namespace dbt::cpu
