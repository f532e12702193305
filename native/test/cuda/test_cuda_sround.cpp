// Stochastic rounding on the GPU: cast_stochastic, AdamW and 8-bit AdamW (single and multi-tensor) on bf16
// parameters must equal the CPU fast version bit for bit (same Philox words, same f32 expression with
// explicitly rounded intrinsics), over several steps.
#include <cmath>
#include <cstring>

#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;
using ops::AdamWParams;

namespace {
Tensor dev(const Tensor& h) {
  Tensor d = Tensor::empty(h.shape(), h.dtype(), Device::cuda);
  ops::copy(h, d);
  return d;
}
Tensor bf16_of(const Tensor& f32) {
  Tensor b = Tensor::empty(f32.shape(), DType::bf16);
  ops::cast(f32, b);
  return b;
}
AdamWParams sr_hp(int64_t step, uint32_t stream) {
  AdamWParams p{1e-2, 0.9, 0.999, 1e-8, 1e-2, step, 0.75};
  p.stochastic_rounding = true;
  p.sr_seed = 0xfeedfacecafebeefull;
  p.sr_stream = stream;
  return p;
}
}  // namespace

DBT_TEST(cuda_cast_stochastic_bitwise_equal_to_cpu) {
  const int64_t n = 300007;
  Rng r(3);
  Tensor x = Tensor::empty({n});
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = uint32_t(r.next());
    if (i % 13 == 0) u |= 0x7f800000u;  // inf and NaN too
    std::memcpy(&x.data<float>()[i], &u, 4);
  }
  SrKey k;
  k.seed = 0x0123456789abcdefull;
  k.step = 0x100000007ull;  // both halves of the step used
  k.stream = 5;
  Tensor want = Tensor::empty({n}, DType::bf16);
  ops::cast_stochastic(x, want, k);
  Tensor got = Tensor::empty({n}, DType::bf16, Device::cuda);
  ops::cast_stochastic(dev(x), got, k);
  expect_equal_bits(download_raw(got), want, "cast_stochastic");
}

DBT_TEST(cuda_adamw_sr_bitwise_equal_to_cpu) {
  const Shape s{3, 10001};
  Tensor P = bf16_of(rnd(s, 1)), M = rnd(s, 2, -0.1, 0.1), V = rnd(s, 3, 1e-4, 1e-2);
  Tensor gP = dev(P), gM = dev(M), gV = dev(V);
  for (int64_t step = 1; step <= 4; step++) {
    Tensor G = bf16_of(rnd(s, 10 + uint64_t(step)));
    ops::adamw_update(P, G, M, V, sr_hp(step, 2));
    ops::adamw_update(gP, dev(G), gM, gV, sr_hp(step, 2));
  }
  expect_equal_bits(download_raw(gP), P, "adamw sr params after 4 steps");
  expect_equal_bits(download_raw(gM), M, "adamw sr m");
  expect_equal_bits(download_raw(gV), V, "adamw sr v");
}

DBT_TEST(cuda_adamw8bit_sr_bitwise_equal_to_cpu) {
  for (int block : {256, 2048}) {
    std::vector<Tensor> P, G, gP;
    std::vector<std::vector<Tensor>> S, gS;
    for (int i = 0; i < 3; i++) {
      const int64_t n = 17 + int64_t(i) * 4099;
      const int64_t nb = ops::adamw8bit_blocks(n, block);
      P.push_back(bf16_of(rnd({n}, 30 + uint64_t(i))));
      gP.push_back(dev(P.back()));
      S.push_back({Tensor::empty({n}, DType::u8), Tensor::empty({nb}), Tensor::empty({n}, DType::u8), Tensor::empty({nb})});
      ops::adamw8bit_init(S.back()[0], S.back()[1], S.back()[2], S.back()[3]);
      gS.push_back({dev(S.back()[0]), dev(S.back()[1]), dev(S.back()[2]), dev(S.back()[3])});
    }
    for (int64_t step = 1; step <= 3; step++) {
      std::vector<Tensor> gG;
      std::vector<ops::AdamW8bitTensor> list;
      for (size_t i = 0; i < P.size(); i++) {
        Tensor Gi = bf16_of(rnd(P[i].shape(), 40 + uint64_t(step) * 10 + i));
        gG.push_back(dev(Gi));
        ops::adamw8bit_update(P[i], Gi, S[i][0], S[i][1], S[i][2], S[i][3], block, sr_hp(step, uint32_t(7 + i)));
      }
      // tensor 0 by the single-tensor op, the rest in one multi-tensor launch
      ops::adamw8bit_update(gP[0], gG[0], gS[0][0], gS[0][1], gS[0][2], gS[0][3], block, sr_hp(step, 7));
      for (size_t i = 1; i < P.size(); i++)
        list.push_back({&gP[i], &gG[i], &gS[i][0], &gS[i][1], &gS[i][2], &gS[i][3], uint32_t(7 + i)});
      ops::adamw8bit_update_multi(list, block, sr_hp(step, 0));
    }
    for (size_t i = 0; i < P.size(); i++) {
      const std::string what = "block " + std::to_string(block) + " tensor " + std::to_string(i);
      expect_equal_bits(download_raw(gP[i]), P[i], "8-bit sr params, " + what);
      for (int k = 0; k < 4; k++) expect_equal_bits(download_raw(gS[i][size_t(k)]), S[i][size_t(k)], "8-bit sr state, " + what);
    }
  }
}

DBT_TEST(cuda_adamw8bit_sr_multi_150_tensors_bitwise_equal_to_cpu) {
  // One launch over 150 bf16 tensors (sizes 0, 1, odd, around the blocks), each entry with its own rounding
  // stream; twice with the same list (the device table reused), against the CPU's per-tensor updates.
  constexpr int kN = 150;
  for (int block : {256, 2048}) {
    std::vector<Tensor> P, gP;
    std::vector<std::vector<Tensor>> S, gS;
    for (int i = 0; i < kN; i++) {
      const int64_t n = i % 7 == 0 ? int64_t(i % 2) : 1 + (int64_t(i) * 1237) % 4099;
      const int64_t nb = ops::adamw8bit_blocks(n, block);
      P.push_back(bf16_of(rnd({n}, 3000 + uint64_t(i))));
      gP.push_back(dev(P.back()));
      S.push_back({Tensor::empty({n}, DType::u8), Tensor::empty({nb}), Tensor::empty({n}, DType::u8), Tensor::empty({nb})});
      ops::adamw8bit_init(S.back()[0], S.back()[1], S.back()[2], S.back()[3]);
      gS.push_back({dev(S.back()[0]), dev(S.back()[1]), dev(S.back()[2]), dev(S.back()[3])});
    }
    std::vector<Tensor> gG;
    for (const Tensor& p : P) gG.push_back(Tensor::empty(p.shape(), DType::bf16, Device::cuda));
    for (int64_t step = 1; step <= 2; step++) {
      std::vector<ops::AdamW8bitTensor> list;
      for (size_t i = 0; i < P.size(); i++) {
        Tensor Gi = bf16_of(rnd(P[i].shape(), 4000 + uint64_t(step) * 1000 + i));
        ops::copy(Gi, gG[i]);
        ops::adamw8bit_update(P[i], Gi, S[i][0], S[i][1], S[i][2], S[i][3], block, sr_hp(step, uint32_t(100 + 3 * i)));
      }
      for (size_t i = 0; i < P.size(); i++)
        list.push_back({&gP[i], &gG[i], &gS[i][0], &gS[i][1], &gS[i][2], &gS[i][3], uint32_t(100 + 3 * i)});
      ops::adamw8bit_update_multi(list, block, sr_hp(step, 0));
    }
    for (size_t i = 0; i < P.size(); i++) {
      const std::string what = "block " + std::to_string(block) + " tensor " + std::to_string(i) + " of 150";
      expect_equal_bits(download_raw(gP[i]), P[i], "8-bit sr params, " + what);
      for (int k = 0; k < 4; k++) expect_equal_bits(download_raw(gS[i][size_t(k)]), S[i][size_t(k)], "8-bit sr state, " + what);
    }
  }
}
