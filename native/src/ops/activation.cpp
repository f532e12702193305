#include "ops/activation.h"

#include "ops/check.h"

namespace dbt::ops {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::silu: return "silu";
    case Activation::gelu: return "gelu";
    case Activation::quick_gelu: return "quick_gelu";
  }
  return "?";
}

#define DBT_TABLE(NAME, FN)                                             \
  OpTable<FN>& NAME##_table() {                                         \
    static OpTable<FN> t(#NAME, &ref::NAME, &cpu::NAME);                \
    return t;                                                           \
  }
DBT_TABLE(activation_forward, ActivationForwardFn)
DBT_TABLE(activation_backward, ActivationBackwardFn)
DBT_TABLE(geglu_forward, GegluForwardFn)
DBT_TABLE(geglu_backward, GegluBackwardFn)
DBT_TABLE(softmax_forward, SoftmaxForwardFn)
DBT_TABLE(softmax_backward, SoftmaxBackwardFn)
#undef DBT_TABLE

void activation_forward(Activation a, const Tensor& x, Tensor& y) {
  std::string op = std::string(activation_name(a)) + "_forward";
  Checker ck(op.c_str(), {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.same_shape(x, "x", y, "y");
  activation_forward_table().get(ck.device(), dt)(a, x, y);
}

void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  std::string op = std::string(activation_name(a)) + "_backward";
  Checker ck(op.c_str(), {{"x", &x}, {"dy", &dy}, {"dx", &dx}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.same_shape(x, "x", dy, "dy");
  ck.same_shape(x, "x", dx, "dx");
  activation_backward_table().get(ck.device(), dt)(a, x, dy, dx);
}

void geglu_forward(const Tensor& x, Tensor& y) {
  Checker ck("geglu_forward", {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.require(x.dim(-1) % 2 == 0, "x's last dim must be even (hidden and gate halves)");
  Shape ys = x.shape();
  ys[ys.ndim() - 1] = x.dim(-1) / 2;
  ck.shape(y, "y", ys);
  geglu_forward_table().get(ck.device(), dt)(x, y);
}

void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  Checker ck("geglu_backward", {{"x", &x}, {"dy", &dy}, {"dx", &dx}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.require(x.dim(-1) % 2 == 0, "x's last dim must be even (hidden and gate halves)");
  Shape ys = x.shape();
  ys[ys.ndim() - 1] = x.dim(-1) / 2;
  ck.shape(dy, "dy", ys);
  ck.same_shape(x, "x", dx, "dx");
  geglu_backward_table().get(ck.device(), dt)(x, dy, dx);
}

void softmax_forward(const Tensor& x, Tensor& y) {
  Checker ck("softmax_forward", {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.same_shape(x, "x", y, "y");
  softmax_forward_table().get(ck.device(), dt)(x, y);
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  Checker ck("softmax_backward", {{"y", &y}, {"dy", &dy}, {"dx", &dx}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.ndim(y, "y", 1, kMaxDims);
  ck.same_shape(y, "y", dy, "dy");
  ck.same_shape(y, "y", dx, "dx");
  softmax_backward_table().get(ck.device(), dt)(y, dy, dx);
}

}  // namespace dbt::ops
