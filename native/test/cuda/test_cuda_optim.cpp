// Optimizer ops on the GPU. f32 AdamW and 8-bit AdamW must equal the CPU fast version bit for bit (same f32
// expression, no FMA contraction): parameters, moments, absmax values and codes over several steps. f16/bf16
// parameters are checked one step at a time against the reference on the GPU's state (codes still equal:
// they depend on the gradients only). Norm, clipping, EMA and the overflow check vs the reference, including
// long tensor lists (one launch over a device table of tensors).
#include <cmath>

#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;
using ops::AdamWParams;

namespace {
Tensor dev_copy(const Tensor& h) {  // exact device copy of a CPU tensor (any dtype)
  Tensor d = Tensor::empty(h.shape(), h.dtype(), Device::cuda);
  ops::copy(h, d);
  return d;
}
AdamWParams hp_for(int64_t step) { return AdamWParams{1e-2, 0.9, 0.999, 1e-8, 1e-2, step, 0.75}; }
}  // namespace

DBT_TEST(cuda_adamw_f32_bitwise_equal_to_cpu) {
  const Shape s{3, 1001};
  Tensor P = rnd(s, 1), M = rnd(s, 2, -0.1, 0.1), V = rnd(s, 3, 1e-4, 1e-2);
  Tensor gP = dev_copy(P), gM = dev_copy(M), gV = dev_copy(V);
  for (int64_t step = 1; step <= 4; step++) {
    Tensor G = rnd(s, 10 + uint64_t(step));
    ops::adamw_update(P, G, M, V, hp_for(step));
    ops::adamw_update(gP, dev_copy(G), gM, gV, hp_for(step));
  }
  expect_equal_bits(download_raw(gP), P, "adamw f32 params after 4 steps");
  expect_equal_bits(download_raw(gM), M, "adamw f32 m after 4 steps");
  expect_equal_bits(download_raw(gV), V, "adamw f32 v after 4 steps");
}

DBT_TEST(cuda_adamw_matches_reference) {
  const Shape s{7, 333};
  for (DType dt : float_types()) {
    Tensor gP = upload(rnd(s, 1), dt), gM = upload(rnd(s, 2, -0.1, 0.1), dt), gV = upload(rnd(s, 3, 1e-4, 1e-2), dt);
    for (int64_t step = 1; step <= 3; step++) {
      Tensor G = rnd(s, 20 + uint64_t(step));
      Tensor rP = download(gP), rM = download(gM), rV = download(gV);  // this step from the GPU's state
      ops::adamw_update(rP, rounded64(G, dt), rM, rV, hp_for(step));
      ops::adamw_update(gP, upload(G, dt), gM, gV, hp_for(step));
      std::string what = "adamw step " + std::to_string(step);
      expect_close_dev(gP, rP, dt, what + " params");
      expect_close_dev(gM, rM, dt, what + " m");
      expect_close_dev(gV, rV, dt, what + " v");
    }
  }
}

namespace {
struct State8 {
  Tensor mq, ma, vq, va;
  State8(int64_t n, int block, Device d) {
    const int64_t nb = ops::adamw8bit_blocks(n, block);
    mq = Tensor::empty({n}, DType::u8, d);
    vq = Tensor::empty({n}, DType::u8, d);
    ma = Tensor::empty({nb}, DType::f32, d);
    va = Tensor::empty({nb}, DType::f32, d);
    ops::adamw8bit_init(mq, ma, vq, va);
  }
  void expect_equal(const State8& cpu, const std::string& what) const {
    expect_equal_bits(download_raw(mq), cpu.mq, what + " m codes");
    expect_equal_bits(download_raw(vq), cpu.vq, what + " v codes");
    expect_equal_bits(download_raw(ma), cpu.ma, what + " m absmax");
    expect_equal_bits(download_raw(va), cpu.va, what + " v absmax");
  }
};
}  // namespace

DBT_TEST(cuda_adamw8bit_f32_bitwise_equal_to_cpu) {
  for (int block : {256, 2048})
    for (int64_t n : {int64_t(5000), int64_t(1), int64_t(2048 * 3)}) {
      std::string what = "8-bit AdamW n " + std::to_string(n) + " block " + std::to_string(block);
      Tensor P = rnd({n}, 1);
      Tensor gP = dev_copy(P);
      State8 cs(n, block, Device::cpu), gs(n, block, Device::cuda);
      for (int64_t step = 1; step <= 5; step++) {
        Tensor G = rnd({n}, 100 + uint64_t(step), -1, 1);
        if (step == 3 && n > 300) set(G, 257, 40.0);  // an outlier: one block's absmax jumps
        ops::adamw8bit_update(P, G, cs.mq, cs.ma, cs.vq, cs.va, block, hp_for(step));
        ops::adamw8bit_update(gP, dev_copy(G), gs.mq, gs.ma, gs.vq, gs.va, block, hp_for(step));
      }
      expect_equal_bits(download_raw(gP), P, what + " params after 5 steps");
      gs.expect_equal(cs, what + " after 5 steps");
    }
}

DBT_TEST(cuda_adamw8bit_half_params_match_reference) {
  const int64_t n = 3001;
  const int block = 256;
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor gP = upload(rnd({n}, 5), dt);
    State8 cs(n, block, Device::cpu), gs(n, block, Device::cuda);
    for (int64_t step = 1; step <= 3; step++) {
      Tensor G = to_dtype(rounded64(rnd({n}, 200 + uint64_t(step)), dt), DType::f32);  // gradients exact in dt
      Tensor P = to_dtype(download(gP), DType::f32);                                   // this step from the GPU's params
      ops::adamw8bit_update(P, G, cs.mq, cs.ma, cs.vq, cs.va, block, hp_for(step));
      ops::adamw8bit_update(gP, upload(G, dt), gs.mq, gs.ma, gs.vq, gs.va, block, hp_for(step));
      std::string what = tag(dt) + "8-bit AdamW step " + std::to_string(step);
      expect_close_dev(gP, to_dtype(P, DType::f64), dt, what + " params");
      gs.expect_equal(cs, what);
    }
  }
}

DBT_TEST(cuda_adamw8bit_multi_equals_per_tensor_cpu) {
  // 70 tensors (one launch, new gradient tensors every step), odd sizes, both block sizes.
  for (int block : {256, 2048}) {
    std::vector<Tensor> P, gP, G, gG;
    std::vector<State8> cs, gs;
    for (int i = 0; i < 70; i++) {
      const int64_t n = 1 + (int64_t(i) * 977) % 5003;
      P.push_back(rnd({n}, 300 + uint64_t(i)));
      gP.push_back(dev_copy(P.back()));
      cs.emplace_back(n, block, Device::cpu);
      gs.emplace_back(n, block, Device::cuda);
    }
    for (int64_t step = 1; step <= 3; step++) {
      std::vector<Tensor> Gs, gGs;
      std::vector<ops::AdamW8bitTensor> clist, glist;
      for (int i = 0; i < 70; i++) {
        Gs.push_back(rnd(P[size_t(i)].shape(), 1000 * uint64_t(step) + uint64_t(i)));
        gGs.push_back(dev_copy(Gs.back()));
      }
      for (int i = 0; i < 70; i++) {
        size_t k = size_t(i);
        clist.push_back({&P[k], &Gs[k], &cs[k].mq, &cs[k].ma, &cs[k].vq, &cs[k].va});
        glist.push_back({&gP[k], &gGs[k], &gs[k].mq, &gs[k].ma, &gs[k].vq, &gs[k].va});
      }
      ops::adamw8bit_update_multi(clist, block, hp_for(step));
      ops::adamw8bit_update_multi(glist, block, hp_for(step));
    }
    for (int i = 0; i < 70; i++) {
      std::string what = "multi 8-bit AdamW tensor " + std::to_string(i) + " block " + std::to_string(block);
      expect_equal_bits(download_raw(gP[size_t(i)]), P[size_t(i)], what + " params");
      gs[size_t(i)].expect_equal(cs[size_t(i)], what);
    }
  }
}

namespace {
// Sizes for long tensor lists: empty, one element, around both block sizes, odd ones.
int64_t list_size(int i) {
  switch (i % 8) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 255 + i % 3;
    case 3: return 2047 + i % 3;
    default: return 1 + (int64_t(i) * 977) % 5003;
  }
}
}  // namespace

DBT_TEST(cuda_adamw8bit_multi_150_tensors_equal_per_tensor_cpu) {
  // One launch over 150 tensors (the old kernel-parameter lists took 56). Steps 1-2 pass the same list with
  // new gradient values in the same tensors (the device table is reused), step 3 other gradient tensors (a
  // new table of the same size: a stale one would read step 2's gradients), step 4 the list reversed
  // without the first ten tensors; the CPU updates each tensor on its own.
  constexpr int kN = 150;
  for (int block : {256, 2048}) {
    std::vector<Tensor> P, gP, G, gG[2];
    std::vector<State8> cs, gs;
    for (int i = 0; i < kN; i++) {
      const int64_t n = list_size(i);
      P.push_back(rnd({n}, 2000 + uint64_t(i)));
      gP.push_back(dev_copy(P.back()));
      G.push_back(Tensor::empty({n}));
      for (auto& g : gG) g.push_back(Tensor::empty({n}, DType::f32, Device::cuda));
      cs.emplace_back(n, block, Device::cpu);
      gs.emplace_back(n, block, Device::cuda);
    }
    for (int64_t step = 1; step <= 4; step++) {
      std::vector<Tensor>& g = gG[step >= 3];
      std::vector<ops::AdamW8bitTensor> glist;
      for (int k = 0; k < kN; k++) {
        const size_t i = size_t(step == 4 ? kN - 1 - k : k);
        if (step == 4 && i < 10) continue;
        ops::copy(rnd(P[i].shape(), 5000 * uint64_t(step) + i, -2, 2), G[i]);
        ops::copy(G[i], g[i]);
        ops::adamw8bit_update(P[i], G[i], cs[i].mq, cs[i].ma, cs[i].vq, cs[i].va, block, hp_for(step));
        glist.push_back({&gP[i], &g[i], &gs[i].mq, &gs[i].ma, &gs[i].vq, &gs[i].va});
      }
      ops::adamw8bit_update_multi(glist, block, hp_for(step));
    }
    for (size_t i = 0; i < size_t(kN); i++) {
      std::string what = "150-tensor 8-bit AdamW tensor " + std::to_string(i) + " block " + std::to_string(block);
      expect_equal_bits(download_raw(gP[i]), P[i], what + " params");
      gs[i].expect_equal(cs[i], what);
    }
  }
}

DBT_TEST(cuda_global_norm_and_clip_match_reference) {
  for (DType dt : float_types()) {
    // 131 tensors: more than one launch's list; one larger than a chunk.
    std::vector<Tensor> host, dev;
    for (int i = 0; i < 131; i++) {
      const int64_t n = i == 7 ? 40000 : 1 + (int64_t(i) * 37) % 301;
      host.push_back(rnd({n}, 500 + uint64_t(i)));
      dev.push_back(upload(host.back(), dt));
    }
    std::vector<Tensor> r64;
    for (auto& h : host) r64.push_back(rounded64(h, dt));
    Tensor want = Tensor::empty({1}, DType::f64);
    ops::global_norm(r64, want);
    Tensor norm = poisoned({1}, dt), norm2 = poisoned({1}, dt);
    ops::global_norm(dev, norm);
    expect_close_dev(norm, want, dt, "global norm");
    ops::global_norm(dev, norm2);
    expect_equal_bits(download_raw(norm), download_raw(norm2), tag(dt) + "global norm deterministic");

    // clip to 1: reference on the GPU's norm value
    Tensor n64 = download(norm);
    std::vector<Tensor*> rp, dp;
    for (auto& t : r64) rp.push_back(&t);
    for (auto& t : dev) dp.push_back(&t);
    ops::clip_by_norm(rp, n64, 1.0f);
    ops::clip_by_norm(dp, norm, 1.0f);
    for (size_t i = 0; i < dev.size(); i += 13) expect_close_dev(dev[i], r64[i], dt, "clipped tensor " + std::to_string(i));
    Tensor after = poisoned({1}, dt);
    ops::global_norm(dev, after);
    EXPECT_TRUE(std::fabs(get(download(after), 0) - 1.0) < 20 * rtol_for(dt), tag(dt) + "norm 1 after clipping");

    // under the limit: untouched
    Tensor before = download_raw(dev[3]);
    ops::clip_by_norm(dp, norm, 1e6f);
    expect_equal_bits(download_raw(dev[3]), before, tag(dt) + "no clipping under the limit");
  }
}

DBT_TEST(cuda_ema_matches_reference) {
  for (DType dt : float_types()) {
    Tensor e = rnd({5, 1001}, 1), p = rnd({5, 1001}, 2);
    Tensor want = rounded64(e, dt);
    ops::ema_update(want, rounded64(p, dt), 0.999f);
    Tensor ge = upload(e, dt);
    ops::ema_update(ge, upload(p, dt), 0.999f);
    expect_close_dev(ge, want, dt, "ema");
  }
  Tensor e = rnd({4097}, 3), p = rnd({4097}, 4), ge = dev_copy(e);  // f32: the CPU's expression exactly
  ops::ema_update(e, p, 0.9999f);
  ops::ema_update(ge, dev_copy(p), 0.9999f);
  expect_equal_bits(download_raw(ge), e, "ema f32 bits vs CPU");
}

DBT_TEST(cuda_check_finite) {
  for (DType dt : float_types()) {
    std::vector<Tensor> ts;
    for (int i = 0; i < 140; i++) ts.push_back(upload(rnd({1 + (int64_t(i) * 53) % 20000}, 700 + uint64_t(i)), dt));
    Tensor found = poisoned({1}, DType::f32);
    ops::check_finite(ts, found);
    EXPECT_TRUE(get(download(found), 0) == 0.0, tag(dt) + "finite");
    for (double bad : {double(INFINITY), -double(INFINITY), std::nan("")}) {
      for (size_t which : {size_t(0), size_t(77), size_t(139)}) {
        Tensor h = download_raw(ts[which]);
        Tensor changed = Tensor::empty(h.shape(), dt);
        ops::copy(h, changed);
        set(changed, changed.numel() - 1, bad);
        Tensor saved = ts[which];
        ts[which] = dev_copy(changed);
        ops::check_finite(ts, found);
        EXPECT_TRUE(get(download(found), 0) == 1.0,
                    tag(dt) + "non-finite " + std::to_string(bad) + " in tensor " + std::to_string(which));
        ts[which] = saved;
      }
    }
  }
  Tensor h = Tensor::empty({3}, DType::f16, Device::cuda), found = poisoned({1}, DType::f32);
  ops::fill(h, 65504.0);
  ops::check_finite({h}, found);
  EXPECT_TRUE(get(download(found), 0) == 0.0, "f16 max is finite");
}
