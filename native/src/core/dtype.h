// Element types and the f16/bf16 bit conversions (round to nearest even, NaN stays NaN).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dbt {

// f64 exists for the plain references and finite-difference tests; fast kernels take f32.
enum class DType : uint8_t { f32 = 0, f16 = 1, bf16 = 2, i32 = 3, u8 = 4, f64 = 5 };
constexpr int kNumDTypes = 6;

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::u8: return 1;
    case DType::f64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
    case DType::f64: return "f64";
  }
  return "?";
}

inline bool dtype_is_float(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

// C++ type -> DType, used by Tensor::data<T>() to check what the caller asks for.
template <class T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::f64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::i32; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::u8; };

// 16-bit float storage types: distinct structs so data<f16_t>() and data<bf16_t>() are checked.
struct f16_t { uint16_t bits; };
struct bf16_t { uint16_t bits; };
template <> struct DTypeOf<f16_t> { static constexpr DType value = DType::f16; };
template <> struct DTypeOf<bf16_t> { static constexpr DType value = DType::bf16; };

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline bf16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{uint16_t((u >> 16) | 0x40u)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return bf16_t{uint16_t(u >> 16)};
}
inline float bf16_to_f32(bf16_t h) { return f32_from_bits(uint32_t(h.bits) << 16); }

inline f16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return f16_t{uint16_t(sign | 0x7e00u)};  // NaN
  if (a >= 0x477ff000u) return f16_t{uint16_t(sign | 0x7c00u)};  // overflow (incl. rounding up) -> inf
  if (a < 0x38800000u) {
    // subnormal or zero in f16: value = a * 2^24 rounded to integer (nearest even)
    if (a < 0x33000000u) return f16_t{uint16_t(sign)};  // < 2^-25 rounds to zero
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - int(a >> 23);  // 14..24
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return f16_t{uint16_t(sign | r)};
  }
  uint32_t r = a - 0x38000000u;  // rebias exponent 127 -> 15 (shifted by 13 below)
  r += 0xfffu + ((r >> 13) & 1u);
  return f16_t{uint16_t(sign | (r >> 13))};
}

inline float f16_to_f32(f16_t h) {
  uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  uint32_t e = (h.bits >> 10) & 0x1fu;
  uint32_t m = h.bits & 0x3ffu;
  if (e == 0) {
    if (m == 0) return f32_from_bits(sign);
    float v = float(m) * (1.0f / 16777216.0f);  // m * 2^-24
    return sign ? -v : v;
  }
  if (e == 31) return f32_from_bits(sign | 0x7f800000u | (m << 13));
  return f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

}  // namespace dbt
