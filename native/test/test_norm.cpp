// group_norm (+SiLU, both SD eps) and layer_norm: fast vs reference, reference backward vs finite differences.
#include "harness.h"
#include "ops/norm.h"

using namespace dbt;
using namespace dbt::test;
using ops::GroupNormParams;

namespace {

Tensor shifted(const Shape& s, uint64_t seed, double shift, DType dt = DType::f32) {
  return rand_tensor(s, seed, -1 + shift, 1 + shift, dt);
}

void gn_case(const Shape& xs, GroupNormParams p, uint64_t seed) {
  const int64_t C = xs[1];
  Tensor x = shifted(xs, seed, 2.0), ga = rand_tensor({C}, seed + 1, 0.5, 1.5), be = rand_tensor({C}, seed + 2);
  Tensor y = Tensor::empty(xs), m = Tensor::empty({xs[0], p.groups}), r = Tensor::empty({xs[0], p.groups});
  poison(y);
  ops::group_norm_forward(x, ga, be, p, y, &m, &r);
  Tensor x64 = to_dtype(x, DType::f64), ga64 = to_dtype(ga, DType::f64), be64 = to_dtype(be, DType::f64);
  Tensor ry = Tensor::empty(xs, DType::f64), rm = Tensor::empty({xs[0], p.groups}, DType::f64),
         rr = Tensor::empty({xs[0], p.groups}, DType::f64);
  ops::group_norm_forward(x64, ga64, be64, p, ry, &rm, &rr);
  std::string what = "group_norm " + xs.str() + " groups " + std::to_string(p.groups) + (p.silu ? " +silu" : "");
  expect_close(y, ry, 2e-6, 2e-5, what + " y");
  expect_close(m, rm, 1e-6, 1e-6, what + " mean");
  expect_close(r, rr, 1e-6, 1e-5, what + " rstd");

  Tensor dy = rand_tensor(xs, seed + 3), dg0 = rand_tensor({C}, seed + 4), db0 = rand_tensor({C}, seed + 5);
  Tensor dx = Tensor::empty(xs), dg = clone(dg0), db = clone(db0);
  poison(dx);
  ops::group_norm_backward(x, ga, be, m, r, dy, p, &dx, &dg, &db);
  Tensor rdx = Tensor::empty(xs, DType::f64), rdg = to_dtype(dg0, DType::f64), rdb = to_dtype(db0, DType::f64);
  ops::group_norm_backward(x64, ga64, be64, rm, rr, to_dtype(dy, DType::f64), p, &rdx, &rdg, &rdb);
  expect_close(dx, rdx, 1e-5, 1e-4, what + " dx");
  expect_close(dg, rdg, 1e-4, 1e-5, what + " dgamma");
  expect_close(db, rdb, 1e-4, 1e-5, what + " dbeta");
}

}  // namespace

DBT_TEST(group_norm_fast_matches_reference) {
  gn_case({2, 8, 5, 3}, GroupNormParams{4, 1e-5f, false}, 1);
  gn_case({2, 8, 5, 3}, GroupNormParams{4, 1e-6f, true}, 10);
  gn_case({3, 64, 7}, GroupNormParams{32, 1e-6f, false}, 20);
  gn_case({1, 64, 9, 11}, GroupNormParams{32, 1e-5f, true}, 30);
  gn_case({2, 6, 1, 1}, GroupNormParams{3, 1e-5f, true}, 40);  // 2 elements per group
}

DBT_TEST(group_norm_reference_backward_matches_finite_differences) {
  for (bool silu : {false, true}) {
    GroupNormParams p{2, 1e-5f, silu};
    Shape xs{2, 4, 3, 2};
    Tensor x = shifted(xs, 5, 1.0, DType::f64), ga = rand_tensor({4}, 6, 0.5, 1.5, DType::f64),
           be = rand_tensor({4}, 7, -1, 1, DType::f64), dy = rand_tensor(xs, 8, -1, 1, DType::f64);
    Tensor y = Tensor::empty(xs, DType::f64), m = Tensor::empty({2, 2}, DType::f64), r = Tensor::empty({2, 2}, DType::f64);
    auto loss = [&] {
      ops::group_norm_forward(x, ga, be, p, y, nullptr, nullptr);
      return dot(y, dy);
    };
    ops::group_norm_forward(x, ga, be, p, y, &m, &r);
    Tensor dx = Tensor::empty(xs, DType::f64), dg = Tensor::zeros({4}, DType::f64), db = Tensor::zeros({4}, DType::f64);
    ops::group_norm_backward(x, ga, be, m, r, dy, p, &dx, &dg, &db);
    std::string what = silu ? "with silu " : "";
    expect_close(dx, numeric_grad(loss, x), 1e-7, 1e-6, what + "dx");
    expect_close(dg, numeric_grad(loss, ga), 1e-7, 1e-6, what + "dgamma");
    expect_close(db, numeric_grad(loss, be), 1e-7, 1e-6, what + "dbeta");
  }
}

DBT_TEST(layer_norm_fast_matches_reference) {
  uint64_t seed = 50;
  for (Shape xs : {Shape{3, 5, 19}, Shape{70, 40}, Shape{2, 77, 32}}) {
    const int64_t C = xs.dim(-1), R = xs.numel() / C;
    Tensor x = shifted(xs, seed++, -1.5), ga = rand_tensor({C}, seed++, 0.5, 1.5), be = rand_tensor({C}, seed++);
    Tensor y = Tensor::empty(xs), m = Tensor::empty({R}), r = Tensor::empty({R});
    ops::layer_norm_forward(x, ga, be, 1e-5f, y, &m, &r);
    Tensor x64 = to_dtype(x, DType::f64), ga64 = to_dtype(ga, DType::f64);
    Tensor ry = Tensor::empty(xs, DType::f64), rm = Tensor::empty({R}, DType::f64), rr = Tensor::empty({R}, DType::f64);
    ops::layer_norm_forward(x64, ga64, to_dtype(be, DType::f64), 1e-5f, ry, &rm, &rr);
    expect_close(y, ry, 2e-6, 2e-5, "layer_norm y " + xs.str());
    Tensor dy = rand_tensor(xs, seed++), dg0 = rand_tensor({C}, seed++), db0 = rand_tensor({C}, seed++);
    Tensor dx = Tensor::empty(xs), dg = clone(dg0), db = clone(db0);
    poison(dx);
    ops::layer_norm_backward(x, ga, m, r, dy, &dx, &dg, &db);
    Tensor rdx = Tensor::empty(xs, DType::f64), rdg = to_dtype(dg0, DType::f64), rdb = to_dtype(db0, DType::f64);
    ops::layer_norm_backward(x64, ga64, rm, rr, to_dtype(dy, DType::f64), &rdx, &rdg, &rdb);
    expect_close(dx, rdx, 1e-5, 1e-4, "layer_norm dx " + xs.str());
    expect_close(dg, rdg, 1e-4, 1e-5, "layer_norm dgamma " + xs.str());
    expect_close(db, rdb, 1e-4, 1e-5, "layer_norm dbeta " + xs.str());
  }
}

DBT_TEST(layer_norm_reference_backward_matches_finite_differences) {
  Shape xs{3, 7};
  Tensor x = shifted(xs, 1, 0.5, DType::f64), ga = rand_tensor({7}, 2, 0.5, 1.5, DType::f64),
         be = rand_tensor({7}, 3, -1, 1, DType::f64), dy = rand_tensor(xs, 4, -1, 1, DType::f64);
  Tensor y = Tensor::empty(xs, DType::f64), m = Tensor::empty({3}, DType::f64), r = Tensor::empty({3}, DType::f64);
  auto loss = [&] {
    ops::layer_norm_forward(x, ga, be, 1e-5f, y, nullptr, nullptr);
    return dot(y, dy);
  };
  ops::layer_norm_forward(x, ga, be, 1e-5f, y, &m, &r);
  Tensor dx = Tensor::empty(xs, DType::f64), dg = Tensor::zeros({7}, DType::f64), db = Tensor::zeros({7}, DType::f64);
  ops::layer_norm_backward(x, ga, m, r, dy, &dx, &dg, &db);
  expect_close(dx, numeric_grad(loss, x), 1e-7, 1e-6, "dx");
  expect_close(dg, numeric_grad(loss, ga), 1e-7, 1e-6, "dgamma");
  expect_close(db, numeric_grad(loss, be), 1e-7, 1e-6, "dbeta");
}

DBT_TEST(norm_rejects_bad_shapes) {
  Tensor x = Tensor::zeros({1, 30, 4}), g = Tensor::zeros({30}), y = Tensor::zeros({1, 30, 4});
  expect_throws<OpError>([&] { ops::group_norm_forward(x, g, g, GroupNormParams{32, 1e-5f, false}, y, nullptr, nullptr); },
                         "group_norm_forward: channels (30) must be divisible by groups (32)", "groups");
  Tensor g2 = Tensor::zeros({5});
  expect_throws<OpError>([&] { ops::layer_norm_forward(x, g2, g2, 1e-5f, y, nullptr, nullptr); },
                         "gamma must have shape [4]", "layer norm gamma");
}
