// Multi-head scaled-dot-product attention, self or cross, optional causal mask, on [B, N, H*D] layouts
// (heads interleaved in the channel dim, as the linear projections produce them: no permutes).
// The CPU version works on chunks of queries, so the N x N score matrix is never held (N = 4096 at 64x64
// latents); the backward recomputes scores from the saved log-sum-exp (flash-attention style).
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

struct AttentionParams {
  int heads = 1;
  float scale = 0.0f;   // 0: 1/sqrt(head dim of q), SD's dim_head^-0.5
  bool causal = false;  // key j visible to query i only when j <= i (CLIP); needs Nq == Nk
};

// q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*Dv] -> out [B, Nq, H*Dv];
// lse [B, H, Nq] (optional) = log sum_j exp(scale * q_i . k_j), kept for the backward.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, Tensor& out,
                       Tensor* lse);
// dq, dk, dv written (each may be null). out and lse are the forward's.
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const AttentionParams& p, Tensor* dq, Tensor* dk, Tensor* dv);

using AttentionForwardFn = void (*)(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,
                                    Tensor& out, Tensor* lse);
using AttentionBackwardFn = void (*)(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, const Tensor& dout, const AttentionParams& p, Tensor* dq,
                                     Tensor* dk, Tensor* dv);
OpTable<AttentionForwardFn>& attention_forward_table();
OpTable<AttentionBackwardFn>& attention_backward_table();

#define DBT_ATTENTION_DECLS                                                                                  \
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,        \
                         Tensor& out, Tensor* lse);                                                          \
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,              \
                          const Tensor& lse, const Tensor& dout, const AttentionParams& p, Tensor* dq,       \
                          Tensor* dk, Tensor* dv);
namespace ref {
DBT_ATTENTION_DECLS
}
namespace cpu {
DBT_ATTENTION_DECLS
}
#undef DBT_ATTENTION_DECLS

}  // namespace dbt::ops
