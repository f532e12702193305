// Counter-based random numbers shared by the CPU and CUDA code: Philox4x32-10 (Salmon et al. 2011), the
// same function as src/model/random.ts, and the stochastic rounding f32 -> bf16 built on it.
// Everything here is a pure function of its arguments (no state), compiled for host and device alike, so
// a CPU run and a CUDA run that use the same key produce the same bits.
#pragma once
#include <cstdint>

#include "core/host_device.h"

namespace dbt {

struct Philox4 {
  uint32_t v[4];
};

// Philox4x32-10 of counter (c0..c3) under key (k0, k1).
DBT_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
    const uint64_t p0 = uint64_t(0xd2511f53u) * c0, p1 = uint64_t(0xcd9e8d57u) * c2;
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0), hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9e3779b9u;
    k1 += 0xbb67ae85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The key of a stochastic rounding: seed (the run's seed), step (e.g. the optimizer step) and stream (e.g.
// the index of the parameter tensor), so every (seed, step, tensor) draws independent noise.
// Element i of a tensor uses word i % 4 of Philox(counter = (i / 4, stream, step lo, step hi), key = seed);
// i / 4 must fit in 32 bits (at most 2^34 elements: the ops check it).
struct SrKey {
  uint64_t seed = 0;
  uint64_t step = 0;
  uint32_t stream = 0;
};
constexpr int64_t kSrMaxElements = int64_t(1) << 34;

DBT_HD Philox4 sr_block(const SrKey& k, int64_t block) {
  return philox4x32_10(uint32_t(block), k.stream, uint32_t(k.step), uint32_t(k.step >> 32), uint32_t(k.seed),
                       uint32_t(k.seed >> 32));
}

// f32 bits -> bf16 bits, rounded up in magnitude with probability (low 16 bits) / 2^16, using the low 16 bits
// of `noise`: E[result] = x exactly for finite x whose round-up stays finite. Values already representable
// in bf16 (low 16 bits zero) never change. NaN -> quiet NaN with the sign and top payload bits kept (as the
// round-to-nearest cast); +-inf stay +-inf. Finite |x| above the largest finite bf16 (0x7f7f = 3.3895e38)
// round to it or, with the same probability rule, to inf (round-up past the top of the format).
DBT_HD uint16_t f32_bits_to_bf16_sr(uint32_t u, uint32_t noise) {
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  if ((u & 0x7fffffffu) == 0x7f800000u) return uint16_t(u >> 16);
  return uint16_t((u + (noise & 0xffffu)) >> 16);
}

}  // namespace dbt
