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

}  // namespace dbt::ops::ref
