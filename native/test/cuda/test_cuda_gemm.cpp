// GEMM family on the GPU against the CPU reference (f64): every transpose combination, odd and unaligned
// sizes (scalar loads), aligned sizes (vector loads), both tensor-core tile sizes, split-K, batches with a
// shared operand, alpha/beta, and linear forward/backward at SD shapes.
#include <cmath>

#include "cuda_util.h"
#include "runtime.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {

Shape mat(bool batched, int64_t batch, int64_t r, int64_t c) { return batched ? Shape{batch, r, c} : Shape{r, c}; }

void check_gemm(DType dt, int64_t M, int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta, int64_t batch,
                bool a_batched, bool b_batched, uint64_t seed) {
  bool c_batched = a_batched || b_batched;
  Tensor a = rnd(ta ? mat(a_batched, batch, K, M) : mat(a_batched, batch, M, K), seed);
  Tensor b = rnd(tb ? mat(b_batched, batch, N, K) : mat(b_batched, batch, K, N), seed + 1);
  Tensor c0 = rnd(mat(c_batched, batch, M, N), seed + 2);
  ops::GemmParams p{ta, tb, alpha, beta};
  Tensor want = rounded64(c0, dt);
  ops::gemm(rounded64(a, dt), rounded64(b, dt), want, p);
  Tensor got = beta == 0.0f ? poisoned(c0.shape(), dt) : upload(c0, dt);
  ops::gemm(upload(a, dt), upload(b, dt), got, p);
  char what[160];
  std::snprintf(what, sizeof what, "gemm M%lld N%lld K%lld ta%d tb%d alpha %g beta %g batch %lld%s%s", (long long)M,
                (long long)N, (long long)K, ta, tb, alpha, beta, (long long)batch, a_batched ? "" : " (a shared)",
                b_batched ? "" : " (b shared)");
  expect_close_dev(got, want, dt, what);
}

}  // namespace

DBT_TEST(cuda_gemm_matches_reference_all_layouts) {
  const int64_t sizes[][3] = {{1, 1, 1},    {5, 7, 3},     {13, 33, 17},  {64, 64, 64},  {37, 65, 200},
                              {100, 3, 77}, {3, 100, 1},   {128, 96, 40}, {77, 320, 768}, {130, 129, 36}};
  uint64_t seed = 1;
  for (DType dt : mma_types())
    for (auto& s : sizes)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) check_gemm(dt, s[0], s[1], s[2], ta, tb, 1.0f, 0.0f, 1, false, false, seed++);
}

DBT_TEST(cuda_gemm_alpha_beta_batches_and_shared_operands) {
  uint64_t seed = 100;
  for (DType dt : mma_types()) {
    check_gemm(dt, 29, 41, 23, false, true, 0.5f, 1.0f, 1, false, false, seed++);
    check_gemm(dt, 29, 41, 23, true, false, -1.5f, 0.25f, 1, false, false, seed++);
    check_gemm(dt, 7, 9, 11, false, false, 1.0f, 0.0f, 3, true, true, seed++);
    check_gemm(dt, 70, 90, 40, false, true, 1.0f, 0.0f, 4, true, false, seed++);
    check_gemm(dt, 33, 80, 64, true, false, 1.0f, 1.0f, 2, false, true, seed++);
    // attention-like batched products: [B*H, N, D] @ [B*H, D, M]
    check_gemm(dt, 256, 77, 40, false, true, 0.158f, 0.0f, 16, true, true, seed++);
  }
}

DBT_TEST(cuda_gemm_large_tiles_and_split_k) {
  uint64_t seed = 200;
  for (DType dt : mma_types()) {
    check_gemm(dt, 1536, 1408, 72, false, true, 1.0f, 0.0f, 1, false, false, seed++);  // 128x128 tiles
    check_gemm(dt, 64, 80, 4096, false, false, 1.0f, 0.0f, 1, false, false, seed++);   // split-K
    check_gemm(dt, 320, 320, 8192, true, false, 1.0f, 1.0f, 1, false, false, seed++);  // split-K + beta (dW-like)
  }
}

DBT_TEST(cuda_linear_forward_backward_match_reference) {
  struct Case {
    Shape x;
    int64_t out;
    bool bias;
  };
  const Case cases[] = {{{2, 5, 19}, 23, true}, {{2, 77, 768}, 320, false}, {{1, 64, 320}, 1280, true},
                        {{3, 7}, 2, true},       {{2, 256, 1280}, 320, true}};
  uint64_t seed = 300;
  for (DType dt : mma_types())
    for (const Case& c : cases) {
      const int64_t in = c.x[c.x.ndim() - 1];
      Shape ys = c.x;
      ys[ys.ndim() - 1] = c.out;
      Tensor x = rnd(c.x, seed++), w = rnd({c.out, in}, seed++, -0.2, 0.2), b = rnd({c.out}, seed++);
      Tensor dy = rnd(ys, seed++), dw0 = rnd({c.out, in}, seed++), db0 = rnd({c.out}, seed++);
      Tensor x64 = rounded64(x, dt), w64 = rounded64(w, dt), b64 = rounded64(b, dt), dy64 = rounded64(dy, dt);
      std::string what = "linear " + c.x.str() + " -> " + std::to_string(c.out);

      Tensor want = Tensor::empty(ys, DType::f64);
      ops::linear_forward(x64, w64, c.bias ? &b64 : nullptr, want);
      Tensor dx_ = upload(x, dt), dw_ = upload(w, dt), db_ = upload(b, dt), y = poisoned(ys, dt);
      ops::linear_forward(dx_, dw_, c.bias ? &db_ : nullptr, y);
      expect_close_dev(y, want, dt, what + " forward");

      Tensor gx = Tensor::empty(c.x, DType::f64), gw = rounded64(dw0, dt), gb = rounded64(db0, dt);
      ops::linear_backward(x64, w64, dy64, &gx, &gw, &gb);
      Tensor ggx = poisoned(c.x, dt), ggw = upload(dw0, dt), ggb = upload(db0, dt);
      ops::linear_backward(dx_, dw_, upload(dy, dt), &ggx, &ggw, &ggb);
      expect_close_dev(ggx, gx, dt, what + " dx");
      expect_close_dev(ggw, gw, dt, what + " dw (accumulated)");
      expect_close_dev(ggb, gb, dt, what + " db (accumulated)");
    }
}

DBT_TEST(cuda_bf16_matrix_products_refused_before_sm80_and_run_after) {
  // Turing has no bf16 tensor cores: every matrix-product op refuses bf16 by name, before launching.
  Tensor a = upload(rnd({8, 16}, 1), DType::bf16), b = upload(rnd({16, 8}, 2), DType::bf16);
  Tensor c = poisoned({8, 8}, DType::bf16);
  Tensor x = upload(rnd({1, 4, 8, 8}, 3), DType::bf16), w = upload(rnd({4, 4, 3, 3}, 4), DType::bf16);
  Tensor y = poisoned({1, 4, 8, 8}, DType::bf16);
  Tensor q = upload(rnd({1, 16, 32}, 5), DType::bf16), o = poisoned({1, 16, 32}, DType::bf16);
  auto run_gemm = [&] { ops::gemm(a, b, c); };
  auto run_conv = [&] { ops::conv2d_forward(x, w, nullptr, ops::Conv2dParams::make(1, 1), y); };
  auto run_attn = [&] { ops::attention_forward(q, q, q, ops::AttentionParams{1, 0.0f, false}, o, nullptr); };
  if (cuda::device().cc() < 80) {
    expect_throws<Error>(run_gemm, "bf16 matrix products need compute capability 8.0", "gemm");
    expect_throws<Error>(run_conv, "bf16 matrix products need compute capability 8.0", "conv2d");
    expect_throws<Error>(run_attn, "bf16 attention needs compute capability 8.0", "attention");
  } else {
    run_gemm();
    run_conv();
    run_attn();
    cuda::synchronize("bf16 products");
    EXPECT_TRUE(!std::isnan(get(download(c), 0)) && !std::isnan(get(download(y), 0)) && !std::isnan(get(download(o), 0)),
                "bf16 gemm, conv2d and attention write their outputs");
  }
}
