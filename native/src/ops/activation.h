// Activations and softmax. Element-wise ops allow in-place use (y may be x, dx may be dy).
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

enum class Activation {
  silu,        // x * sigmoid(x)
  gelu,        // exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
  quick_gelu,  // x * sigmoid(1.702 x)   (CLIP)
};
const char* activation_name(Activation a);

void activation_forward(Activation a, const Tensor& x, Tensor& y);
// dx = dy * f'(x)
void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx);

// GEGLU: x [..., 2F] split into (h = x[..., :F], gate = x[..., F:]); y [..., F] = h * gelu(gate).
void geglu_forward(const Tensor& x, Tensor& y);
void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);  // dx [..., 2F]

// Softmax over the last dim. The backward takes the forward's output y: dx = y * (dy - sum(dy * y)).
void softmax_forward(const Tensor& x, Tensor& y);
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx);

using ActivationForwardFn = void (*)(Activation a, const Tensor& x, Tensor& y);
using ActivationBackwardFn = void (*)(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx);
using GegluForwardFn = void (*)(const Tensor& x, Tensor& y);
using GegluBackwardFn = void (*)(const Tensor& x, const Tensor& dy, Tensor& dx);
using SoftmaxForwardFn = void (*)(const Tensor& x, Tensor& y);
using SoftmaxBackwardFn = void (*)(const Tensor& y, const Tensor& dy, Tensor& dx);
OpTable<ActivationForwardFn>& activation_forward_table();
OpTable<ActivationBackwardFn>& activation_backward_table();
OpTable<GegluForwardFn>& geglu_forward_table();
OpTable<GegluBackwardFn>& geglu_backward_table();
OpTable<SoftmaxForwardFn>& softmax_forward_table();
OpTable<SoftmaxBackwardFn>& softmax_backward_table();

#define DBT_ACTIVATION_DECLS                                                      \
  void activation_forward(Activation a, const Tensor& x, Tensor& y);              \
  void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx); \
  void geglu_forward(const Tensor& x, Tensor& y);                                 \
  void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);             \
  void softmax_forward(const Tensor& x, Tensor& y);                               \
  void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx);
namespace ref {
DBT_ACTIVATION_DECLS
}
namespace cpu {
DBT_ACTIVATION_DECLS
}
#undef DBT_ACTIVATION_DECLS

}  // namespace dbt::ops
