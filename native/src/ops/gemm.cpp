// GEMM family front: validation and dispatch.
#include "ops/gemm.h"

#include "ops/check.h"

namespace dbt::ops {

OpTable<GemmFn>& gemm_table() {
  static OpTable<GemmFn> t("gemm", &ref::gemm, &cpu::gemm);
  return t;
}
OpTable<LinearForwardFn>& linear_forward_table() {
  static OpTable<LinearForwardFn> t("linear_forward", &ref::linear_forward, &cpu::linear_forward);
  return t;
}
OpTable<LinearBackwardFn>& linear_backward_table() {
  static OpTable<LinearBackwardFn> t("linear_backward", &ref::linear_backward, &cpu::linear_backward);
  return t;
}

namespace {
bool same_batch(const Tensor& t, const Tensor& c) {
  if (t.ndim() == 2) return true;
  if (t.ndim() != c.ndim()) return false;
  for (int i = 0; i < c.ndim() - 2; i++)
    if (t.shape()[i] != c.shape()[i]) return false;
  return true;
}
}  // namespace

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p) {
  Checker ck("gemm", {{"a", &a}, {"b", &b}, {"c", &c}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.ndim(a, "a", 2, kMaxDims);
  ck.ndim(b, "b", 2, kMaxDims);
  ck.ndim(c, "c", 2, kMaxDims);
  int64_t M = c.dim(-2), N = c.dim(-1);
  int64_t am = p.trans_a ? a.dim(-1) : a.dim(-2), ak = p.trans_a ? a.dim(-2) : a.dim(-1);
  int64_t bk = p.trans_b ? b.dim(-1) : b.dim(-2), bn = p.trans_b ? b.dim(-2) : b.dim(-1);
  ck.require(am == M, "rows of op(a) must equal rows of c");
  ck.require(bn == N, "columns of op(b) must equal columns of c");
  ck.require(ak == bk, "inner dimensions of op(a) and op(b) differ");
  ck.require(same_batch(a, c) && same_batch(b, c), "a and b need the batch dims of c, or 2 dims");
  gemm_table().get(ck.device(), dt)(a, b, c, p);
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  Checker ck("linear_forward", {{"x", &x}, {"w", &w}, {"b", b}, {"y", &y}});
  ck.require(x.defined() && w.defined() && y.defined(), "x, w and y are required");
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.ndim(w, "w", 2, 2);
  ck.require(x.dim(-1) == w.dim(1), "w must be [out, in] with in = x's last dim");
  Shape ys = x.shape();
  ys[ys.ndim() - 1] = w.dim(0);
  ck.shape(y, "y", ys);
  if (b && b->defined()) ck.shape(*b, "b", Shape{w.dim(0)});
  linear_forward_table().get(ck.device(), dt)(x, w, b && b->defined() ? b : nullptr, y);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  Checker ck("linear_backward", {{"x", &x}, {"w", &w}, {"dy", &dy}, {"dx", dx}, {"dw", dw}, {"db", db}});
  ck.require(x.defined() && w.defined() && dy.defined(), "x, w and dy are required");
  DType dt = ck.same_float_dtype();
  ck.ndim(x, "x", 1, kMaxDims);
  ck.ndim(w, "w", 2, 2);
  ck.require(x.dim(-1) == w.dim(1), "w must be [out, in] with in = x's last dim");
  Shape ys = x.shape();
  ys[ys.ndim() - 1] = w.dim(0);
  ck.shape(dy, "dy", ys);
  if (dx && dx->defined()) ck.shape(*dx, "dx", x.shape()); else dx = nullptr;
  if (dw && dw->defined()) ck.shape(*dw, "dw", w.shape()); else dw = nullptr;
  if (db && db->defined()) ck.shape(*db, "db", Shape{w.dim(0)}); else db = nullptr;
  linear_backward_table().get(ck.device(), dt)(x, w, dy, dx, dw, db);
}

}  // namespace dbt::ops
