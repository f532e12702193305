#include "nn/layers.h"

#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/tensor_ops.h"

namespace dbt::nn {

Tensor empty_like(const Tensor& x) { return Tensor::empty(x.shape(), x.dtype(), x.device()); }

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = empty_like(a);
  ops::add(a, b, y);
  return y;
}

void accumulate(Tensor& acc, const Tensor& x) { ops::axpby(1.0f, x, 1.0f, acc); }

// ---- Linear ----
void Linear::init(ParamSet& ps, const std::string& key, int64_t in_, int64_t out_, bool bias, bool conv1x1) {
  in = in_;
  out = out_;
  w = ps.add(key + ".weight", conv1x1 ? Shape{out, in, 1, 1} : Shape{out, in});
  b = bias ? ps.add(key + ".bias", {out}) : nullptr;
}

Tensor Linear::forward(const Tensor& x, bool save) {
  Shape ys = x.shape();
  ys[ys.ndim() - 1] = out;
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  ops::linear_forward(x, w->value.view({out, in}), b ? &b->value : nullptr, y);
  if (save) x_ = x;
  return y;
}

Tensor Linear::backward(const Tensor& dy, bool want_dx) {
  if (!x_.defined()) throw Error("Linear " + w->key + ": backward without a saved forward");
  Tensor dx = want_dx ? empty_like(x_) : Tensor();
  Tensor* dw = grad_of(w);
  Tensor dwv = dw ? dw->view({out, in}) : Tensor();
  ops::linear_backward(x_, w->value.view({out, in}), dy, want_dx ? &dx : nullptr, dw ? &dwv : nullptr, grad_of(b));
  x_ = dwv = Tensor();
  grad_ready(w);
  grad_ready(b);
  return dx;
}

// ---- Conv2d ----
void Conv2d::init(ParamSet& ps, const std::string& key, int64_t cin_, int64_t cout_, int64_t k_, ops::Conv2dParams p_) {
  cin = cin_;
  cout = cout_;
  k = k_;
  p = p_;
  w = ps.add(key + ".weight", {cout, cin, k, k});
  b = ps.add(key + ".bias", {cout});
}

Tensor Conv2d::forward(const Tensor& x, bool save) {
  Tensor y = Tensor::empty(ops::conv2d_output_shape(x.shape(), w->value.shape(), p), x.dtype(), x.device());
  ops::conv2d_forward(x, w->value, &b->value, p, y);
  if (save) x_ = x;
  return y;
}

Tensor Conv2d::backward(const Tensor& dy, bool want_dx) {
  if (!x_.defined()) throw Error("Conv2d " + w->key + ": backward without a saved forward");
  Tensor dx = want_dx ? empty_like(x_) : Tensor();
  ops::conv2d_backward(x_, w->value, dy, p, want_dx ? &dx : nullptr, grad_of(w), grad_of(b));
  x_ = Tensor();
  grad_ready(w);
  grad_ready(b);
  return dx;
}

// ---- GroupNorm ----
void GroupNorm::init(ParamSet& ps, const std::string& key, int64_t channels, int groups, float eps, bool silu) {
  gamma = ps.add(key + ".weight", {channels});
  beta = ps.add(key + ".bias", {channels});
  p.groups = groups;
  p.eps = eps;
  p.silu = silu;
}

Tensor GroupNorm::forward(const Tensor& x, bool save) {
  Tensor y = empty_like(x);
  if (!save) {
    ops::group_norm_forward(x, gamma->value, beta->value, p, y, nullptr, nullptr);
    return y;
  }
  mean_ = Tensor::empty({x.dim(0), p.groups}, x.dtype(), x.device());
  rstd_ = Tensor::empty({x.dim(0), p.groups}, x.dtype(), x.device());
  ops::group_norm_forward(x, gamma->value, beta->value, p, y, &mean_, &rstd_);
  x_ = x;
  return y;
}

Tensor GroupNorm::backward(const Tensor& dy) {
  if (!x_.defined()) throw Error("GroupNorm " + gamma->key + ": backward without a saved forward");
  Tensor dx = empty_like(x_);
  ops::group_norm_backward(x_, gamma->value, beta->value, mean_, rstd_, dy, p, &dx, grad_of(gamma), grad_of(beta));
  x_ = mean_ = rstd_ = Tensor();
  grad_ready(gamma);
  grad_ready(beta);
  return dx;
}

// ---- LayerNorm ----
void LayerNorm::init(ParamSet& ps, const std::string& key, int64_t dim, float eps_) {
  gamma = ps.add(key + ".weight", {dim});
  beta = ps.add(key + ".bias", {dim});
  eps = eps_;
}

Tensor LayerNorm::forward(const Tensor& x, bool save) {
  Tensor y = empty_like(x);
  if (!save) {
    ops::layer_norm_forward(x, gamma->value, beta->value, eps, y, nullptr, nullptr);
    return y;
  }
  int64_t rows = x.numel() / x.dim(-1);
  mean_ = Tensor::empty({rows}, x.dtype(), x.device());
  rstd_ = Tensor::empty({rows}, x.dtype(), x.device());
  ops::layer_norm_forward(x, gamma->value, beta->value, eps, y, &mean_, &rstd_);
  x_ = x;
  return y;
}

Tensor LayerNorm::backward(const Tensor& dy) {
  if (!x_.defined()) throw Error("LayerNorm " + gamma->key + ": backward without a saved forward");
  Tensor dx = empty_like(x_);
  ops::layer_norm_backward(x_, gamma->value, mean_, rstd_, dy, &dx, grad_of(gamma), grad_of(beta));
  x_ = mean_ = rstd_ = Tensor();
  grad_ready(gamma);
  grad_ready(beta);
  return dx;
}

// ---- Act ----
Tensor Act::forward(const Tensor& x, bool save) {
  Tensor y = empty_like(x);
  ops::activation_forward(a, x, y);
  if (save) x_ = x;
  return y;
}

Tensor Act::backward(const Tensor& dy) {
  if (!x_.defined()) throw Error(std::string("activation ") + ops::activation_name(a) + ": backward without a saved forward");
  Tensor dx = empty_like(x_);
  ops::activation_backward(a, x_, dy, dx);
  x_ = Tensor();
  return dx;
}

}  // namespace dbt::nn
