// Element-wise CUDA ops against the CPU reference: broadcasting add/sub/mul forward and backward, axpby,
// sum_to, clamp, in f32, bf16 and f16, every broadcast pattern the kernels special-case plus the general one.
#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {
struct Pair {
  Shape a, b;
};
const Pair kPairs[] = {
    {{3, 5, 7}, {3, 5, 7}},        // same shape
    {{2, 9, 33}, {33}},            // bias over rows (repeat)
    {{2, 6, 5, 7}, {2, 6, 1, 1}},  // per-channel (inner block)
    {{4, 1, 3}, {2, 3}},           // both broadcast -> [4, 2, 3] (general)
    {{2, 3, 4, 5}, {3, 1, 5}},     // general
    {{7}, {1}},                    // scalar
    {{1, 6, 1, 1}, {2, 6, 4, 3}},  // a broadcasts
};
}  // namespace

DBT_TEST(cuda_binary_forward_and_backward_match_reference) {
  uint64_t seed = 10;
  for (DType dt : float_types())
    for (const Pair& pr : kPairs)
      for (ops::BinaryOp op : {ops::BinaryOp::add, ops::BinaryOp::sub, ops::BinaryOp::mul}) {
        Shape ys = ops::broadcast_shape("test", pr.a, pr.b);
        Tensor a = rnd(pr.a, seed++), b = rnd(pr.b, seed++), dy = rnd(ys, seed++);
        Tensor a64 = rounded64(a, dt), b64 = rounded64(b, dt), dy64 = rounded64(dy, dt);
        std::string what = std::string(ops::binary_op_name(op)) + " " + pr.a.str() + " " + pr.b.str();
        Tensor want = Tensor::empty(ys, DType::f64);
        ops::binary_forward(op, a64, b64, want);
        Tensor da_ = upload(a, dt), db_ = upload(b, dt), y = poisoned(ys, dt);
        ops::binary_forward(op, da_, db_, y);
        expect_close_dev(y, want, dt, what + " forward");

        Tensor ga = Tensor::empty(pr.a, DType::f64), gb = Tensor::empty(pr.b, DType::f64);
        ops::binary_backward(op, a64, b64, dy64, &ga, &gb);
        Tensor gda = poisoned(pr.a, dt), gdb = poisoned(pr.b, dt), ddy = upload(dy, dt);
        ops::binary_backward(op, da_, db_, ddy, &gda, &gdb);
        expect_close_dev(gda, ga, dt, what + " da");
        expect_close_dev(gdb, gb, dt, what + " db");
      }
}

DBT_TEST(cuda_binary_in_place_matches_reference) {
  for (DType dt : float_types()) {
    Tensor a = rnd({4, 8, 16}, 1), b = rnd({16}, 2);
    Tensor want = Tensor::empty(a.shape(), DType::f64);
    ops::binary_forward(ops::BinaryOp::mul, rounded64(a, dt), rounded64(b, dt), want);
    Tensor da = upload(a, dt), db = upload(b, dt);
    ops::binary_forward(ops::BinaryOp::mul, da, db, da);  // y aliases a
    expect_close_dev(da, want, dt, "mul in place");
  }
}

DBT_TEST(cuda_axpby_matches_reference) {
  for (DType dt : float_types())
    for (float beta : {0.0f, 0.5f, -2.0f}) {
      Tensor x = rnd({3, 1001}, 3), y0 = rnd({3, 1001}, 4);
      Tensor want = rounded64(y0, dt);
      ops::axpby(1.25f, rounded64(x, dt), beta, want);
      Tensor dy = beta == 0.0f ? poisoned(y0.shape(), dt) : upload(y0, dt);  // beta 0 must not read y
      ops::axpby(1.25f, upload(x, dt), beta, dy);
      expect_close_dev(dy, want, dt, "axpby beta " + std::to_string(beta));
    }
}

DBT_TEST(cuda_clamp_matches_reference) {
  for (DType dt : float_types()) {
    Tensor x = rnd({3, 1001}, 7, -50.0, 40.0);
    Tensor want = rounded64(x, dt);
    ops::clamp(want, -30.0f, 20.0f, want);
    Tensor y = poisoned(x.shape(), dt);
    ops::clamp(upload(x, dt), -30.0f, 20.0f, y);
    expect_close_dev(y, want, dt, "clamp");
    Tensor z = upload(x, dt);
    ops::clamp(z, -30.0f, 20.0f, z);  // in place
    expect_close_dev(z, want, dt, "clamp in place");
  }
}

DBT_TEST(cuda_sum_to_matches_reference) {
  const std::pair<Shape, Shape> cases[] = {
      {{2, 3, 4, 5}, {5}},          {{2, 3, 4, 5}, {3, 1, 1}},    {{2, 3, 4, 5}, {1, 3, 1, 5}},
      {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{2, 3, 4, 5}, {1}},          {{40, 5}, {40, 1}},
      {{300, 70}, {70}},            {{2, 320, 64}, {1, 320, 1}},  {{129, 1, 3}, {1, 3}},
  };
  uint64_t seed = 50;
  for (DType dt : float_types())
    for (auto& [xs, ys] : cases) {
      Tensor x = rnd(xs, seed++);
      Tensor want = Tensor::empty(ys, DType::f64);
      ops::sum_to(rounded64(x, dt), want);
      Tensor y = poisoned(ys, dt);
      ops::sum_to(upload(x, dt), y);
      expect_close_dev(y, want, dt, "sum_to " + xs.str() + " -> " + ys.str());
    }
}
