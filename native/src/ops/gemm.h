// GEMM family: batched matrix multiply and the linear layer (PyTorch layout: w [out, in]).
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

struct GemmParams {
  bool trans_a = false;  // a holds [..., K, M] instead of [..., M, K]
  bool trans_b = false;  // b holds [..., N, K] instead of [..., K, N]
  float alpha = 1.0f;
  float beta = 0.0f;     // 0: c is overwritten (its old contents are never read, NaN included)
};

// c[..., M, N] = alpha * op(a) @ op(b) + beta * c.
// a and b have the batch dims of c, or are 2-D and shared by every batch.
void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p = {});

// y[..., out] = x[..., in] @ w[out, in]^T + b[out]            (b optional)
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
// dx[..., in] = dy @ w (overwritten); dw[out, in] += dy^T @ x; db[out] += sum of dy over rows.
// Any of dx, dw, db may be null (not wanted).
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db);

// ---- kernels: same signatures per device, arguments already validated ----
using GemmFn = void (*)(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p);
using LinearForwardFn = void (*)(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
using LinearBackwardFn = void (*)(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                                  Tensor* db);
OpTable<GemmFn>& gemm_table();
OpTable<LinearForwardFn>& linear_forward_table();
OpTable<LinearBackwardFn>& linear_backward_table();

namespace ref {
void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p);
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db);
}  // namespace ref

namespace cpu {
void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p);
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db);
}  // namespace cpu

}  // namespace dbt::ops
