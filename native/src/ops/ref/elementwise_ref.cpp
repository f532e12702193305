// Element-wise references: one multi-index loop over the broadcast output, double arithmetic.
#include <algorithm>
#include <vector>

#include "ops/elementwise.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

// Calls f(out_index, a_index, b_index) for every output element.
template <class F> void each(const BroadcastIndex& bi, F f) {
  int64_t o = 0;
  for (int64_t i0 = 0; i0 < bi.dims[0]; i0++)
    for (int64_t i1 = 0; i1 < bi.dims[1]; i1++)
      for (int64_t i2 = 0; i2 < bi.dims[2]; i2++)
        for (int64_t i3 = 0; i3 < bi.dims[3]; i3++)
          for (int64_t i4 = 0; i4 < bi.dims[4]; i4++, o++) {
            int64_t ia = i0 * bi.stride_a[0] + i1 * bi.stride_a[1] + i2 * bi.stride_a[2] + i3 * bi.stride_a[3] +
                         i4 * bi.stride_a[4];
            int64_t ib = i0 * bi.stride_b[0] + i1 * bi.stride_b[1] + i2 * bi.stride_b[2] + i3 * bi.stride_b[3] +
                         i4 * bi.stride_b[4];
            f(o, ia, ib);
          }
}

double apply(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
  }
  return 0;
}

template <class T> void fwd(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  BroadcastIndex bi(y.shape(), a.shape(), b.shape());
  const T* A = a.data<T>();
  const T* B = b.data<T>();
  std::vector<double> out(size_t(y.numel()));
  each(bi, [&](int64_t o, int64_t ia, int64_t ib) { out[size_t(o)] = apply(op, double(A[ia]), double(B[ib])); });
  T* Y = y.data<T>();  // written after reading: y may alias a or b
  for (int64_t i = 0; i < y.numel(); i++) Y[i] = T(out[size_t(i)]);
}

template <class T> void bwd(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da, Tensor* db) {
  BroadcastIndex bi(dy.shape(), a.shape(), b.shape());
  const T* A = a.data<T>();
  const T* B = b.data<T>();
  const T* DY = dy.data<T>();
  std::vector<double> ga(size_t(a.numel())), gb(size_t(b.numel()));
  each(bi, [&](int64_t o, int64_t ia, int64_t ib) {
    double d = double(DY[o]);
    ga[size_t(ia)] += op == BinaryOp::mul ? d * double(B[ib]) : d;
    gb[size_t(ib)] += op == BinaryOp::mul ? d * double(A[ia]) : op == BinaryOp::sub ? -d : d;
  });
  if (da)
    for (int64_t i = 0; i < a.numel(); i++) da->data<T>()[i] = T(ga[size_t(i)]);
  if (db)
    for (int64_t i = 0; i < b.numel(); i++) db->data<T>()[i] = T(gb[size_t(i)]);
}

template <class T> void axpby_t(float alpha, const Tensor& x, float beta, Tensor& y) {
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t i = 0; i < x.numel(); i++)
    Y[i] = T(double(alpha) * double(X[i]) + (beta == 0.0f ? 0.0 : double(beta) * double(Y[i])));
}

template <class T> void sum_to_t(const Tensor& x, Tensor& y) {
  BroadcastIndex bi(x.shape(), x.shape(), y.shape());
  const T* X = x.data<T>();
  std::vector<double> acc(size_t(y.numel()));
  each(bi, [&](int64_t o, int64_t, int64_t iy) { acc[size_t(iy)] += double(X[o]); });
  for (int64_t i = 0; i < y.numel(); i++) y.data<T>()[i] = T(acc[size_t(i)]);
}

template <class T> void clamp_t(const Tensor& x, float lo, float hi, Tensor& y) {
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t i = 0; i < x.numel(); i++) Y[i] = T(std::min(double(hi), std::max(double(lo), double(X[i]))));
}

}  // namespace

void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "binary_forward", fwd<T>(op, a, b, y));
}
void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da, Tensor* db) {
  DBT_REF_FLOAT_SWITCH(dy.dtype(), "binary_backward", bwd<T>(op, a, b, dy, da, db));
}
void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "axpby", axpby_t<T>(alpha, x, beta, y));
}
void sum_to(const Tensor& x, Tensor& y) { DBT_REF_FLOAT_SWITCH(y.dtype(), "sum_to", sum_to_t<T>(x, y)); }
void clamp(const Tensor& x, float lo, float hi, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "clamp", clamp_t<T>(x, lo, hi, y));
}

}  // namespace dbt::ops::ref
