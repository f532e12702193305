// Stochastic rounding f32 -> bf16: Philox known answers; cast_stochastic fast vs its (value-based) reference,
// repeatability, exact values kept, NaN/inf/overflow rules, unbiasedness; AdamW and 8-bit AdamW on bf16
// parameters vs their references and vs "f32 update then cast_stochastic", and against f32 training.
#include <cmath>
#include <cstring>

#include "harness.h"
#include "ops/optim.h"
#include "ops/tensor_ops.h"

using namespace dbt;
using namespace dbt::test;
using ops::AdamWParams;

namespace {
SrKey key(uint64_t seed, uint64_t step, uint32_t stream) {
  SrKey k;
  k.seed = seed;
  k.step = step;
  k.stream = stream;
  return k;
}
Tensor bf16_of(const Tensor& f32) {  // round to nearest
  Tensor b = Tensor::empty(f32.shape(), DType::bf16);
  ops::cast(f32, b);
  return b;
}
Tensor f32_of(const Tensor& b) {
  Tensor f = Tensor::empty(b.shape(), DType::f32);
  ops::cast(b, f);
  return f;
}
// f32 values over many binades, both signs, including f32 subnormals and values near the bf16 maximum.
Tensor wide_values(int64_t n, uint64_t seed) {
  Rng r(seed);
  Tensor x = Tensor::empty({n});
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = uint32_t(r.next());
    if (i % 7 == 0) u = (u & 0x807fffffu) | 0x7f000000u;  // large: exponent 254
    if (i % 11 == 0) u &= 0x807fffffu;                     // subnormal (or zero)
    if ((u & 0x7f800000u) == 0x7f800000u) u ^= 0x00800000u;  // keep finite
    std::memcpy(&x.data<float>()[i], &u, 4);
  }
  return x;
}
}  // namespace

DBT_TEST(philox4x32_10_known_answers) {
  // Random123 kat_vectors: philox4x32 10 rounds.
  Philox4 a = philox4x32_10(0, 0, 0, 0, 0, 0);
  EXPECT_TRUE(a.v[0] == 0x6627e8d5u && a.v[1] == 0xe169c58du && a.v[2] == 0xbc57ac4cu && a.v[3] == 0x9b00dbd8u, "zeros");
  Philox4 b = philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u);
  EXPECT_TRUE(b.v[0] == 0x408f276du && b.v[1] == 0x41c83b0eu && b.v[2] == 0xa20bc7c6u && b.v[3] == 0x6d5451fdu, "ones");
  Philox4 c = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  EXPECT_TRUE(c.v[0] == 0xd16cfe09u && c.v[1] == 0x94fdccebu && c.v[2] == 0x5001e420u && c.v[3] == 0x24126ea1u, "pi");
}

DBT_TEST(cast_stochastic_fast_equals_reference_and_repeats) {
  const int64_t n = 100003;  // not a multiple of 4 or of the thread grain
  Tensor x = wide_values(n, 1);
  for (SrKey k : {key(0, 0, 0), key(42, 7, 3), key(~0ull, ~0ull, ~0u)}) {
    Tensor fast = Tensor::empty({n}, DType::bf16), ref = Tensor::empty({n}, DType::bf16), again = fast;
    ops::cast_stochastic(x, fast, k);
    ops::ref::cast_stochastic(x, ref, k);
    expect_equal_bits(fast, ref, "fast vs reference");
    again = Tensor::empty({n}, DType::bf16);
    ops::cast_stochastic(x, again, k);
    expect_equal_bits(fast, again, "same key, same bits");
  }
  // Each result is one of the two bf16 neighbours; different keys choose differently.
  Tensor a = Tensor::empty({n}, DType::bf16), b = Tensor::empty({n}, DType::bf16);
  ops::cast_stochastic(x, a, key(1, 1, 0));
  ops::cast_stochastic(x, b, key(1, 1, 1));
  int64_t differ = 0, inexact = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    std::memcpy(&u, &x.data<float>()[i], 4);
    const uint16_t lo = uint16_t(u >> 16), ra = a.data<bf16_t>()[i].bits;
    EXPECT_TRUE(ra == lo || ra == uint16_t(lo + 1), "a neighbour of x at " + std::to_string(i));
    differ += ra != b.data<bf16_t>()[i].bits;
    inexact += (u & 0xffffu) != 0;
  }
  // Two independent draws disagree with probability 2p(1-p) per element (mean 1/3 for uniform p).
  EXPECT_TRUE(differ > inexact / 4 && differ < inexact / 2, "streams 0 and 1 differ on " + std::to_string(differ) +
                                                               " of " + std::to_string(inexact));
}

DBT_TEST(cast_stochastic_keeps_exact_values_and_specials) {
  // bf16-representable values never move, whatever the key.
  Tensor x = f32_of(bf16_of(wide_values(4096, 2)));
  for (uint64_t s = 0; s < 8; s++) {
    Tensor y = Tensor::empty({4096}, DType::bf16);
    ops::cast_stochastic(x, y, key(s, s * 31, uint32_t(s)));
    expect_equal_bits(f32_of(y), x, "representable values unchanged");
  }
  const float big = f32_from_bits(0x7f7fffffu);  // f32 max, above the largest finite bf16 (0x7f7f)
  const float vals[] = {INFINITY, -INFINITY, std::nanf(""), -std::nanf(""), f32_from_bits(0x7f800001u), 0.0f, -0.0f,
                        big, -big};
  const int64_t nv = 9, reps = 512;
  Tensor s = Tensor::empty({nv * reps});
  for (int64_t i = 0; i < nv * reps; i++) s.data<float>()[i] = vals[i % nv];
  Tensor y = Tensor::empty({nv * reps}, DType::bf16);
  ops::cast_stochastic(s, y, key(9, 9, 9));
  int64_t big_to_inf = 0;
  for (int64_t i = 0; i < nv * reps; i++) {
    const uint16_t h = y.data<bf16_t>()[i].bits;
    const int64_t k = i % nv;
    if (k == 0) EXPECT_TRUE(h == 0x7f80, "+inf stays +inf");
    if (k == 1) EXPECT_TRUE(h == 0xff80, "-inf stays -inf");
    if (k == 2 || k == 4) EXPECT_TRUE((h & 0x7fff) > 0x7f80 && (h & 0x0040) && !(h & 0x8000), "NaN stays a quiet NaN");
    if (k == 3) EXPECT_TRUE((h & 0x7fff) > 0x7f80 && (h & 0x8000), "-NaN keeps its sign");
    if (k == 5) EXPECT_TRUE(h == 0x0000, "+0");
    if (k == 6) EXPECT_TRUE(h == 0x8000, "-0");
    if (k == 7) EXPECT_TRUE(h == 0x7f7f || h == 0x7f80, "above the bf16 max: the max or +inf");
    if (k == 8) EXPECT_TRUE(h == 0xff7f || h == 0xff80, "below the bf16 min: the min or -inf");
    big_to_inf += (k == 7 || k == 8) && (h & 0x7fff) == 0x7f80;
  }
  // 0x7f7fffff has low bits 0xffff: it rounds up with probability 65535/65536.
  EXPECT_TRUE(big_to_inf >= 2 * reps - 8, "f32 max rounds past the bf16 max almost always");
}

DBT_TEST(cast_stochastic_is_unbiased) {
  // For x between bf16 neighbours lo < hi (magnitudes), the result is hi with probability p = (|x|-|lo|)/ulp.
  // Over N independent draws the mean error (in ulps) has standard deviation sqrt(p(1-p)/N) <= 0.5/sqrt(N);
  // the checks allow 5 of those (the keys are fixed, so the outcome is deterministic, not flaky).
  const int64_t n = 1 << 16;
  const float xs[] = {1.0f + 0.3f * 0.0078125f, -3.14159265f, 1e-3f, 0.1f, 1e-40f /* subnormal */, 6.5e37f};
  for (float xv : xs) {
    Tensor x = Tensor::empty({n});
    ops::fill(x, xv);
    const double lo = std::fabs(double(bf16_to_f32(bf16_t{uint16_t(f32_bits(xv) >> 16)})));
    const double ulp = std::fabs(double(bf16_to_f32(bf16_t{uint16_t((f32_bits(xv) >> 16) + 1)}))) - lo;
    const double p = (std::fabs(double(xv)) - lo) / ulp;
    double err = 0;
    Tensor y = Tensor::empty({n}, DType::bf16);
    ops::cast_stochastic(x, y, key(123, 5, 0));
    for (int64_t i = 0; i < n; i++) err += (std::fabs(double(bf16_to_f32(y.data<bf16_t>()[i]))) - std::fabs(double(xv))) / ulp;
    err /= double(n);
    const double sd = std::sqrt(std::max(p * (1 - p), 1e-12) / double(n));
    EXPECT_TRUE(std::fabs(err) <= 5 * sd, "mean error " + std::to_string(err) + " ulp for " + std::to_string(xv) +
                                              " (p " + std::to_string(p) + ", sd " + std::to_string(sd) + ")");
  }
  // Random values, many keys: the mean signed error in ulps of each element over 64 keys, averaged.
  const int64_t m = 4096, keys = 64;
  Tensor x = rand_tensor({m}, 77, -4, 4);
  std::vector<double> sum(size_t(m), 0.0);
  for (uint64_t k = 0; k < uint64_t(keys); k++) {
    Tensor y = Tensor::empty({m}, DType::bf16);
    ops::cast_stochastic(x, y, key(k * 0x9e3779b97f4a7c15ull, k, 0));
    for (int64_t i = 0; i < m; i++) {
      const float xv = x.data<float>()[i];
      const double ulp = std::ldexp(1.0, std::ilogb(xv) - 7);
      sum[size_t(i)] += (double(bf16_to_f32(y.data<bf16_t>()[i])) - double(xv)) / ulp;
    }
  }
  double total = 0, worst = 0;
  for (int64_t i = 0; i < m; i++) {
    total += sum[size_t(i)];
    worst = std::max(worst, std::fabs(sum[size_t(i)] / double(keys)));
  }
  const double bound = 5 * 0.5 / std::sqrt(double(m * keys));
  EXPECT_TRUE(std::fabs(total / double(m * keys)) <= bound, "mean error over values and keys " +
                                                                std::to_string(total / double(m * keys)) + " ulp");
  EXPECT_TRUE(worst <= 6 * 0.5 / std::sqrt(double(keys)), "per-element mean error " + std::to_string(worst) + " ulp");
}

namespace {
AdamWParams sr_params(int64_t step, uint32_t stream) {
  AdamWParams p{3e-3, 0.9, 0.999, 1e-8, 1e-2, step, 0.5};
  p.stochastic_rounding = true;
  p.sr_seed = 0x1234567890abcdefull;
  p.sr_stream = stream;
  return p;
}
}  // namespace

DBT_TEST(adamw_sr_equals_reference_and_f32_update_then_cast) {
  const int64_t n = 50001;
  Tensor P = bf16_of(rand_tensor({n}, 1)), rP = clone(P), cP = clone(P);
  Tensor M = Tensor::zeros({n}), V = Tensor::zeros({n}), rM = clone(M), rV = clone(V), cM = clone(M), cV = clone(V);
  for (int64_t step = 1; step <= 3; step++) {
    Tensor G = bf16_of(rand_tensor({n}, 10 + uint64_t(step)));
    AdamWParams hp = sr_params(step, 4);
    ops::adamw_update(P, G, M, V, hp);
    ops::ref::adamw_update(rP, G, rM, rV, hp);
    // the documented equivalent: widen, f32 update, stochastic cast with key (seed, step, stream)
    Tensor w = f32_of(cP);
    AdamWParams f = hp;
    f.stochastic_rounding = false;
    ops::adamw_update(w, f32_of(G), cM, cV, f);
    ops::cast_stochastic(w, cP, ops::adamw_sr_key(hp, hp.sr_stream));
  }
  expect_equal_bits(P, rP, "params vs reference");
  expect_equal_bits(M, rM, "m vs reference");
  expect_equal_bits(V, rV, "v vs reference");
  expect_equal_bits(P, cP, "params vs f32 update + cast_stochastic");
  expect_equal_bits(M, cM, "m vs f32 update");
}

DBT_TEST(adamw8bit_sr_equals_reference_and_multi) {
  for (int block : {256, 2048}) {
    const int64_t n = 5003;
    const int64_t nb = ops::adamw8bit_blocks(n, block);
    Tensor P = bf16_of(rand_tensor({n}, 2)), rP = clone(P), cP = clone(P);
    std::vector<Tensor> S, R, C;
    for (auto* st : {&S, &R, &C}) {
      *st = {Tensor::empty({n}, DType::u8), Tensor::empty({nb}), Tensor::empty({n}, DType::u8), Tensor::empty({nb})};
      ops::adamw8bit_init((*st)[0], (*st)[1], (*st)[2], (*st)[3]);
    }
    for (int64_t step = 1; step <= 3; step++) {
      Tensor G = bf16_of(rand_tensor({n}, 20 + uint64_t(step)));
      AdamWParams hp = sr_params(step, 9);
      ops::adamw8bit_update(P, G, S[0], S[1], S[2], S[3], block, hp);
      ops::ref::adamw8bit_update(rP, G, R[0], R[1], R[2], R[3], block, hp);
      Tensor w = f32_of(cP);
      AdamWParams f = hp;
      f.stochastic_rounding = false;
      ops::adamw8bit_update(w, f32_of(G), C[0], C[1], C[2], C[3], block, f);
      ops::cast_stochastic(w, cP, ops::adamw_sr_key(hp, hp.sr_stream));
    }
    const std::string b = " block " + std::to_string(block);
    expect_equal_bits(P, rP, "params vs reference" + b);
    expect_equal_bits(P, cP, "params vs f32 8-bit update + cast_stochastic" + b);
    for (int k = 0; k < 4; k++) {
      expect_equal_bits(S[size_t(k)], R[size_t(k)], "state vs reference" + b);
      expect_equal_bits(S[size_t(k)], C[size_t(k)], "state vs f32 8-bit update" + b);
    }
  }
  // multi: entry i rounds with its own sr_stream, as single calls with AdamWParams::sr_stream do
  const int block = 256;
  std::vector<Tensor> P, Q, G;
  std::vector<std::vector<Tensor>> S, R;
  for (int i = 0; i < 3; i++) {
    const int64_t n = 3 + i * 700;
    P.push_back(bf16_of(rand_tensor({n}, 60 + uint64_t(i))));
    Q.push_back(clone(P.back()));
    G.push_back(bf16_of(rand_tensor({n}, 70 + uint64_t(i))));
    const int64_t nb = ops::adamw8bit_blocks(n, block);
    for (auto* st : {&S, &R}) {
      st->push_back({Tensor::empty({n}, DType::u8), Tensor::empty({nb}), Tensor::empty({n}, DType::u8), Tensor::empty({nb})});
      ops::adamw8bit_init(st->back()[0], st->back()[1], st->back()[2], st->back()[3]);
    }
  }
  std::vector<ops::AdamW8bitTensor> list;
  for (size_t i = 0; i < P.size(); i++)
    list.push_back({&P[i], &G[i], &S[i][0], &S[i][1], &S[i][2], &S[i][3], uint32_t(100 + i)});
  ops::adamw8bit_update_multi(list, block, sr_params(5, 0));
  for (size_t i = 0; i < P.size(); i++) {
    ops::adamw8bit_update(Q[i], G[i], R[i][0], R[i][1], R[i][2], R[i][3], block, sr_params(5, uint32_t(100 + i)));
    expect_equal_bits(P[i], Q[i], "multi vs single params " + std::to_string(i));
  }
}

DBT_TEST(adamw_sr_follows_f32_training_where_nearest_stalls) {
  // Updates of ~lr = 1e-4 on parameters near 1 (bf16 ulp 2^-7 = 0.0078): round-to-nearest bf16 never moves;
  // stochastic rounding tracks the f32 trajectory in the mean. Per element the rounding errors add up to a
  // standard deviation of at most ulp/2 * sqrt(steps); over n elements the mean's is that / sqrt(n).
  const int64_t n = 4096, steps = 100;
  Tensor init = bf16_of(rand_tensor({n}, 5, 1.0, 1.5));
  Tensor P = clone(init), F = f32_of(init), N = clone(init);
  Tensor M = Tensor::zeros({n}), V = Tensor::zeros({n}), fM = clone(M), fV = clone(V), nM = clone(M), nV = clone(V);
  Tensor G = bf16_of(rand_tensor({n}, 6, 0.5, 1.0));  // one sign: every step moves the same way
  for (int64_t step = 1; step <= steps; step++) {
    AdamWParams hp{1e-4, 0.9, 0.999, 1e-8, 0.0, step, 1.0};
    hp.stochastic_rounding = true;
    hp.sr_seed = 99;
    ops::adamw_update(P, G, M, V, hp);
    AdamWParams f = hp;
    f.stochastic_rounding = false;
    ops::adamw_update(F, f32_of(G), fM, fV, f);
    Tensor w = f32_of(N);  // round to nearest each step: the update is lost
    ops::adamw_update(w, f32_of(G), nM, nV, f);
    N = bf16_of(w);
  }
  double sr = 0, f32 = 0, nearest = 0, start = 0;
  for (int64_t i = 0; i < n; i++) {
    sr += bf16_to_f32(P.data<bf16_t>()[i]);
    f32 += F.data<float>()[i];
    nearest += bf16_to_f32(N.data<bf16_t>()[i]);
    start += bf16_to_f32(init.data<bf16_t>()[i]);
  }
  sr /= double(n), f32 /= double(n), nearest /= double(n), start /= double(n);
  const double bound = 5 * 0.5 * 0.0078125 * std::sqrt(double(steps)) / std::sqrt(double(n));
  EXPECT_TRUE(start - f32 > 0.009, "f32 moved by about steps * lr = 0.01: " + std::to_string(start - f32));
  EXPECT_TRUE(nearest == start, "round to nearest stalls");
  EXPECT_TRUE(std::fabs(sr - f32) <= bound, "SR mean " + std::to_string(sr) + " vs f32 mean " + std::to_string(f32) +
                                                " (bound " + std::to_string(bound) + ")");
}

DBT_TEST(sr_rejects_wrong_dtypes) {
  Tensor p = Tensor::zeros({10}), g = Tensor::zeros({10}), m = Tensor::zeros({10}), v = Tensor::zeros({10});
  expect_throws<OpError>([&] { ops::adamw_update(p, g, m, v, sr_params(1, 0)); }, "bf16", "f32 param refused");
  Tensor pb = Tensor::zeros({10}, DType::bf16), gb = Tensor::zeros({10}, DType::bf16);
  Tensor mb = Tensor::zeros({10}, DType::bf16);
  expect_throws<OpError>([&] { ops::adamw_update(pb, gb, mb, v, sr_params(1, 0)); }, "m must be f32", "bf16 moments refused");
  Tensor y = Tensor::empty({10});
  expect_throws<OpError>([&] { ops::cast_stochastic(p, y, SrKey{}); }, "dst must be bf16", "f32 destination refused");
  Tensor mq = Tensor::zeros({10}, DType::u8), ma = Tensor::zeros({1});
  expect_throws<OpError>([&] { ops::adamw8bit_update(p, g, mq, ma, mq, ma, 256, sr_params(1, 0)); }, "bf16",
                         "8-bit: f32 param refused with stochastic_rounding");
}
