// Reductions and the diffusion loss. Scalars are tensors with one element, so they can stay on the device.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

// y (one element) = sum (or mean, when `mean`) of all elements of x, summed in fixed blocks (deterministic).
void reduce_all(const Tensor& x, bool mean, Tensor& y);
// dx = dy (or dy / numel when `mean`) everywhere; dy has one element.
void reduce_all_backward(const Tensor& dy, bool mean, Tensor& dx);

// Per-sample weighted MSE. pred and target [N, ...]; weights [N] (optional: 1/N each, i.e. the plain mean).
//   loss (one element) = sum_n weights[n] * mean_i (pred[n,i] - target[n,i])^2
//   per_sample [N] (optional) = mean_i (pred[n,i] - target[n,i])^2, unweighted (for logging).
// Prior preservation with k instance and k class samples: weights 1/k for instance rows and lambda/k for
// class rows gives mse(instance) + lambda * mse(class); min-SNR weights multiply in the same way.
void mse_loss_forward(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,
                      Tensor* per_sample);
// dpred = dloss * weights[n] * 2 (pred - target) / (elements per sample); dloss has one element.
void mse_loss_backward(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss,
                       Tensor& dpred);

using ReduceAllFn = void (*)(const Tensor& x, bool mean, Tensor& y);
using ReduceAllBackwardFn = void (*)(const Tensor& dy, bool mean, Tensor& dx);
using MseForwardFn = void (*)(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,
                              Tensor* per_sample);
using MseBackwardFn = void (*)(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss,
                               Tensor& dpred);
OpTable<ReduceAllFn>& reduce_all_table();
OpTable<ReduceAllBackwardFn>& reduce_all_backward_table();
OpTable<MseForwardFn>& mse_loss_forward_table();
OpTable<MseBackwardFn>& mse_loss_backward_table();

#define DBT_LOSS_DECLS                                                                                  \
  void reduce_all(const Tensor& x, bool mean, Tensor& y);                                               \
  void reduce_all_backward(const Tensor& dy, bool mean, Tensor& dx);                                    \
  void mse_loss_forward(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,  \
                        Tensor* per_sample);                                                            \
  void mse_loss_backward(const Tensor& pred, const Tensor& target, const Tensor* weights,               \
                         const Tensor& dloss, Tensor& dpred);
namespace ref {
DBT_LOSS_DECLS
}
namespace cpu {
DBT_LOSS_DECLS
}
#undef DBT_LOSS_DECLS

}  // namespace dbt::ops
