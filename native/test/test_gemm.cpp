// GEMM family: fast vs reference on odd sizes, every SIMD level; linear backward vs finite differences.
#include "core/thread_pool.h"
#include "harness.h"
#include "ops/cpu/gemm_pack.h"
#include "ops/gemm.h"

using namespace dbt;
using namespace dbt::test;

namespace {

Shape mat(bool batched, int64_t batch, int64_t r, int64_t c) {
  return batched ? Shape{batch, r, c} : Shape{r, c};
}

void check_gemm(int64_t M, int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta, int64_t batch,
                bool a_batched, bool b_batched, uint64_t seed) {
  bool c_batched = a_batched || b_batched;
  Tensor a = rand_tensor(ta ? mat(a_batched, batch, K, M) : mat(a_batched, batch, M, K), seed);
  Tensor b = rand_tensor(tb ? mat(b_batched, batch, N, K) : mat(b_batched, batch, K, N), seed + 1);
  Tensor c0 = rand_tensor(mat(c_batched, batch, M, N), seed + 2);
  ops::GemmParams p{ta, tb, alpha, beta};
  Tensor want = to_dtype(c0, DType::f64);
  ops::gemm(to_dtype(a, DType::f64), to_dtype(b, DType::f64), want, p);
  Tensor got = clone(c0);
  if (beta == 0.0f) poison(got);  // beta 0 must not read c
  ops::gemm(a, b, got, p);
  char what[160];
  std::snprintf(what, sizeof what, "gemm M%lld N%lld K%lld ta%d tb%d a%g b%g batch%lld", (long long)M,
                (long long)N, (long long)K, ta, tb, alpha, beta, (long long)batch);
  expect_close(got, want, 1e-5 * double(K + 1), 1e-5, what);
}

}  // namespace

DBT_TEST(gemm_fast_matches_reference) {
  for_each_simd([] {
    uint64_t seed = 1;
    const int64_t sizes[][3] = {{1, 1, 1},   {5, 7, 3},    {13, 33, 17}, {12, 32, 192}, {37, 65, 200},
                                {64, 48, 513}, {100, 3, 77}, {3, 100, 1},  {25, 70, 385}};
    for (auto& s : sizes)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) check_gemm(s[0], s[1], s[2], ta, tb, 1.0f, 0.0f, 1, false, false, seed++);
    check_gemm(29, 41, 23, false, true, 0.5f, 1.0f, 1, false, false, seed++);
    check_gemm(29, 41, 23, true, false, -1.5f, 0.25f, 1, false, false, seed++);
  });
}

// The vectorised panel packers against the definition, bit for bit: every panel width the kernels use,
// partial panels (cols < w), k lengths around the 8/16 transpose blocks, alpha 1 and not.
DBT_TEST(gemm_panel_packing_matches_definition) {
  for_each_simd([] {
    Rng rng(5);
    const int64_t ld = 53;
    std::vector<float> src(size_t(ld * 60));
    for (auto& v : src) v = float(rng.uniform(-1, 1));
    for (int w : {4, 6, 8, 12, 16, 32, 48})
      for (int cols : {1, w / 2 + 1, w - 1, w})
        for (int64_t kc : {1, 7, 8, 15, 16, 17, 40})
          for (float alpha : {1.0f, -1.5f})
            for (bool t : {false, true}) {
              if (cols < 1 || cols > w) continue;
              std::vector<float> got(size_t(kc * w), NAN), want(size_t(kc * w));
              for (int64_t k = 0; k < kc; k++)
                for (int j = 0; j < w; j++)
                  want[size_t(k * w + j)] = j < cols ? alpha * src[size_t(t ? j * ld + k : k * ld + j)] : 0.0f;
              if (t)
                dbt::cpu::pack_panel_t(src.data(), ld, cols, kc, w, alpha, got.data());
              else
                dbt::cpu::pack_panel_n(src.data(), ld, cols, kc, w, alpha, got.data());
              for (size_t i = 0; i < got.size(); i++)
                EXPECT_TRUE(got[i] == want[i], std::string(t ? "pack_panel_t" : "pack_panel_n") + " w " +
                                                   std::to_string(w) + " cols " + std::to_string(cols) + " kc " +
                                                   std::to_string(kc) + " element " + std::to_string(i));
            }
  });
}

// The segmented packer (conv weight taps): pieces of seg_len columns seg_stride apart, any start k0.
DBT_TEST(gemm_segmented_panel_packing_matches_definition) {
  for_each_simd([] {
    Rng rng(6);
    std::vector<float> src(4000);
    for (auto& v : src) v = float(rng.uniform(-1, 1));
    for (int64_t seg_len : {1, 3, 9, 20})
      for (int w : {12, 32})
        for (int cols : {1, 7, w})
          for (int64_t k0 : {0, 5, 13})
            for (int64_t kc : {1, 9, 16, 31}) {
              if (cols > w) continue;
              const int64_t ld = seg_len, seg_stride = 40 * seg_len;  // rows interleaved inside each segment block
              std::vector<float> got(size_t(kc * w), NAN), want(size_t(kc * w));
              for (int64_t k = 0; k < kc; k++)
                for (int j = 0; j < w; j++) {
                  const int64_t q = (k0 + k) / seg_len, r = (k0 + k) % seg_len;
                  want[size_t(k * w + j)] = j < cols ? src[size_t(j * ld + q * seg_stride + r)] : 0.0f;
                }
              dbt::cpu::pack_panel_t_seg(src.data(), ld, seg_len, seg_stride, cols, k0, kc, w, got.data());
              for (size_t i = 0; i < got.size(); i++)
                EXPECT_TRUE(got[i] == want[i], "pack_panel_t_seg seg " + std::to_string(seg_len) + " w " +
                                                   std::to_string(w) + " cols " + std::to_string(cols) + " k0 " +
                                                   std::to_string(k0) + " kc " + std::to_string(kc));
            }
  });
}

DBT_TEST(gemm_batched_and_broadcast) {
  check_gemm(7, 9, 11, false, false, 1.0f, 0.0f, 3, true, true, 100);
  check_gemm(7, 9, 11, false, true, 1.0f, 0.0f, 4, true, false, 101);  // b shared by all batches
  check_gemm(7, 9, 11, true, false, 1.0f, 1.0f, 2, false, true, 102);  // a shared by all batches
}

DBT_TEST(gemm_large_multithreaded_is_split_independent) {
  // N = 199: the 12x32 kernel; N = 40: the 8x48 one (attention's head dim), threads split M then N
  const int64_t shapes[][3] = {{301, 199, 257}, {301, 40, 500}, {40, 301, 500}};
  for (auto& sh : shapes) {
    const int64_t M = sh[0], N = sh[1], K = sh[2];
    Tensor a = rand_tensor({M, K}, 7), b = rand_tensor({K, N}, 8);
    Tensor c1 = Tensor::empty({M, N}), c2 = Tensor::empty({M, N});
    int saved = num_threads();
    set_num_threads(1);
    ops::gemm(a, b, c1);
    set_num_threads(3);
    ops::gemm(a, b, c2);
    set_num_threads(saved);
    const std::string what = "gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
    expect_equal_bits(c1, c2, what + " 1 thread vs 3 threads");
    Tensor want = Tensor::empty({M, N}, DType::f64);
    ops::gemm(to_dtype(a, DType::f64), to_dtype(b, DType::f64), want);
    expect_close(c1, want, 1e-4, 1e-5, what);
  }
}

DBT_TEST(gemm_rejects_bad_shapes) {
  Tensor a = rand_tensor({3, 4}, 1), b = rand_tensor({5, 6}, 2), c = Tensor::empty({3, 6});
  expect_throws<OpError>([&] { ops::gemm(a, b, c); }, "gemm: inner dimensions", "inner mismatch");
  expect_throws<OpError>([&] { ops::gemm(a, b, c); }, "a [3,4] f32, b [5,6] f32, c [3,6] f32", "operands listed");
  Tensor h = Tensor::empty({3, 4}, DType::f16), w = Tensor::empty({4, 6}, DType::f16), hc = Tensor::empty({3, 6}, DType::f16);
  expect_throws<OpError>([&] { ops::gemm(h, w, hc); }, "cast to f32", "f16 on cpu");
}

DBT_TEST(linear_forward_fast_matches_reference) {
  for_each_simd([] {
    for (bool bias : {false, true}) {
      Tensor x = rand_tensor({2, 5, 19}, 11), w = rand_tensor({23, 19}, 12), b = rand_tensor({23}, 13);
      Tensor y = Tensor::empty({2, 5, 23}), want = Tensor::empty({2, 5, 23}, DType::f64);
      poison(y);
      Tensor b64 = to_dtype(b, DType::f64);
      ops::linear_forward(x, w, bias ? &b : nullptr, y);
      ops::linear_forward(to_dtype(x, DType::f64), to_dtype(w, DType::f64), bias ? &b64 : nullptr, want);
      expect_close(y, want, 1e-5, 1e-5, bias ? "linear with bias" : "linear without bias");
    }
  });
}

DBT_TEST(linear_backward_reference_matches_finite_differences) {
  Tensor x = rand_tensor({3, 7}, 21, -1, 1, DType::f64), w = rand_tensor({5, 7}, 22, -1, 1, DType::f64);
  Tensor b = rand_tensor({5}, 23, -1, 1, DType::f64), dy = rand_tensor({3, 5}, 24, -1, 1, DType::f64);
  Tensor y = Tensor::empty({3, 5}, DType::f64);
  auto loss = [&] {
    ops::linear_forward(x, w, &b, y);
    return dot(y, dy);
  };
  Tensor dx = Tensor::empty({3, 7}, DType::f64), dw = Tensor::zeros({5, 7}, DType::f64),
         db = Tensor::zeros({5}, DType::f64);
  ops::linear_backward(x, w, dy, &dx, &dw, &db);
  expect_close(dx, numeric_grad(loss, x), 1e-7, 1e-6, "dx");
  expect_close(dw, numeric_grad(loss, w), 1e-7, 1e-6, "dw");
  expect_close(db, numeric_grad(loss, b), 1e-7, 1e-6, "db");
}

DBT_TEST(linear_backward_fast_matches_reference) {
  for_each_simd([] {
    Tensor x = rand_tensor({4, 9, 37}, 31), w = rand_tensor({29, 37}, 32), dy = rand_tensor({4, 9, 29}, 33);
    Tensor dw0 = rand_tensor({29, 37}, 34), db0 = rand_tensor({29}, 35);  // accumulation onto existing values
    Tensor dx = Tensor::empty(x.shape()), dw = clone(dw0), db = clone(db0);
    poison(dx);
    ops::linear_backward(x, w, dy, &dx, &dw, &db);
    Tensor rdx = Tensor::empty(x.shape(), DType::f64), rdw = to_dtype(dw0, DType::f64), rdb = to_dtype(db0, DType::f64);
    ops::linear_backward(to_dtype(x, DType::f64), to_dtype(w, DType::f64), to_dtype(dy, DType::f64), &rdx, &rdw, &rdb);
    expect_close(dx, rdx, 1e-5, 1e-5, "dx");
    expect_close(dw, rdw, 1e-4, 1e-5, "dw");
    expect_close(db, rdb, 1e-5, 1e-5, "db");
  });
}
