#include "nn/attention.h"

#include <cmath>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/tensor_ops.h"

namespace dbt::nn {
namespace {

// The CUDA attention kernels take head dims up to 256 (native/cuda/attention.cu); the VAE's single-head
// mid-block attention has 512 (forward only: the VAE is frozen). There the scores are materialised instead:
// S = Q K^T / sqrt(D) [B, Nq, Nk] in f32, softmax in place, O = S V. The CPU keeps the attention op (any head dim).
constexpr int64_t kDeviceMaxHeadDim = 256;

Tensor to_dtype(const Tensor& x, DType dt) {
  if (x.dtype() == dt) return x;
  Tensor y = Tensor::empty(x.shape(), dt, x.device());
  ops::cast(x, y);
  return y;
}

// Numerics as the flash kernels: scores and softmax in f32, P rounded to the storage dtype for P V.
Tensor attention_materialised(const Tensor& q, const Tensor& k, const Tensor& v) {
  Tensor s = Tensor::empty({q.dim(0), q.dim(1), k.dim(1)}, DType::f32, q.device());
  ops::GemmParams gp;
  gp.trans_b = true;
  gp.alpha = float(1.0 / std::sqrt(double(q.dim(2))));
  ops::gemm(to_dtype(q, DType::f32), to_dtype(k, DType::f32), s, gp);
  ops::softmax_forward(s, s);
  Tensor o = Tensor::empty({q.dim(0), q.dim(1), v.dim(2)}, q.dtype(), q.device());
  ops::gemm(to_dtype(s, q.dtype()), v, o);
  return o;
}

}  // namespace

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
  if (!x.is_cpu() && q.dim(2) / heads_ > kDeviceMaxHeadDim) {
    if (save || heads_ != 1 || causal_)
      throw Error("attention " + q_.w->key + ": head dim " + std::to_string(q.dim(2) / heads_) + " > " +
                  std::to_string(kDeviceMaxHeadDim) + " runs on " + device_name(x.device()) +
                  " only single-head, non-causal and without a backward (the VAE's mid-block attention)");
    return out_.forward(attention_materialised(q, k, v), false);
  }
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
