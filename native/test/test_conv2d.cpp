// conv2d: every SD1.x variant, fast vs reference forward and backward; reference backward vs finite
// differences in f64.
#include "core/thread_pool.h"
#include "harness.h"
#include "ops/conv2d.h"
#include "ops/cpu/conv2d_winograd.h"

using namespace dbt;
using namespace dbt::test;
using ops::Conv2dParams;

namespace {

struct Case {
  const char* name;
  int64_t N, C, O, H, W, K;
  Conv2dParams p;
};

const Case kCases[] = {
    {"3x3 s1 p1", 2, 3, 5, 7, 9, 3, Conv2dParams::make(1, 1)},
    {"3x3 s2 p1", 2, 4, 3, 9, 8, 3, Conv2dParams::make(2, 1)},
    {"3x3 s2 vae pad (0,1,0,1)", 1, 3, 4, 8, 7, 3, Conv2dParams{2, 0, 1, 0, 1}},
    {"1x1", 3, 6, 5, 5, 3, 1, Conv2dParams::make(1, 0)},
    {"3x3 s1 p1 deep (several k blocks both ways)", 1, 47, 45, 9, 11, 3, Conv2dParams::make(1, 1)},
    {"3x3 s1 p1 wide (threads split pixels)", 2, 8, 70, 33, 31, 3, Conv2dParams::make(1, 1)},
    {"3x3 s2 p1 deep", 1, 40, 9, 11, 11, 3, Conv2dParams::make(2, 1)},
    {"3x3 s2 narrow (W = 1, 2)", 2, 3, 4, 5, 1, 3, Conv2dParams::make(2, 1)},
    {"3x3 s2 vae pad, W = 2", 1, 3, 2, 4, 2, 3, Conv2dParams{2, 0, 1, 0, 1}},
    {"3x3 s1 p1 Winograd path (>= 1024 pixels, odd sizes)", 2, 17, 18, 33, 35, 3, Conv2dParams::make(1, 1)},
    // more channels than one k block of the packed GEMM (the weights are packed per k block)
    {"3x3 s1 p1 Winograd path, deep", 1, 390, 13, 32, 32, 3, Conv2dParams::make(1, 1)},
};

std::string label(const Case& c) { return c.name; }

}  // namespace

DBT_TEST(conv2d_forward_fast_matches_reference) {
  for_each_simd([] {
    uint64_t seed = 10;
    for (const Case& c : kCases)
      for (bool bias : {true, false}) {
        Tensor x = rand_tensor({c.N, c.C, c.H, c.W}, seed++), w = rand_tensor({c.O, c.C, c.K, c.K}, seed++);
        Tensor b = rand_tensor({c.O}, seed++);
        Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), c.p);
        Tensor y = Tensor::empty(ys), want = Tensor::empty(ys, DType::f64);
        poison(y);
        Tensor b64 = to_dtype(b, DType::f64);
        ops::conv2d_forward(x, w, bias ? &b : nullptr, c.p, y);
        ops::conv2d_forward(to_dtype(x, DType::f64), to_dtype(w, DType::f64), bias ? &b64 : nullptr, c.p, want);
        expect_close(y, want, 1e-5 * double(c.C * c.K * c.K), 1e-5, label(c) + (bias ? " +bias" : ""));
      }
  });
}

DBT_TEST(conv2d_winograd_path_is_taken_and_thread_independent) {
  Tensor x = rand_tensor({1, 16, 32, 33}, 5), w = rand_tensor({16, 16, 3, 3}, 6);
  EXPECT_TRUE(dbt::cpu::winograd_applies(16, 16, 3, 3, 1, 1, 1, 32, 33), "Winograd applies to this layer");
  Tensor y1 = Tensor::empty({1, 16, 32, 33}), y2 = Tensor::empty({1, 16, 32, 33});
  int saved = num_threads();
  set_num_threads(1);
  ops::conv2d_forward(x, w, nullptr, Conv2dParams::make(1, 1), y1);
  set_num_threads(3);
  ops::conv2d_forward(x, w, nullptr, Conv2dParams::make(1, 1), y2);
  set_num_threads(saved);
  expect_equal_bits(y1, y2, "Winograd 1 vs 3 threads");
}

DBT_TEST(conv2d_output_shapes) {
  EXPECT_TRUE(ops::conv2d_output_shape({1, 4, 64, 64}, {320, 4, 3, 3}, Conv2dParams::make(1, 1)) ==
                  Shape({1, 320, 64, 64}), "3x3 s1 p1 keeps size");
  EXPECT_TRUE(ops::conv2d_output_shape({1, 320, 64, 64}, {320, 320, 3, 3}, Conv2dParams::make(2, 1)) ==
                  Shape({1, 320, 32, 32}), "3x3 s2 p1 halves");
  EXPECT_TRUE(ops::conv2d_output_shape({1, 128, 512, 512}, {128, 128, 3, 3}, Conv2dParams{2, 0, 1, 0, 1}) ==
                  Shape({1, 128, 256, 256}), "vae downsample halves");
}

DBT_TEST(conv2d_reference_backward_matches_finite_differences) {
  const Conv2dParams variants[] = {Conv2dParams::make(1, 1), Conv2dParams::make(2, 1), Conv2dParams{2, 0, 1, 0, 1},
                                   Conv2dParams::make(1, 0)};
  uint64_t seed = 50;
  for (const Conv2dParams& p : variants) {
    int64_t K = p.pad_top == 0 && p.pad_bottom == 0 ? 1 : 3;
    Tensor x = rand_tensor({2, 2, 5, 4}, seed++, -1, 1, DType::f64), w = rand_tensor({3, 2, K, K}, seed++, -1, 1, DType::f64);
    Tensor b = rand_tensor({3}, seed++, -1, 1, DType::f64);
    Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), p);
    Tensor dy = rand_tensor(ys, seed++, -1, 1, DType::f64), y = Tensor::empty(ys, DType::f64);
    auto loss = [&] {
      ops::conv2d_forward(x, w, &b, p, y);
      return dot(y, dy);
    };
    Tensor dx = Tensor::empty(x.shape(), DType::f64), dw = Tensor::zeros(w.shape(), DType::f64),
           db = Tensor::zeros({3}, DType::f64);
    ops::conv2d_backward(x, w, dy, p, &dx, &dw, &db);
    std::string what = "stride " + std::to_string(p.stride) + " pad_bottom " + std::to_string(p.pad_bottom);
    expect_close(dx, numeric_grad(loss, x), 1e-7, 1e-6, what + " dx");
    expect_close(dw, numeric_grad(loss, w), 1e-7, 1e-6, what + " dw");
    expect_close(db, numeric_grad(loss, b), 1e-7, 1e-6, what + " db");
  }
}

DBT_TEST(conv2d_backward_fast_matches_reference) {
  for_each_simd([] {
    uint64_t seed = 100;
    for (const Case& c : kCases) {
      Tensor x = rand_tensor({c.N, c.C, c.H, c.W}, seed++), w = rand_tensor({c.O, c.C, c.K, c.K}, seed++);
      Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), c.p);
      Tensor dy = rand_tensor(ys, seed++);
      Tensor dw0 = rand_tensor(w.shape(), seed++), db0 = rand_tensor({c.O}, seed++);
      Tensor dx = Tensor::empty(x.shape()), dw = clone(dw0), db = clone(db0);
      poison(dx);
      ops::conv2d_backward(x, w, dy, c.p, &dx, &dw, &db);
      Tensor rdx = Tensor::empty(x.shape(), DType::f64), rdw = to_dtype(dw0, DType::f64), rdb = to_dtype(db0, DType::f64);
      ops::conv2d_backward(to_dtype(x, DType::f64), to_dtype(w, DType::f64), to_dtype(dy, DType::f64), c.p, &rdx, &rdw,
                           &rdb);
      double k = double(c.O * c.K * c.K), pix = double(c.N * ys[2] * ys[3]);
      expect_close(dx, rdx, 1e-5 * k, 1e-5, label(c) + " dx");
      expect_close(dw, rdw, 1e-5 * pix, 1e-5, label(c) + " dw");
      expect_close(db, rdb, 1e-5 * pix, 1e-5, label(c) + " db");
    }
  });
}

DBT_TEST(conv2d_is_thread_count_independent) {
  Tensor x = rand_tensor({2, 16, 20, 20}, 1), w = rand_tensor({24, 16, 3, 3}, 2), b = rand_tensor({24}, 3);
  Conv2dParams p = Conv2dParams::make(1, 1);
  Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), p);
  Tensor dy = rand_tensor(ys, 4);
  Tensor outs[2][4];
  int saved = num_threads();
  for (int t = 0; t < 2; t++) {
    set_num_threads(t == 0 ? 1 : 3);
    outs[t][0] = Tensor::empty(ys);
    ops::conv2d_forward(x, w, &b, p, outs[t][0]);
    outs[t][1] = Tensor::empty(x.shape());
    outs[t][2] = Tensor::zeros(w.shape());
    outs[t][3] = Tensor::zeros({24});
    ops::conv2d_backward(x, w, dy, p, &outs[t][1], &outs[t][2], &outs[t][3]);
  }
  set_num_threads(saved);
  for (int i = 0; i < 4; i++) expect_equal_bits(outs[0][i], outs[1][i], "output " + std::to_string(i));
}

DBT_TEST(conv2d_rejects_bad_shapes) {
  Tensor x = Tensor::zeros({1, 3, 8, 8}), w = Tensor::zeros({4, 2, 3, 3}), y = Tensor::zeros({1, 4, 8, 8});
  expect_throws<OpError>([&] { ops::conv2d_forward(x, w, nullptr, Conv2dParams::make(1, 1), y); },
                         "conv2d_forward: w must be [out, in, kh, kw] with in = x's channels (x [1,3,8,8] f32, w [4,2,3,3] f32",
                         "channel mismatch");
  Tensor w2 = Tensor::zeros({4, 3, 3, 3}), y2 = Tensor::zeros({1, 4, 7, 7});
  expect_throws<OpError>([&] { ops::conv2d_forward(x, w2, nullptr, Conv2dParams::make(1, 1), y2); },
                         "y must have shape [1,4,8,8]", "output shape");
}
