// cuemu: IEEE binary16 storage type and its conversions (round to nearest even), see cuda_runtime.h.
#pragma once
#include <cstdint>
#include <cstring>

struct __half {
  uint16_t x;
};
struct __half2 {
  __half x, y;
};

inline float __half2float(__half h) {
  const uint32_t sign = uint32_t(h.x & 0x8000u) << 16;
  uint32_t exp = (h.x >> 10) & 0x1fu, man = h.x & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      e++;
      man <<= 1;
    } while ((man & 0x400u) == 0);
    bits = sign | (uint32_t(112 - e) << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline __half __float2half_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return __half{uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu))};  // nan stays nan
  if (a >= 0x477ff000u) return __half{uint16_t(sign | 0x7c00u)};  // rounds to >= 65520: inf
  if (a >= 0x38800000u) {  // normal half
    uint32_t r = a - 0x38000000u;  // rebias 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);
    return __half{uint16_t(sign | (r >> 13))};
  }
  if (a < 0x33000000u) return __half{sign};  // below half the smallest subnormal: +-0
  // subnormal half: value = man * 2^-24
  const int e = int(a >> 23);
  const uint32_t m = (a & 0x7fffffu) | 0x800000u;
  const int shift = 126 - e;  // 14..24 for the exponents left
  const uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
  uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
  return __half{uint16_t(sign | r)};
}
inline __half __float2half(float f) { return __float2half_rn(f); }
