#include "ops/loss.h"

#include "ops/check.h"

namespace dbt::ops {

#define DBT_TABLE(NAME, FN)                              \
  OpTable<FN>& NAME##_table() {                          \
    static OpTable<FN> t(#NAME, &ref::NAME, &cpu::NAME); \
    return t;                                            \
  }
DBT_TABLE(reduce_all, ReduceAllFn)
DBT_TABLE(reduce_all_backward, ReduceAllBackwardFn)
DBT_TABLE(mse_loss_forward, MseForwardFn)
DBT_TABLE(mse_loss_backward, MseBackwardFn)
#undef DBT_TABLE

void reduce_all(const Tensor& x, bool mean, Tensor& y) {
  Checker ck(mean ? "mean" : "sum", {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.require(y.numel() == 1, "y must have one element");
  ck.require(x.numel() > 0 || !mean, "mean of an empty tensor");
  reduce_all_table().get(ck.device(), dt)(x, mean, y);
}

void reduce_all_backward(const Tensor& dy, bool mean, Tensor& dx) {
  Checker ck(mean ? "mean_backward" : "sum_backward", {{"dy", &dy}, {"dx", &dx}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.require(dy.numel() == 1, "dy must have one element");
  reduce_all_backward_table().get(ck.device(), dt)(dy, mean, dx);
}

namespace {
void check_mse(const Checker& ck, const Tensor& pred, const Tensor& target, const Tensor* weights) {
  ck.ndim(pred, "pred", 1, kMaxDims);
  ck.same_shape(pred, "pred", target, "target");
  ck.require(pred.numel() > 0, "pred is empty");
  if (weights && weights->defined()) ck.shape(*weights, "weights", Shape{pred.dim(0)});
}
}  // namespace

void mse_loss_forward(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,
                      Tensor* per_sample) {
  Checker ck("mse_loss_forward",
             {{"pred", &pred}, {"target", &target}, {"weights", weights}, {"loss", &loss}, {"per_sample", per_sample}});
  ck.require(pred.defined() && target.defined() && loss.defined(), "pred, target and loss are required");
  DType dt = ck.same_float_dtype();
  check_mse(ck, pred, target, weights);
  ck.require(loss.numel() == 1, "loss must have one element");
  if (per_sample && per_sample->defined()) ck.shape(*per_sample, "per_sample", Shape{pred.dim(0)}); else per_sample = nullptr;
  mse_loss_forward_table().get(ck.device(), dt)(pred, target, weights && weights->defined() ? weights : nullptr, loss,
                                                per_sample);
}

void mse_loss_backward(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss,
                       Tensor& dpred) {
  Checker ck("mse_loss_backward",
             {{"pred", &pred}, {"target", &target}, {"weights", weights}, {"dloss", &dloss}, {"dpred", &dpred}});
  ck.require(pred.defined() && target.defined() && dloss.defined() && dpred.defined(),
             "pred, target, dloss and dpred are required");
  DType dt = ck.same_float_dtype();
  check_mse(ck, pred, target, weights);
  ck.require(dloss.numel() == 1, "dloss must have one element");
  ck.same_shape(pred, "pred", dpred, "dpred");
  mse_loss_backward_table().get(ck.device(), dt)(pred, target, weights && weights->defined() ? weights : nullptr,
                                                 dloss, dpred);
}

}  // namespace dbt::ops
