// Normalisations: GroupNorm over NC(spatial) with an optional fused SiLU, and LayerNorm over the last dim.
// Both are affine (gamma, beta) and use the biased variance, like PyTorch. The forward saves mean and
// rstd = 1/sqrt(var + eps) per group / row for the backward.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

struct GroupNormParams {
  int groups = 32;
  float eps = 1e-5f;   // SD1: 1e-5 in UNet ResBlocks and the output head, 1e-6 in SpatialTransformers and the VAE
  bool silu = false;   // y = silu(groupnorm(x)) (the norm -> SiLU pairs of ResBlocks and heads)
};

// x [N, C, ...] (C divisible by groups), gamma/beta [C] -> y like x; mean/rstd [N, groups] (optional).
void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p,
                        Tensor& y, Tensor* mean, Tensor* rstd);
// dy is the gradient of y (after the SiLU when fused). dx written; dgamma, dbeta accumulated; any may be null.
void group_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma,
                         Tensor* dbeta);

// x [..., C], gamma/beta [C] -> y like x; mean/rstd [rows] (rows = numel / C; optional).
void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                        Tensor* mean, Tensor* rstd);
void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta);

using GroupNormForwardFn = void (*)(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                    const GroupNormParams& p, Tensor& y, Tensor* mean, Tensor* rstd);
using GroupNormBackwardFn = void (*)(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx,
                                     Tensor* dgamma, Tensor* dbeta);
using LayerNormForwardFn = void (*)(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                                    Tensor* mean, Tensor* rstd);
using LayerNormBackwardFn = void (*)(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta);
OpTable<GroupNormForwardFn>& group_norm_forward_table();
OpTable<GroupNormBackwardFn>& group_norm_backward_table();
OpTable<LayerNormForwardFn>& layer_norm_forward_table();
OpTable<LayerNormBackwardFn>& layer_norm_backward_table();

#define DBT_NORM_DECLS                                                                                          \
  void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p,   \
                          Tensor& y, Tensor* mean, Tensor* rstd);                                               \
  void group_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,        \
                           const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx,          \
                           Tensor* dgamma, Tensor* dbeta);                                                      \
  void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,        \
                          Tensor* mean, Tensor* rstd);                                                          \
  void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,        \
                           const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta);
namespace ref {
DBT_NORM_DECLS
}
namespace cpu {
DBT_NORM_DECLS
}
#undef DBT_NORM_DECLS

}  // namespace dbt::ops
