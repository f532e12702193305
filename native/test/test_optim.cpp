// Optimizers: AdamW fast vs reference and vs the formula; 8-bit AdamW vs its reference (bitwise codes)
// and vs f32 AdamW over several steps; code books; norms, clipping, EMA, overflow check.
#include <cmath>

#include "harness.h"
#include "ops/optim.h"
#include "ops/tensor_ops.h"

using namespace dbt;
using namespace dbt::test;
using ops::AdamWParams;

DBT_TEST(adamw_matches_formula_and_reference) {
  // One element by hand: step 1 from zero moments.
  Tensor p = Tensor::empty({1}), g = Tensor::empty({1}), m = Tensor::zeros({1}), v = Tensor::zeros({1});
  p.data<float>()[0] = 0.5f;
  g.data<float>()[0] = -0.2f;
  AdamWParams hp{1e-3, 0.9, 0.999, 1e-8, 1e-2, 1, 1.0};
  ops::adamw_update(p, g, m, v, hp);
  double mh = 0.1 * -0.2 / 0.1, vh = 0.001 * 0.04 / 0.001;
  double want = 0.5 * (1 - 1e-5) - 1e-3 * mh / (std::sqrt(vh) + 1e-8);
  EXPECT_TRUE(std::fabs(get(p, 0) - want) < 1e-7, "hand-computed AdamW step");
  EXPECT_TRUE(std::fabs(get(m, 0) + 0.02) < 0.02 * 1e-6 && std::fabs(get(v, 0) - 4e-5) < 4e-5 * 1e-6, "moments");

  Tensor P = rand_tensor({1000, 3}, 1), M = Tensor::zeros({1000, 3}), V = Tensor::zeros({1000, 3});
  Tensor rP = to_dtype(P, DType::f64), rM = to_dtype(M, DType::f64), rV = to_dtype(V, DType::f64);
  for (int64_t step = 1; step <= 5; step++) {
    Tensor G = rand_tensor({1000, 3}, 10 + uint64_t(step));
    AdamWParams sp{2e-3, 0.9, 0.999, 1e-8, 1e-2, step, 0.5};
    ops::adamw_update(P, G, M, V, sp);
    Tensor rG = to_dtype(G, DType::f64);
    ops::adamw_update(rP, rG, rM, rV, sp);
  }
  expect_close(P, rP, 1e-6, 1e-5, "params after 5 steps");
  expect_close(M, rM, 1e-7, 1e-5, "m after 5 steps");
  expect_close(V, rV, 1e-9, 1e-5, "v after 5 steps");
}

DBT_TEST(dynamic_maps_are_bitsandbytes_code_books) {
  for (bool s : {true, false}) {
    const float* m = ops::dynamic_map(s);
    bool sorted = true, has0 = false, has1 = false;
    for (int i = 0; i < 256; i++) {
      if (i && !(m[i] > m[i - 1])) sorted = false;
      has0 = has0 || m[i] == 0.0f;
      has1 = has1 || m[i] == 1.0f;
    }
    EXPECT_TRUE(sorted && has0 && has1, s ? "signed map sorted with 0 and 1" : "unsigned map sorted with 0 and 1");
  }
  const float* sm = ops::dynamic_map(true);
  const float* um = ops::dynamic_map(false);
  EXPECT_TRUE(um[0] == 0.0f && um[255] == 1.0f && sm[255] == 1.0f, "end points");
  EXPECT_TRUE(std::fabs(sm[0] + 0.99296875f) < 1e-6, "signed minimum -(0.9859375+1)/2 = -0.99296875");
  EXPECT_TRUE(std::fabs(um[1] - 0.5e-6f * (0.1f + 0.55f)) < 1e-9, "smallest unsigned code 10^-6 * 0.325");
}

DBT_TEST(quantize_blockwise_round_trip) {
  Tensor x = rand_tensor({5000}, 3, -2, 2), q = Tensor::empty({5000}, DType::u8), a = Tensor::empty({20});
  ops::quantize_blockwise(x, true, 256, q, a);
  Tensor y = Tensor::empty({5000});
  ops::dequantize_blockwise(q, a, true, 256, y);
  for (int64_t i = 0; i < 5000; i++) {
    double am = get(a, i / 256), e = std::fabs(get(y, i) - get(x, i));
    EXPECT_TRUE(e <= 0.02 * am, "dequantised within 2% of the block absmax");
  }
}

DBT_TEST(adamw8bit_fast_matches_reference_and_tracks_f32) {
  for (int block : {256, 2048}) {
    const int64_t n = 5000;  // not a multiple of the block
    Tensor P = rand_tensor({n}, 1), rP = clone(P), fP = clone(P);
    const int64_t nb = ops::adamw8bit_blocks(n, block);
    Tensor mq = Tensor::empty({n}, DType::u8), ma = Tensor::empty({nb}), vq = Tensor::empty({n}, DType::u8), va = Tensor::empty({nb});
    ops::adamw8bit_init(mq, ma, vq, va);
    Tensor rmq = clone(mq), rma = clone(ma), rvq = clone(vq), rva = clone(va);
    Tensor fm = Tensor::zeros({n}), fv = Tensor::zeros({n});
    for (int64_t step = 1; step <= 10; step++) {
      Tensor G = rand_tensor({n}, 100 + uint64_t(step), -1, 1);
      AdamWParams hp{1e-2, 0.9, 0.999, 1e-8, 1e-2, step, 1.0};
      ops::adamw8bit_update(P, G, mq, ma, vq, va, block, hp);
      ops::ref::adamw8bit_update(rP, G, rmq, rma, rvq, rva, block, hp);
      ops::adamw_update(fP, G, fm, fv, hp);
    }
    std::string b = " block " + std::to_string(block);
    expect_close(P, rP, 1e-6, 1e-6, "8-bit fast vs reference params" + b);
    expect_equal_bits(mq, rmq, "m codes" + b);
    expect_equal_bits(vq, rvq, "v codes" + b);
    // the 8-bit optimizer follows the f32 one: parameter drift small next to the total update (10 * lr)
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = std::max(worst, std::fabs(get(P, i) - get(fP, i)));
    EXPECT_TRUE(worst < 0.1 * 10 * 1e-2, "8-bit vs f32 AdamW drift " + std::to_string(worst) + b);
  }
}

DBT_TEST(grad_norm_clip_ema_and_overflow) {
  Tensor a = rand_tensor({3000}, 1), b = rand_tensor({7, 11}, 2);
  Tensor norm = Tensor::empty({1});
  ops::global_norm({a, b}, norm);
  Tensor a64 = to_dtype(a, DType::f64), b64 = to_dtype(b, DType::f64), rn = Tensor::empty({1}, DType::f64);
  ops::global_norm({a64, b64}, rn);
  expect_close(norm, rn, 1e-6, 1e-6, "global norm");
  Tensor ac = clone(a), bc = clone(b);
  ops::clip_by_norm({&ac, &bc}, norm, 1.0f);
  Tensor n2 = Tensor::empty({1});
  ops::global_norm({ac, bc}, n2);
  EXPECT_TRUE(std::fabs(get(n2, 0) - 1.0) < 1e-4, "clipped to norm 1");
  Tensor ad = clone(a);
  ops::clip_by_norm({&ad}, norm, 1e6f);
  expect_equal_bits(ad, a, "no clipping under the limit");

  Tensor e = rand_tensor({100}, 3), p = rand_tensor({100}, 4), re = to_dtype(e, DType::f64);
  ops::ema_update(e, p, 0.999f);
  ops::ema_update(re, to_dtype(p, DType::f64), 0.999f);
  expect_close(e, re, 1e-7, 1e-6, "ema");

  Tensor f = Tensor::empty({1});
  ops::check_finite({a, b}, f);
  EXPECT_TRUE(get(f, 0) == 0.0, "finite");
  set(b, 40, INFINITY);
  ops::check_finite({a, b}, f);
  EXPECT_TRUE(get(f, 0) == 1.0, "inf found");
  set(b, 40, 0.5);
  set(a, 2999, std::nan(""));
  ops::check_finite({a, b}, f);
  EXPECT_TRUE(get(f, 0) == 1.0, "NaN found");
  Tensor h = Tensor::empty({3}, DType::f16);
  ops::fill(h, 65504.0);
  ops::check_finite({h}, f);
  EXPECT_TRUE(get(f, 0) == 0.0, "f16 max is finite");
}

DBT_TEST(optim_rejects_bad_state) {
  Tensor p = Tensor::zeros({10}), g = Tensor::zeros({10}), mq = Tensor::zeros({10}, DType::u8), ma = Tensor::zeros({2});
  expect_throws<OpError>([&] { ops::adamw8bit_update(p, g, mq, ma, mq, ma, 256, AdamWParams{}); },
                         "m_absmax and v_absmax need one entry per block (1)", "block count");
  Tensor m = Tensor::zeros({9});
  expect_throws<OpError>([&] { ops::adamw_update(p, g, m, m, AdamWParams{}); }, "param and m must have the same shape",
                         "moment shape");
}

DBT_TEST(adamw8bit_multi_equals_per_tensor_calls) {
  const int block = 256;
  std::vector<Tensor> P, Q, G;
  std::vector<std::vector<Tensor>> S, R;  // states for the multi call and for the per-tensor calls
  for (int i = 0; i < 5; i++) {
    const int64_t n = 1 + i * 611;
    P.push_back(rand_tensor({n}, 40 + uint64_t(i)));
    Q.push_back(clone(P.back()));
    G.push_back(rand_tensor({n}, 50 + uint64_t(i)));
    const int64_t nb = ops::adamw8bit_blocks(n, block);
    for (auto* st : {&S, &R}) {
      st->push_back({Tensor::empty({n}, DType::u8), Tensor::empty({nb}), Tensor::empty({n}, DType::u8), Tensor::empty({nb})});
      auto& s = st->back();
      ops::adamw8bit_init(s[0], s[1], s[2], s[3]);
    }
  }
  std::vector<ops::AdamW8bitTensor> list;
  for (size_t i = 0; i < P.size(); i++) list.push_back({&P[i], &G[i], &S[i][0], &S[i][1], &S[i][2], &S[i][3]});
  AdamWParams hp{1e-2, 0.9, 0.999, 1e-8, 1e-2, 1, 1.0};
  ops::adamw8bit_update_multi(list, block, hp);
  for (size_t i = 0; i < P.size(); i++) {
    ops::adamw8bit_update(Q[i], G[i], R[i][0], R[i][1], R[i][2], R[i][3], block, hp);
    expect_equal_bits(P[i], Q[i], "multi vs single params " + std::to_string(i));
    for (int k = 0; k < 4; k++) expect_equal_bits(S[i][size_t(k)], R[i][size_t(k)], "multi vs single state " + std::to_string(i));
  }
  Tensor p64 = to_dtype(P[0], DType::f64);
  list[1].param = &p64;
  expect_throws<OpError>([&] { ops::adamw8bit_update_multi(list, block, hp); }, "entry 1", "mixed dtypes refused");
}
