#include "ops/elementwise.h"

#include "ops/check.h"

namespace dbt::ops {

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
  }
  return "?";
}

#define DBT_TABLE(NAME, FN)                              \
  OpTable<FN>& NAME##_table() {                          \
    static OpTable<FN> t(#NAME, &ref::NAME, &cpu::NAME); \
    return t;                                            \
  }
DBT_TABLE(binary_forward, BinaryForwardFn)
DBT_TABLE(binary_backward, BinaryBackwardFn)
DBT_TABLE(axpby, AxpbyFn)
DBT_TABLE(sum_to, SumToFn)
DBT_TABLE(clamp, ClampFn)
#undef DBT_TABLE

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  int n = std::max(a.ndim(), b.ndim());
  std::vector<int64_t> d(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - a.ndim() ? 1 : a[i - (n - a.ndim())];
    int64_t db = i < n - b.ndim() ? 1 : b[i - (n - b.ndim())];
    if (da != db && da != 1 && db != 1)
      throw OpError(op, "shapes " + a.str() + " and " + b.str() + " do not broadcast", "");
    d[size_t(i)] = da == 1 ? db : da;
  }
  return Shape(d);
}

BroadcastIndex::BroadcastIndex(const Shape& out, const Shape& a, const Shape& b) {
  const int off = kMaxDims - out.ndim();
  int64_t sa = 1, sb = 1;
  for (int i = kMaxDims - 1; i >= 0; i--) {
    int oi = i - off;
    dims[i] = oi >= 0 ? out[oi] : 1;
    int ai = oi - (out.ndim() - a.ndim()), bi = oi - (out.ndim() - b.ndim());
    int64_t da = ai >= 0 && oi >= 0 ? a[ai] : 1, db = bi >= 0 && oi >= 0 ? b[bi] : 1;
    stride_a[i] = da == 1 ? 0 : sa;
    stride_b[i] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
  }
}

void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  std::string name = std::string(binary_op_name(op)) + "_forward";
  Checker ck(name.c_str(), {{"a", &a}, {"b", &b}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.shape(y, "y", broadcast_shape(name.c_str(), a.shape(), b.shape()));
  binary_forward_table().get(ck.device(), dt)(op, a, b, y);
}

void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da, Tensor* db) {
  std::string name = std::string(binary_op_name(op)) + "_backward";
  Checker ck(name.c_str(), {{"a", &a}, {"b", &b}, {"dy", &dy}, {"da", da}, {"db", db}});
  ck.require(a.defined() && b.defined() && dy.defined(), "a, b and dy are required");
  DType dt = ck.same_float_dtype();
  ck.shape(dy, "dy", broadcast_shape(name.c_str(), a.shape(), b.shape()));
  if (da && da->defined()) ck.shape(*da, "da", a.shape()); else da = nullptr;
  if (db && db->defined()) ck.shape(*db, "db", b.shape()); else db = nullptr;
  binary_backward_table().get(ck.device(), dt)(op, a, b, dy, da, db);
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  Checker ck("axpby", {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.same_shape(x, "x", y, "y");
  axpby_table().get(ck.device(), dt)(alpha, x, beta, y);
}

void sum_to(const Tensor& x, Tensor& y) {
  Checker ck("sum_to", {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.require(y.ndim() <= x.ndim(), "y has more dims than x");
  bool ok = true;
  for (int i = 0; i < y.ndim(); i++) {
    int64_t yd = y.dim(y.ndim() - 1 - i), xd = x.dim(x.ndim() - 1 - i);
    ok = ok && (yd == xd || yd == 1);
  }
  ck.require(ok, "y's shape must broadcast to x's shape");
  sum_to_table().get(ck.device(), dt)(x, y);
}

void clamp(const Tensor& x, float lo, float hi, Tensor& y) {
  Checker ck("clamp", {{"x", &x}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.same_shape(x, "x", y, "y");
  ck.require(lo <= hi, "lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
  clamp_table().get(ck.device(), dt)(x, lo, hi, y);
}

}  // namespace dbt::ops
