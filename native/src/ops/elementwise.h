// Element-wise arithmetic with NumPy broadcasting, and the reduction that undoes a broadcast. Clamp (the VAE's logvar).
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

enum class BinaryOp { add, sub, mul };
const char* binary_op_name(BinaryOp op);

// y = a op b. a and b broadcast to y's shape (dims aligned from the right; each dim equal or 1 — e.g.
// h [N,C,H,W] + emb [N,C,1,1], x [B,N,C] + bias [C]). y may be a or b when it has that operand's shape.
void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y);
// da = sum_to(dy * dy/da, a's shape), db likewise; written, either may be null.
void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da, Tensor* db);
inline void add(const Tensor& a, const Tensor& b, Tensor& y) { binary_forward(BinaryOp::add, a, b, y); }
inline void mul(const Tensor& a, const Tensor& b, Tensor& y) { binary_forward(BinaryOp::mul, a, b, y); }

// y = alpha * x + beta * y (same shape). beta == 0: y is only written (NaN in y does not propagate).
void axpby(float alpha, const Tensor& x, float beta, Tensor& y);
// y = sum of x over the dims where y broadcasts to x (y's shape, right-aligned, has 1 or x's size per dim).
void sum_to(const Tensor& x, Tensor& y);
// y = min(hi, max(lo, x)) (same shape; y may be x). NaN maps to lo (std::max(lo, NaN) is lo), as fmaxf does.
void clamp(const Tensor& x, float lo, float hi, Tensor& y);

// Broadcast shape of a and b; throws OpError naming `op` if they do not broadcast.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

using BinaryForwardFn = void (*)(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y);
using BinaryBackwardFn = void (*)(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da,
                                  Tensor* db);
using AxpbyFn = void (*)(float alpha, const Tensor& x, float beta, Tensor& y);
using SumToFn = void (*)(const Tensor& x, Tensor& y);
using ClampFn = void (*)(const Tensor& x, float lo, float hi, Tensor& y);
OpTable<BinaryForwardFn>& binary_forward_table();
OpTable<BinaryBackwardFn>& binary_backward_table();
OpTable<AxpbyFn>& axpby_table();
OpTable<SumToFn>& sum_to_table();
OpTable<ClampFn>& clamp_table();

#define DBT_ELEMENTWISE_DECLS                                                                           \
  void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y);                        \
  void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da,     \
                       Tensor* db);                                                                     \
  void axpby(float alpha, const Tensor& x, float beta, Tensor& y);                                      \
  void sum_to(const Tensor& x, Tensor& y);                                                              \
  void clamp(const Tensor& x, float lo, float hi, Tensor& y);
namespace ref {
DBT_ELEMENTWISE_DECLS
}
namespace cpu {
DBT_ELEMENTWISE_DECLS
}
#undef DBT_ELEMENTWISE_DECLS

// Shared by the CPU implementations: shapes right-aligned to kMaxDims with 0 strides on broadcast dims.
struct BroadcastIndex {
  int64_t dims[kMaxDims];
  int64_t stride_a[kMaxDims], stride_b[kMaxDims];
  BroadcastIndex(const Shape& out, const Shape& a, const Shape& b);
};

}  // namespace dbt::ops
