// Reference fill/copy/cast: element by element through double.
#include <cmath>
#include <cstring>

#include "ops/tensor_ops.h"

namespace dbt::ops::ref {

double load_as_double(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>()[i];
    case DType::f64: return t.data<double>()[i];
    case DType::f16: return f16_to_f32(t.data<f16_t>()[i]);
    case DType::bf16: return bf16_to_f32(t.data<bf16_t>()[i]);
    case DType::i32: return t.data<int32_t>()[i];
    case DType::u8: return t.data<uint8_t>()[i];
  }
  return 0;
}

void store_from_double(Tensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DType::f32: t.data<float>()[i] = float(v); break;
    case DType::f64: t.data<double>()[i] = v; break;
    case DType::f16: t.data<f16_t>()[i] = f32_to_f16(float(v)); break;
    case DType::bf16: t.data<bf16_t>()[i] = f32_to_bf16(float(v)); break;
    case DType::i32:
      t.data<int32_t>()[i] = std::isnan(v) ? 0 : v >= 2147483647.0 ? 2147483647 : v <= -2147483648.0 ? INT32_MIN : int32_t(v);
      break;
    case DType::u8: t.data<uint8_t>()[i] = std::isnan(v) || v <= 0 ? 0 : v >= 255 ? 255 : uint8_t(v); break;
  }
}

void fill(Tensor& t, double value) {
  for (int64_t i = 0; i < t.numel(); i++) store_from_double(t, i, value);
}

void copy(const Tensor& src, Tensor& dst) { std::memmove(dst.raw(), src.raw(), src.nbytes()); }

void cast(const Tensor& src, Tensor& dst) {
  // f64 -> f16/bf16 goes through f32 (double rounding is acceptable for a reference of storage casts).
  for (int64_t i = 0; i < src.numel(); i++) store_from_double(dst, i, load_as_double(src, i));
}

// Stated by value rather than by bits: lo = x truncated toward zero to bf16, hi = the next bf16 away from
// zero (2^128 past the largest finite, stored as inf); x rounds to hi when u < (|x| - |lo|) / (|hi| - |lo|),
// u = 1 - (noise16 + 1) / 2^16 uniform on {0, 1/2^16, ...}.
void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key) {
  const float* s = src.data<float>();
  bf16_t* d = dst.data<bf16_t>();
  for (int64_t i = 0; i < src.numel(); i++) {
    const float x = s[i];
    if (!std::isfinite(x)) {
      d[i] = f32_to_bf16(x);
      continue;
    }
    uint32_t u;
    std::memcpy(&u, &x, 4);
    const uint16_t lo_bits = uint16_t(u >> 16);
    const uint16_t hi_bits = uint16_t(lo_bits + 1);  // next magnitude up (0x7f80 = inf after the largest finite)
    const double lo = std::fabs(double(bf16_to_f32(bf16_t{lo_bits})));
    const double hi = (hi_bits & 0x7fff) == 0x7f80 ? std::ldexp(1.0, 128) : std::fabs(double(bf16_to_f32(bf16_t{hi_bits})));
    const double frac = (std::fabs(double(x)) - lo) / (hi - lo);
    const uint32_t noise = sr_block(key, i / 4).v[i % 4] & 0xffffu;
    const double uni = 1.0 - double(noise + 1) / 65536.0;
    d[i] = bf16_t{uni < frac ? hi_bits : lo_bits};
  }
}

}  // namespace dbt::ops::ref
