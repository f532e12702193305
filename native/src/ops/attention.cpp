#include "ops/attention.h"

#include "ops/check.h"

namespace dbt::ops {

OpTable<AttentionForwardFn>& attention_forward_table() {
  static OpTable<AttentionForwardFn> t("attention_forward", &ref::attention_forward, &cpu::attention_forward);
  return t;
}
OpTable<AttentionBackwardFn>& attention_backward_table() {
  static OpTable<AttentionBackwardFn> t("attention_backward", &ref::attention_backward, &cpu::attention_backward);
  return t;
}

namespace {
void check_qkv(const Checker& ck, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
  ck.ndim(q, "q", 3, 3);
  ck.ndim(k, "k", 3, 3);
  ck.ndim(v, "v", 3, 3);
  ck.require(p.heads >= 1, "heads must be >= 1");
  ck.require(q.dim(2) % p.heads == 0 && v.dim(2) % p.heads == 0,
             "channels must be divisible by heads (" + std::to_string(p.heads) + ")");
  ck.require(k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0), "q, k and v need the same batch");
  ck.require(k.dim(2) == q.dim(2), "q and k need the same channels");
  ck.require(v.dim(1) == k.dim(1), "k and v need the same number of tokens");
  ck.require(!p.causal || q.dim(1) == k.dim(1), "a causal mask needs as many queries as keys");
  ck.require(k.dim(1) >= 1, "needs at least one key");
}
}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, Tensor& out,
                       Tensor* lse) {
  Checker ck("attention_forward", {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", lse}});
  ck.require(q.defined() && k.defined() && v.defined() && out.defined(), "q, k, v and out are required");
  DType dt = ck.same_float_dtype();
  check_qkv(ck, q, k, v, p);
  ck.shape(out, "out", Shape{q.dim(0), q.dim(1), v.dim(2)});
  if (lse && lse->defined()) ck.shape(*lse, "lse", Shape{q.dim(0), p.heads, q.dim(1)}); else lse = nullptr;
  attention_forward_table().get(ck.device(), dt)(q, k, v, p, out, lse);
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const AttentionParams& p, Tensor* dq, Tensor* dk, Tensor* dv) {
  Checker ck("attention_backward", {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", &lse}, {"dout", &dout},
                                    {"dq", dq}, {"dk", dk}, {"dv", dv}});
  ck.require(q.defined() && k.defined() && v.defined() && out.defined() && lse.defined() && dout.defined(),
             "q, k, v, out, lse and dout are required");
  DType dt = ck.same_float_dtype();
  check_qkv(ck, q, k, v, p);
  Shape os{q.dim(0), q.dim(1), v.dim(2)};
  ck.shape(out, "out", os);
  ck.shape(dout, "dout", os);
  ck.shape(lse, "lse", Shape{q.dim(0), p.heads, q.dim(1)});
  if (dq && dq->defined()) ck.shape(*dq, "dq", q.shape()); else dq = nullptr;
  if (dk && dk->defined()) ck.shape(*dk, "dk", k.shape()); else dk = nullptr;
  if (dv && dv->defined()) ck.shape(*dv, "dv", v.shape()); else dv = nullptr;
  attention_backward_table().get(ck.device(), dt)(q, k, v, out, lse, dout, p, dq, dk, dv);
}

}  // namespace dbt::ops
