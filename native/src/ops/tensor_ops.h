// Tensor utilities that every backend provides: fill, copy (also across devices), dtype casts.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace dbt::ops {

// Every element of t = value (converted to t's dtype; integers truncate toward zero).
void fill(Tensor& t, double value);
// dst = src: same dtype and element count (shapes may differ); devices may differ (the non-CPU
// backend performs the transfer).
void copy(const Tensor& src, Tensor& dst);
// dst = src converted to dst's dtype, same shape. Float <-> float rounds to nearest even (NaN and inf
// kept, f16 overflow -> inf); float -> int truncates toward zero (u8 saturates to [0, 255]);
// int -> float exact up to the target's precision.
void cast(const Tensor& src, Tensor& dst);
// dst (bf16) = src (f32) with stochastic rounding: each element rounds to one of its two bf16 neighbours
// with probabilities that make the expected value exact; the noise of element i is a pure function of
// (key, i) (core/philox.h: f32_bits_to_bf16_sr with the Philox word of element i), so a run repeats bit for
// bit and the CPU and CUDA versions agree. Same shape, at most 2^34 elements.
void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key);

using FillFn = void (*)(Tensor& t, double value);
using CopyFn = void (*)(const Tensor& src, Tensor& dst);
using CastFn = void (*)(const Tensor& src, Tensor& dst);
using CastStochasticFn = void (*)(const Tensor& src, Tensor& dst, const SrKey& key);
OpTable<FillFn>& fill_table();
OpTable<CopyFn>& copy_table();
OpTable<CastFn>& cast_table();
OpTable<CastStochasticFn>& cast_stochastic_table();

namespace ref {
void fill(Tensor& t, double value);
void copy(const Tensor& src, Tensor& dst);
void cast(const Tensor& src, Tensor& dst);
void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key);
}  // namespace ref
namespace cpu {
void fill(Tensor& t, double value);
void copy(const Tensor& src, Tensor& dst);
void cast(const Tensor& src, Tensor& dst);
void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key);
}  // namespace cpu

}  // namespace dbt::ops
