// Broadcast add/sub/mul, axpby, sum_to: fast vs reference on broadcast edges; backward vs finite differences.
#include <algorithm>
#include <cmath>

#include "harness.h"
#include "ops/elementwise.h"

using namespace dbt;
using namespace dbt::test;
using ops::BinaryOp;

namespace {
struct Pair {
  Shape a, b;
};
const Pair kPairs[] = {
    {{2, 3, 5, 7}, {2, 3, 5, 7}},  // same shape
    {{2, 3, 5, 7}, {2, 3, 1, 1}},  // timestep injection h + emb[:, :, None, None]
    {{2, 9, 13}, {13}},            // bias over the last dim
    {{2, 1, 13}, {5, 1}},          // both broadcast
    {{1}, {3, 4}},                 // scalar
    {{4, 1, 3, 1, 2}, {1, 5, 1, 6, 1}},
    {{3, 2000}, {3, 1}},           // long rows (chunks split inside a row)
};
}  // namespace

DBT_TEST(binary_ops_fast_match_reference) {
  uint64_t seed = 1;
  for (const Pair& pr : kPairs)
    for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul}) {
      Tensor a = rand_tensor(pr.a, seed++), b = rand_tensor(pr.b, seed++);
      Shape ys = ops::broadcast_shape("test", pr.a, pr.b);
      Tensor y = Tensor::empty(ys), ry = Tensor::empty(ys, DType::f64);
      ops::binary_forward(op, a, b, y);
      ops::binary_forward(op, to_dtype(a, DType::f64), to_dtype(b, DType::f64), ry);
      std::string what = std::string(ops::binary_op_name(op)) + " " + pr.a.str() + " " + pr.b.str();
      expect_close(y, ry, 1e-6, 1e-6, what);
      Tensor dy = rand_tensor(ys, seed++);
      Tensor da = Tensor::empty(pr.a), db = Tensor::empty(pr.b);
      Tensor rda = Tensor::empty(pr.a, DType::f64), rdb = Tensor::empty(pr.b, DType::f64);
      poison(da);
      poison(db);
      ops::binary_backward(op, a, b, dy, &da, &db);
      ops::binary_backward(op, to_dtype(a, DType::f64), to_dtype(b, DType::f64), to_dtype(dy, DType::f64), &rda, &rdb);
      double n = double(ys.numel());
      expect_close(da, rda, 1e-6 * n, 1e-5, what + " da");
      expect_close(db, rdb, 1e-6 * n, 1e-5, what + " db");
    }
}

DBT_TEST(binary_reference_backward_matches_finite_differences) {
  for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul}) {
    Tensor a = rand_tensor({2, 3, 4}, 1, -1, 1, DType::f64), b = rand_tensor({3, 1}, 2, -1, 1, DType::f64);
    Tensor dy = rand_tensor({2, 3, 4}, 3, -1, 1, DType::f64), y = Tensor::empty({2, 3, 4}, DType::f64);
    auto loss = [&] {
      ops::binary_forward(op, a, b, y);
      return dot(y, dy);
    };
    Tensor da = Tensor::empty(a.shape(), DType::f64), db = Tensor::empty(b.shape(), DType::f64);
    ops::binary_backward(op, a, b, dy, &da, &db);
    expect_close(da, numeric_grad(loss, a), 1e-8, 1e-6, std::string(ops::binary_op_name(op)) + " da");
    expect_close(db, numeric_grad(loss, b), 1e-8, 1e-6, std::string(ops::binary_op_name(op)) + " db");
  }
}

DBT_TEST(clamp_matches_reference) {
  Tensor x = rand_tensor({3, 77}, 9, -50.0, 40.0);
  x.data<float>()[5] = -30.0f;  // the bounds themselves
  x.data<float>()[6] = 20.0f;
  Tensor y = Tensor::empty(x.shape()), ry = Tensor::empty(x.shape(), DType::f64);
  poison(y);
  ops::clamp(x, -30.0f, 20.0f, y);
  ops::clamp(to_dtype(x, DType::f64), -30.0f, 20.0f, ry);
  int below = 0, above = 0;
  for (int64_t i = 0; i < x.numel(); i++) {
    const double v = x.data<float>()[i];
    EXPECT_TRUE(get(y, i) == get(ry, i), "clamp fast == reference");
    EXPECT_TRUE(get(ry, i) == std::min(20.0, std::max(-30.0, v)), "clamp reference");
    below += v < -30.0;
    above += v > 20.0;
  }
  EXPECT_TRUE(below > 0 && above > 0, "inputs reach past both bounds");
  ops::clamp(x, -1.0f, 1.0f, x);  // in place
  for (int64_t i = 0; i < x.numel(); i++) EXPECT_TRUE(std::abs(get(x, i)) <= 1.0, "clamp in place");
  expect_throws<OpError>([&] { ops::clamp(x, 2.0f, 1.0f, x); }, "lo 2", "clamp lo > hi");
}

DBT_TEST(axpby_and_sum_to) {
  Tensor x = rand_tensor({3, 50}, 4), y = rand_tensor({3, 50}, 5);
  Tensor ry = to_dtype(y, DType::f64);
  ops::axpby(0.5f, x, -2.0f, y);
  ops::axpby(0.5f, to_dtype(x, DType::f64), -2.0f, ry);
  expect_close(y, ry, 1e-6, 1e-6, "axpby");
  Tensor z = Tensor::empty({3, 50});
  poison(z);
  ops::axpby(3.0f, x, 0.0f, z);
  for (int64_t i = 0; i < z.numel(); i++) EXPECT_TRUE(get(z, i) == double(3.0f * x.data<float>()[i]), "beta 0 ignores y");
  const Shape targets[] = {{1, 6, 1, 1}, {2, 6, 1, 1}, {7}, {5, 1}, {1}, {2, 1, 5, 7}};
  Tensor big = rand_tensor({2, 6, 5, 7}, 6);
  for (const Shape& t : targets) {
    Tensor s = Tensor::empty(t), rs = Tensor::empty(t, DType::f64);
    ops::sum_to(big, s);
    ops::sum_to(to_dtype(big, DType::f64), rs);
    expect_close(s, rs, 1e-5, 1e-6, "sum_to " + t.str());
  }
  Tensor bad = Tensor::empty({3});
  expect_throws<OpError>([&] { ops::sum_to(big, bad); }, "sum_to: y's shape must broadcast", "bad sum_to");
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4}), yy = Tensor::zeros({2, 3});
  expect_throws<OpError>([&] { ops::add(a, b, yy); }, "add_forward: shapes [2,3] and [4] do not broadcast", "bad add");
}
