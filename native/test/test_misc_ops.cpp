// Upsample, concat/split, embedding, timestep embedding, reductions and the MSE loss.
#include <cmath>

#include "harness.h"
#include "ops/embedding.h"
#include "ops/loss.h"
#include "ops/shape_ops.h"
#include "ops/tensor_ops.h"

using namespace dbt;
using namespace dbt::test;

DBT_TEST(upsample_fast_matches_reference_and_finite_differences) {
  Tensor x = rand_tensor({2, 3, 5, 7}, 1), y = Tensor::empty({2, 3, 10, 14}), ry = Tensor::empty({2, 3, 10, 14}, DType::f64);
  ops::upsample_nearest2x_forward(x, y);
  ops::upsample_nearest2x_forward(to_dtype(x, DType::f64), ry);
  expect_close(y, ry, 0, 0, "upsample forward");
  EXPECT_TRUE(get(y, 14 + 1) == get(x, 0) && get(y, 3) == get(x, 1), "nearest neighbours");
  Tensor dy = rand_tensor({2, 3, 10, 14}, 2), dx = Tensor::empty(x.shape()), rdx = Tensor::empty(x.shape(), DType::f64);
  ops::upsample_nearest2x_backward(dy, dx);
  ops::upsample_nearest2x_backward(to_dtype(dy, DType::f64), rdx);
  expect_close(dx, rdx, 1e-6, 1e-6, "upsample backward");
  Tensor x64 = rand_tensor({1, 2, 3, 2}, 3, -1, 1, DType::f64), dy64 = rand_tensor({1, 2, 6, 4}, 4, -1, 1, DType::f64);
  Tensor y64 = Tensor::empty({1, 2, 6, 4}, DType::f64), dx64 = Tensor::empty(x64.shape(), DType::f64);
  auto loss = [&] {
    ops::upsample_nearest2x_forward(x64, y64);
    return dot(y64, dy64);
  };
  ops::upsample_nearest2x_backward(dy64, dx64);
  expect_close(dx64, numeric_grad(loss, x64), 1e-8, 1e-6, "upsample finite differences");
}

DBT_TEST(concat_and_split_are_inverse_and_match_reference) {
  Tensor h = rand_tensor({2, 3, 4, 5}, 1), skip = rand_tensor({2, 6, 4, 5}, 2);
  Tensor y = Tensor::empty({2, 9, 4, 5}), ry = Tensor::empty({2, 9, 4, 5});
  ops::concat({h, skip}, 1, y);
  ops::ref::concat({h, skip}, 1, ry);
  expect_equal_bits(y, ry, "concat vs reference");
  EXPECT_TRUE(get(y, 0) == get(h, 0) && get(y, 3 * 20) == get(skip, 0), "h first, then skip");
  Tensor a = Tensor::empty(h.shape()), b = Tensor::empty(skip.shape());
  ops::split(y, 1, {3, 6}, {&a, &b});
  expect_equal_bits(a, h, "split part 0");
  expect_equal_bits(b, skip, "split part 1");
  Tensor only = Tensor::empty(skip.shape());
  ops::split(y, -3, {3, 6}, {nullptr, &only});
  expect_equal_bits(only, skip, "split skipping a part");
  // last dim, three parts, i32
  Tensor p0 = rand_tensor({3, 2}, 5, -9, 9, DType::i32), p1 = rand_tensor({3, 1}, 6, -9, 9, DType::i32);
  Tensor cat = Tensor::empty({3, 3}, DType::i32);
  ops::concat({p0, p1}, -1, cat);
  EXPECT_TRUE(get(cat, 2) == get(p1, 0) && get(cat, 3) == get(p0, 2), "concat along the last dim");
  Tensor wrong = Tensor::empty({1, 9, 4, 5});
  expect_throws<OpError>([&] { ops::concat({h, skip}, 1, wrong); }, "concat: input 0 must match y", "bad concat");
}

DBT_TEST(transpose_matches_reference_and_is_its_own_inverse) {
  // Odd sizes (partial 32 x 32 blocks), every word size the fast path handles (f16 via 16-bit words).
  for (Shape s : {Shape{2, 37, 70}, Shape{1, 64, 320}, Shape{3, 1, 5}}) {
    for (DType dt : {DType::f32, DType::f64, DType::i32}) {
      Tensor x = rand_tensor(s, 3, -9, 9, dt);
      Tensor y = Tensor::empty({s[0], s[2], s[1]}, dt), ry = Tensor::empty({s[0], s[2], s[1]}, dt);
      ops::transpose(x, y);
      ops::ref::transpose(x, ry);
      expect_equal_bits(y, ry, "transpose " + s.str() + " vs reference");
      if (s[1] > 1) EXPECT_TRUE(get(y, 1) == get(x, s[2]), "y[0][0][1] = x[0][1][0]");
      Tensor back = Tensor::empty(s, dt);
      ops::transpose(y, back);
      expect_equal_bits(back, x, "transpose twice " + s.str());
    }
    Tensor h = Tensor::empty(s, DType::f16), hy = Tensor::empty({s[0], s[2], s[1]}, DType::f16);
    ops::cast(rand_tensor(s, 4), h);
    Tensor rhy = Tensor::empty(hy.shape(), DType::f16);
    ops::transpose(h, hy);
    ops::ref::transpose(h, rhy);
    expect_equal_bits(hy, rhy, "transpose f16 " + s.str());
  }
  Tensor x = rand_tensor({2, 3, 4}, 1), wrong = Tensor::empty({2, 3, 4});
  expect_throws<OpError>([&] { ops::transpose(x, wrong); }, "transpose", "transpose into the same shape");
}

DBT_TEST(embedding_fast_matches_reference_with_repeated_ids) {
  Tensor table = rand_tensor({11, 37}, 1);
  Tensor ids = Tensor::empty({2, 5}, DType::i32);
  const int32_t v[] = {0, 3, 3, 10, 7, 3, 0, 1, 10, 10};
  for (int i = 0; i < 10; i++) ids.data<int32_t>()[i] = v[i];
  Tensor y = Tensor::empty({2, 5, 37}), ry = Tensor::empty({2, 5, 37}, DType::f64);
  ops::embedding_forward(ids, table, y);
  ops::embedding_forward(ids, to_dtype(table, DType::f64), ry);
  expect_close(y, ry, 0, 0, "embedding forward");
  Tensor dy = rand_tensor({2, 5, 37}, 2), dt0 = rand_tensor({11, 37}, 3);
  Tensor dt = clone(dt0), rdt = to_dtype(dt0, DType::f64);
  ops::embedding_backward(ids, dy, dt);
  ops::embedding_backward(ids, to_dtype(dy, DType::f64), rdt);
  expect_close(dt, rdt, 1e-6, 1e-6, "embedding backward");
  ids.data<int32_t>()[4] = 11;
  expect_throws<OpError>([&] { ops::embedding_forward(ids, table, y); },
                         "token id 11 at position 4 is outside the table's 11 rows", "id range");
}

DBT_TEST(timestep_embedding_is_cos_first_and_matches_reference) {
  Tensor t = Tensor::empty({3});
  t.data<float>()[0] = 0.0f;
  t.data<float>()[1] = 1.0f;
  t.data<float>()[2] = 999.0f;
  for (int dim : {320, 7}) {
    Tensor y = Tensor::empty({3, dim}), ry = Tensor::empty({3, dim});
    ops::timestep_embedding(t, dim, 10000.0f, y);
    ops::ref::timestep_embedding(t, dim, 10000.0f, ry);
    expect_close(y, ry, 1e-7, 1e-6, "timestep embedding dim " + std::to_string(dim));
    const int half = dim / 2;
    EXPECT_TRUE(get(y, 0) == 1.0 && get(y, half) == 0.0, "t=0: cos part 1, sin part 0");
    EXPECT_TRUE(std::fabs(get(y, dim) - std::cos(1.0)) < 1e-6 && std::fabs(get(y, dim + half) - std::sin(1.0)) < 1e-6,
                "t=1, frequency 1 first");
    double f1 = std::exp(-std::log(10000.0) / half);
    EXPECT_TRUE(std::fabs(get(y, 2 * dim + 1) - std::cos(999.0 * f1)) < 1e-4, "t=999 second frequency");
    if (dim % 2) EXPECT_TRUE(get(y, dim - 1) == 0.0, "odd dim pads a zero");
  }
}

DBT_TEST(reductions_and_mse_fast_match_reference) {
  Tensor x = rand_tensor({3, 40000}, 1);
  for (bool mean : {false, true}) {
    Tensor s = Tensor::empty({1}), rs = Tensor::empty({1}, DType::f64);
    ops::reduce_all(x, mean, s);
    ops::reduce_all(to_dtype(x, DType::f64), mean, rs);
    expect_close(s, rs, 1e-6, 1e-6, mean ? "mean" : "sum");
    Tensor dy = rand_tensor({1}, 2), dx = Tensor::empty(x.shape()), rdx = Tensor::empty(x.shape(), DType::f64);
    ops::reduce_all_backward(dy, mean, dx);
    ops::reduce_all_backward(to_dtype(dy, DType::f64), mean, rdx);
    expect_close(dx, rdx, 1e-12, 1e-6, mean ? "mean backward" : "sum backward");
  }
  Tensor pred = rand_tensor({4, 3, 5, 7}, 3), target = rand_tensor({4, 3, 5, 7}, 4), w = rand_tensor({4}, 5, 0.1, 2);
  for (bool weighted : {false, true}) {
    const Tensor* wp = weighted ? &w : nullptr;
    Tensor w64 = to_dtype(w, DType::f64);
    const Tensor* wp64 = weighted ? &w64 : nullptr;
    Tensor loss = Tensor::empty({1}), ps = Tensor::empty({4}), rl = Tensor::empty({1}, DType::f64), rps = Tensor::empty({4}, DType::f64);
    ops::mse_loss_forward(pred, target, wp, loss, &ps);
    Tensor p64 = to_dtype(pred, DType::f64), t64 = to_dtype(target, DType::f64);
    ops::mse_loss_forward(p64, t64, wp64, rl, &rps);
    expect_close(loss, rl, 1e-7, 1e-6, "mse loss");
    expect_close(ps, rps, 1e-7, 1e-6, "mse per sample");
    Tensor dl = rand_tensor({1}, 6), dp = Tensor::empty(pred.shape()), rdp = Tensor::empty(pred.shape(), DType::f64);
    ops::mse_loss_backward(pred, target, wp, dl, dp);
    ops::mse_loss_backward(p64, t64, wp64, to_dtype(dl, DType::f64), rdp);
    expect_close(dp, rdp, 1e-8, 1e-5, "mse backward");
  }
}

DBT_TEST(mse_reference_backward_matches_finite_differences) {
  Tensor pred = rand_tensor({3, 4}, 1, -1, 1, DType::f64), target = rand_tensor({3, 4}, 2, -1, 1, DType::f64);
  Tensor w = rand_tensor({3}, 3, 0.1, 2, DType::f64), loss = Tensor::empty({1}, DType::f64);
  Tensor dl = Tensor::empty({1}, DType::f64);
  dl.data<double>()[0] = 0.7;
  auto f = [&] {
    ops::mse_loss_forward(pred, target, &w, loss, nullptr);
    return 0.7 * loss.data<double>()[0];
  };
  Tensor dp = Tensor::empty({3, 4}, DType::f64);
  ops::mse_loss_backward(pred, target, &w, dl, dp);
  expect_close(dp, numeric_grad(f, pred), 1e-8, 1e-6, "mse finite differences");
  // prior preservation: weights 1/k and lambda/k give mse(instance) + lambda * mse(class)
  Tensor w2 = Tensor::empty({4}, DType::f64);
  const double lam = 0.5;
  w2.data<double>()[0] = w2.data<double>()[1] = 0.5;
  w2.data<double>()[2] = w2.data<double>()[3] = lam * 0.5;
  Tensor p = rand_tensor({4, 6}, 4, -1, 1, DType::f64), t = rand_tensor({4, 6}, 5, -1, 1, DType::f64);
  Tensor l = Tensor::empty({1}, DType::f64), li = Tensor::empty({1}, DType::f64), lc = Tensor::empty({1}, DType::f64);
  ops::mse_loss_forward(p, t, &w2, l, nullptr);
  Tensor pi = p.slice(0, 2), ti = t.slice(0, 2), pc = p.slice(2, 4), tc = t.slice(2, 4);
  ops::mse_loss_forward(pi, ti, nullptr, li, nullptr);
  ops::mse_loss_forward(pc, tc, nullptr, lc, nullptr);
  EXPECT_TRUE(std::fabs(get(l, 0) - (get(li, 0) + lam * get(lc, 0))) < 1e-12, "prior preservation weights");
}
