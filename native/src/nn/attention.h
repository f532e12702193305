// Multi-head attention modules: LDM's CrossAttention (to_q/to_k/to_v without bias, to_out.0) and HF
// CLIP's self-attention (q/k/v/out_proj with bias, causal). Token layout [B, N, heads*dim_head] with the
// heads interleaved in the last dim (`b n (h d)`); the score matrix is never materialised whole (the
// attention op works in chunks), except on a GPU for head dims over 256 (the VAE's single head of 512,
// forward only; see attention.cpp).
#pragma once
#include <string>

#include "core/tensor.h"
#include "nn/layers.h"

namespace dbt::nn {

class MultiHeadAttention {
 public:
  // query_dim -> inner = query_dim (SD1: heads * dim_head = channels), keys/values from kv_dim.
  // names: the four projection names under `key` ({"to_q","to_k","to_v","to_out.0"} or CLIP's).
  // conv1x1: projections stored as [out, in, 1, 1] (the VAE's mid-block attention).
  void init(ParamSet& ps, const std::string& key, int64_t query_dim, int64_t kv_dim, int heads, bool qkv_bias,
            const char* const names[4], bool causal, bool conv1x1 = false);
  // x [B, Nq, query_dim]; ctx [B, Nk, kv_dim] or null for self-attention.
  Tensor forward(const Tensor& x, const Tensor* ctx, bool save);
  // Returns dx; adds the context gradient into *dctx when ctx was given and dctx is not null.
  Tensor backward(const Tensor& dy, Tensor* dctx);

 private:
  Linear q_, k_, v_, out_;
  int heads_ = 1;
  bool causal_ = false, cross_ = false;
  Tensor qs_, ks_, vs_, os_, lse_;  // saved by forward for the attention backward
};

}  // namespace dbt::nn
