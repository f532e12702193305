// Activations, GEGLU, softmax: fast vs reference; reference backward vs finite differences; vec_math accuracy.
#include <cmath>

#include "harness.h"
#include "ops/activation.h"
#include "ops/cpu/vec_math.h"

using namespace dbt;
using namespace dbt::test;
using ops::Activation;

DBT_TEST(vec_math_accuracy) {
  double worst_exp = 0, worst_erf = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.0037f) {
    double e = std::exp(double(x));
    worst_exp = std::max(worst_exp, std::fabs(double(dbt::cpu::exp_approx(x)) - e) / e);
  }
  for (float x = -7.0f; x < 7.0f; x += 0.00031f)
    worst_erf = std::max(worst_erf, std::fabs(double(dbt::cpu::erf_approx(x)) - std::erf(double(x))));
  EXPECT_TRUE(worst_exp < 2.5e-7, "exp relative error " + std::to_string(worst_exp));
  EXPECT_TRUE(worst_erf < 6e-7, "erf absolute error " + std::to_string(worst_erf));
  EXPECT_TRUE(dbt::cpu::exp_approx(-INFINITY) == 0.0f && dbt::cpu::exp_approx(-100.0f) == 0.0f, "exp underflow is 0");
}

DBT_TEST(activations_fast_match_reference) {
  for (Activation a : {Activation::silu, Activation::gelu, Activation::quick_gelu}) {
    Tensor x = rand_tensor({3, 1001}, 1, -8, 8), dy = rand_tensor({3, 1001}, 2);
    Tensor y = Tensor::empty(x.shape()), ry = Tensor::empty(x.shape(), DType::f64);
    ops::activation_forward(a, x, y);
    ops::activation_forward(a, to_dtype(x, DType::f64), ry);
    expect_close(y, ry, 2e-6, 1e-5, std::string(ops::activation_name(a)) + " forward");
    Tensor dx = Tensor::empty(x.shape()), rdx = Tensor::empty(x.shape(), DType::f64);
    ops::activation_backward(a, x, dy, dx);
    ops::activation_backward(a, to_dtype(x, DType::f64), to_dtype(dy, DType::f64), rdx);
    expect_close(dx, rdx, 2e-6, 1e-5, std::string(ops::activation_name(a)) + " backward");
    // in place
    Tensor xi = clone(x);
    ops::activation_forward(a, xi, xi);
    expect_equal_bits(xi, y, "in-place forward");
  }
}

DBT_TEST(activations_reference_backward_matches_finite_differences) {
  for (Activation a : {Activation::silu, Activation::gelu, Activation::quick_gelu}) {
    Tensor x = rand_tensor({17}, 3, -4, 4, DType::f64), dy = rand_tensor({17}, 4, -1, 1, DType::f64);
    Tensor y = Tensor::empty({17}, DType::f64);
    auto loss = [&] {
      ops::activation_forward(a, x, y);
      return dot(y, dy);
    };
    Tensor dx = Tensor::empty({17}, DType::f64);
    ops::activation_backward(a, x, dy, dx);
    expect_close(dx, numeric_grad(loss, x), 1e-8, 1e-6, ops::activation_name(a));
  }
}

DBT_TEST(geglu_fast_matches_reference_and_finite_differences) {
  Tensor x = rand_tensor({2, 3, 2 * 37}, 5, -3, 3), dy = rand_tensor({2, 3, 37}, 6);
  Tensor y = Tensor::empty({2, 3, 37}), ry = Tensor::empty({2, 3, 37}, DType::f64);
  ops::geglu_forward(x, y);
  ops::geglu_forward(to_dtype(x, DType::f64), ry);
  expect_close(y, ry, 2e-6, 1e-5, "geglu forward");
  Tensor dx = Tensor::empty(x.shape()), rdx = Tensor::empty(x.shape(), DType::f64);
  ops::geglu_backward(x, dy, dx);
  ops::geglu_backward(to_dtype(x, DType::f64), to_dtype(dy, DType::f64), rdx);
  expect_close(dx, rdx, 2e-6, 1e-5, "geglu backward");

  Tensor x64 = rand_tensor({2, 10}, 7, -3, 3, DType::f64), dy64 = rand_tensor({2, 5}, 8, -1, 1, DType::f64);
  Tensor y64 = Tensor::empty({2, 5}, DType::f64), dx64 = Tensor::empty({2, 10}, DType::f64);
  auto loss = [&] {
    ops::geglu_forward(x64, y64);
    return dot(y64, dy64);
  };
  ops::geglu_backward(x64, dy64, dx64);
  expect_close(dx64, numeric_grad(loss, x64), 1e-8, 1e-6, "geglu finite differences");
}

DBT_TEST(softmax_fast_matches_reference_and_finite_differences) {
  for (Shape s : {Shape{5, 77}, Shape{2, 3, 1}, Shape{4, 1029}}) {
    Tensor x = rand_tensor(s, 9, -6, 6), dy = rand_tensor(s, 10);
    if (s.dim(-1) > 3) set(x, 2, -INFINITY);  // a masked entry
    Tensor y = Tensor::empty(s), ry = Tensor::empty(s, DType::f64);
    ops::softmax_forward(x, y);
    ops::softmax_forward(to_dtype(x, DType::f64), ry);
    expect_close(y, ry, 1e-7, 1e-5, "softmax " + s.str());
    Tensor dx = Tensor::empty(s), rdx = Tensor::empty(s, DType::f64);
    ops::softmax_backward(y, dy, dx);
    ops::softmax_backward(ry, to_dtype(dy, DType::f64), rdx);
    expect_close(dx, rdx, 1e-7, 1e-5, "softmax backward " + s.str());
  }
  Tensor x = rand_tensor({3, 6}, 11, -2, 2, DType::f64), dy = rand_tensor({3, 6}, 12, -1, 1, DType::f64);
  Tensor y = Tensor::empty({3, 6}, DType::f64), dx = Tensor::empty({3, 6}, DType::f64);
  auto loss = [&] {
    ops::softmax_forward(x, y);
    return dot(y, dy);
  };
  loss();
  ops::softmax_backward(y, dy, dx);
  expect_close(dx, numeric_grad(loss, x), 1e-8, 1e-6, "softmax finite differences");
}
