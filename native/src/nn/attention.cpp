#include "nn/attention.h"

#include "ops/attention.h"

namespace dbt::nn {

void MultiHeadAttention::init(ParamSet& ps, const std::string& key, int64_t query_dim, int64_t kv_dim, int heads,
                              bool qkv_bias, const char* const names[4], bool causal, bool conv1x1) {
  if (query_dim % heads != 0)
    throw Error(key + ": " + std::to_string(query_dim) + " channels not divisible by " + std::to_string(heads) + " heads");
  heads_ = heads;
  causal_ = causal;
  q_.init(ps, key + "." + names[0], query_dim, query_dim, qkv_bias, conv1x1);
  k_.init(ps, key + "." + names[1], kv_dim, query_dim, qkv_bias, conv1x1);
  v_.init(ps, key + "." + names[2], kv_dim, query_dim, qkv_bias, conv1x1);
  out_.init(ps, key + "." + names[3], query_dim, query_dim, true, conv1x1);
}

Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor* ctx, bool save) {
  cross_ = ctx != nullptr;
  const Tensor& kv = cross_ ? *ctx : x;
  Tensor q = q_.forward(x, save), k = k_.forward(kv, save), v = v_.forward(kv, save);
  Tensor o = Tensor::empty(q.shape(), q.dtype(), q.device());
  ops::AttentionParams p;
  p.heads = heads_;
  p.scale = 0.0f;  // dim_head^-0.5
  p.causal = causal_;
  if (save) {
    lse_ = Tensor::empty({q.dim(0), heads_, q.dim(1)}, q.dtype(), q.device());
    ops::attention_forward(q, k, v, p, o, &lse_);
    qs_ = q;
    ks_ = k;
    vs_ = v;
    os_ = o;
  } else {
    ops::attention_forward(q, k, v, p, o, nullptr);
  }
  return out_.forward(o, save);
}

Tensor MultiHeadAttention::backward(const Tensor& dy, Tensor* dctx) {
  if (!os_.defined()) throw Error("attention " + q_.w->key + ": backward without a saved forward");
  Tensor dout = out_.backward(dy);
  Tensor dq = Tensor::empty(qs_.shape(), qs_.dtype(), qs_.device());
  Tensor dk = Tensor::empty(ks_.shape(), ks_.dtype(), ks_.device());
  Tensor dv = Tensor::empty(vs_.shape(), vs_.dtype(), vs_.device());
  ops::AttentionParams p;
  p.heads = heads_;
  p.causal = causal_;
  ops::attention_backward(qs_, ks_, vs_, os_, lse_, dout, p, &dq, &dk, &dv);
  qs_ = ks_ = vs_ = os_ = lse_ = Tensor();
  Tensor dx = q_.backward(dq);
  const bool want_dkv = !cross_ || dctx != nullptr;
  Tensor dk_in = k_.backward(dk, want_dkv);
  Tensor dv_in = v_.backward(dv, want_dkv);
  if (!cross_) {
    accumulate(dx, dk_in);
    accumulate(dx, dv_in);
  } else if (dctx != nullptr) {
    accumulate(*dctx, dk_in);
    accumulate(*dctx, dv_in);
  }
  return dx;
}

}  // namespace dbt::nn
