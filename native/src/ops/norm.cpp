#include "ops/norm.h"

#include "ops/check.h"

namespace dbt::ops {

OpTable<GroupNormForwardFn>& group_norm_forward_table() {
  static OpTable<GroupNormForwardFn> t("group_norm_forward", &ref::group_norm_forward, &cpu::group_norm_forward);
  return t;
}
OpTable<GroupNormBackwardFn>& group_norm_backward_table() {
  static OpTable<GroupNormBackwardFn> t("group_norm_backward", &ref::group_norm_backward, &cpu::group_norm_backward);
  return t;
}
OpTable<LayerNormForwardFn>& layer_norm_forward_table() {
  static OpTable<LayerNormForwardFn> t("layer_norm_forward", &ref::layer_norm_forward, &cpu::layer_norm_forward);
  return t;
}
OpTable<LayerNormBackwardFn>& layer_norm_backward_table() {
  static OpTable<LayerNormBackwardFn> t("layer_norm_backward", &ref::layer_norm_backward, &cpu::layer_norm_backward);
  return t;
}

namespace {
void check_group_shapes(const Checker& ck, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const GroupNormParams& p) {
  ck.ndim(x, "x", 2, kMaxDims);
  ck.require(p.groups >= 1 && x.dim(1) % p.groups == 0,
             "channels (" + std::to_string(x.dim(1)) + ") must be divisible by groups (" + std::to_string(p.groups) + ")");
  ck.require(p.eps > 0, "eps must be positive");
  ck.shape(gamma, "gamma", Shape{x.dim(1)});
  ck.shape(beta, "beta", Shape{x.dim(1)});
}
}  // namespace

void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p,
                        Tensor& y, Tensor* mean, Tensor* rstd) {
  Checker ck("group_norm_forward",
             {{"x", &x}, {"gamma", &gamma}, {"beta", &beta}, {"y", &y}, {"mean", mean}, {"rstd", rstd}});
  ck.require(x.defined() && gamma.defined() && beta.defined() && y.defined(), "x, gamma, beta and y are required");
  DType dt = ck.same_float_dtype();
  check_group_shapes(ck, x, gamma, beta, p);
  ck.same_shape(x, "x", y, "y");
  Shape stat{x.dim(0), p.groups};
  if (mean && mean->defined()) ck.shape(*mean, "mean", stat); else mean = nullptr;
  if (rstd && rstd->defined()) ck.shape(*rstd, "rstd", stat); else rstd = nullptr;
  group_norm_forward_table().get(ck.device(), dt)(x, gamma, beta, p, y, mean, rstd);
}

void group_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma,
                         Tensor* dbeta) {
  Checker ck("group_norm_backward", {{"x", &x}, {"gamma", &gamma}, {"beta", &beta}, {"mean", &mean}, {"rstd", &rstd},
                                     {"dy", &dy}, {"dx", dx}, {"dgamma", dgamma}, {"dbeta", dbeta}});
  ck.require(x.defined() && gamma.defined() && beta.defined() && mean.defined() && rstd.defined() && dy.defined(),
             "x, gamma, beta, mean, rstd and dy are required");
  DType dt = ck.same_float_dtype();
  check_group_shapes(ck, x, gamma, beta, p);
  ck.same_shape(x, "x", dy, "dy");
  Shape stat{x.dim(0), p.groups};
  ck.shape(mean, "mean", stat);
  ck.shape(rstd, "rstd", stat);
  if (dx && dx->defined()) ck.shape(*dx, "dx", x.shape()); else dx = nullptr;
  if (dgamma && dgamma->defined()) ck.shape(*dgamma, "dgamma", gamma.shape()); else dgamma = nullptr;
  if (dbeta && dbeta->defined()) ck.shape(*dbeta, "dbeta", beta.shape()); else dbeta = nullptr;
  group_norm_backward_table().get(ck.device(), dt)(x, gamma, beta, mean, rstd, dy, p, dx, dgamma, dbeta);
}

void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                        Tensor* mean, Tensor* rstd) {
  Checker ck("layer_norm_forward",
             {{"x", &x}, {"gamma", &gamma}, {"beta", &beta}, {"y", &y}, {"mean", mean}, {"rstd", rstd}});
  ck.require(x.defined() && gamma.defined() && beta.defined() && y.defined(), "x, gamma, beta and y are required");
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.require(eps > 0, "eps must be positive");
  ck.shape(gamma, "gamma", Shape{x.dim(-1)});
  ck.shape(beta, "beta", Shape{x.dim(-1)});
  ck.same_shape(x, "x", y, "y");
  Shape stat{x.numel() / std::max<int64_t>(x.dim(-1), 1)};
  if (mean && mean->defined()) ck.require(mean->numel() == stat[0], "mean must have one entry per row"); else mean = nullptr;
  if (rstd && rstd->defined()) ck.require(rstd->numel() == stat[0], "rstd must have one entry per row"); else rstd = nullptr;
  layer_norm_forward_table().get(ck.device(), dt)(x, gamma, beta, eps, y, mean, rstd);
}

void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  Checker ck("layer_norm_backward", {{"x", &x}, {"gamma", &gamma}, {"mean", &mean}, {"rstd", &rstd}, {"dy", &dy},
                                     {"dx", dx}, {"dgamma", dgamma}, {"dbeta", dbeta}});
  ck.require(x.defined() && gamma.defined() && mean.defined() && rstd.defined() && dy.defined(),
             "x, gamma, mean, rstd and dy are required");
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.shape(gamma, "gamma", Shape{x.dim(-1)});
  ck.same_shape(x, "x", dy, "dy");
  int64_t rows = x.numel() / std::max<int64_t>(x.dim(-1), 1);
  ck.require(mean.numel() == rows && rstd.numel() == rows, "mean and rstd must have one entry per row");
  if (dx && dx->defined()) ck.shape(*dx, "dx", x.shape()); else dx = nullptr;
  if (dgamma && dgamma->defined()) ck.shape(*dgamma, "dgamma", gamma.shape()); else dgamma = nullptr;
  if (dbeta && dbeta->defined()) ck.shape(*dbeta, "dbeta", gamma.shape()); else dbeta = nullptr;
  layer_norm_backward_table().get(ck.device(), dt)(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}

}  // namespace dbt::ops
