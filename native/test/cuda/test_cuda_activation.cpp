// Activations, GEGLU and softmax on the GPU against the CPU reference (f64 on dtype-rounded inputs), odd
// sizes, forward and backward, in place where the API allows it.
#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;
using ops::Activation;

DBT_TEST(cuda_activations_match_reference) {
  uint64_t seed = 1;
  for (DType dt : float_types())
    for (Activation a : {Activation::silu, Activation::gelu, Activation::quick_gelu})
      for (const Shape& s : {Shape{1}, Shape{3, 1001}, Shape{2, 5, 7, 9}}) {
        std::string what = std::string(ops::activation_name(a)) + " " + s.str();
        Tensor x = rnd(s, seed++, -4.0, 4.0), dy = rnd(s, seed++);
        Tensor want = Tensor::empty(s, DType::f64), wdx = Tensor::empty(s, DType::f64);
        ops::activation_forward(a, rounded64(x, dt), want);
        ops::activation_backward(a, rounded64(x, dt), rounded64(dy, dt), wdx);
        Tensor gx = upload(x, dt), y = poisoned(s, dt), dx = poisoned(s, dt);
        ops::activation_forward(a, gx, y);
        expect_close_dev(y, want, dt, what + " forward");
        ops::activation_backward(a, gx, upload(dy, dt), dx);
        expect_close_dev(dx, wdx, dt, what + " backward");
        // in place: y = x, dx = dy
        Tensor gx2 = upload(x, dt);
        ops::activation_forward(a, gx2, gx2);
        expect_close_dev(gx2, want, dt, what + " forward in place");
        Tensor gdy = upload(dy, dt);
        ops::activation_backward(a, gx, gdy, gdy);
        expect_close_dev(gdy, wdx, dt, what + " backward in place");
      }
}

DBT_TEST(cuda_geglu_matches_reference) {
  uint64_t seed = 100;
  for (DType dt : float_types())
    for (const Shape& s : {Shape{2}, Shape{3, 7, 26}, Shape{2, 33, 2560}}) {
      Shape ys = s;
      ys[ys.ndim() - 1] = s[s.ndim() - 1] / 2;
      std::string what = "geglu " + s.str();
      Tensor x = rnd(s, seed++, -3.0, 3.0), dy = rnd(ys, seed++);
      Tensor want = Tensor::empty(ys, DType::f64), wdx = Tensor::empty(s, DType::f64);
      ops::geglu_forward(rounded64(x, dt), want);
      ops::geglu_backward(rounded64(x, dt), rounded64(dy, dt), wdx);
      Tensor gx = upload(x, dt), y = poisoned(ys, dt), dx = poisoned(s, dt);
      ops::geglu_forward(gx, y);
      expect_close_dev(y, want, dt, what + " forward");
      ops::geglu_backward(gx, upload(dy, dt), dx);
      expect_close_dev(dx, wdx, dt, what + " backward");
    }
}

DBT_TEST(cuda_softmax_matches_reference) {
  uint64_t seed = 200;
  for (DType dt : float_types())
    for (const Shape& s : {Shape{1}, Shape{5, 3}, Shape{2, 8, 77}, Shape{3, 4097}, Shape{1000, 31}}) {
      std::string what = "softmax " + s.str();
      Tensor x = rnd(s, seed++, -6.0, 6.0), dy = rnd(s, seed++);
      Tensor want = Tensor::empty(s, DType::f64);
      ops::softmax_forward(rounded64(x, dt), want);
      Tensor gx = upload(x, dt), y = poisoned(s, dt);
      ops::softmax_forward(gx, y);
      expect_close_dev(y, want, dt, what + " forward");
      // backward from the GPU's y (as training does), reference on the same rounded values
      Tensor y64 = download(y), wdx = Tensor::empty(s, DType::f64);
      ops::softmax_backward(y64, rounded64(dy, dt), wdx);
      Tensor dx = poisoned(s, dt);
      ops::softmax_backward(y, upload(dy, dt), dx);
      expect_close_dev(dx, wdx, dt, what + " backward");
      Tensor gx2 = upload(x, dt);
      ops::softmax_forward(gx2, gx2);
      expect_close_dev(gx2, want, dt, what + " forward in place");
      Tensor gdy = upload(dy, dt);
      ops::softmax_backward(y, gdy, gdy);
      expect_close_dev(gdy, wdx, dt, what + " backward in place");
    }
}
