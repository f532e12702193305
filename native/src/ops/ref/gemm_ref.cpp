// GEMM family reference: triple loops, double accumulation.
#include "ops/gemm.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

template <class T>
void gemm_t(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p) {
  const int64_t M = c.dim(-2), N = c.dim(-1);
  const int64_t K = p.trans_a ? a.dim(-2) : a.dim(-1);
  const int64_t batch = c.numel() / (M * N);
  const T* A = a.data<T>();
  const T* B = b.data<T>();
  T* C = c.data<T>();
  for (int64_t bi = 0; bi < batch; bi++) {
    const T* Ab = a.ndim() == 2 ? A : A + bi * M * K;
    const T* Bb = b.ndim() == 2 ? B : B + bi * K * N;
    T* Cb = C + bi * M * N;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) {
          double av = p.trans_a ? Ab[k * M + i] : Ab[i * K + k];
          double bv = p.trans_b ? Bb[j * K + k] : Bb[k * N + j];
          s += av * bv;
        }
        double out = double(p.alpha) * s;
        if (p.beta != 0.0f) out += double(p.beta) * double(Cb[i * N + j]);
        Cb[i * N + j] = T(out);
      }
  }
}

template <class T>
void linear_forward_t(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const int64_t in = w.dim(1), out = w.dim(0), rows = x.numel() / in;
  const T* X = x.data<T>();
  const T* W = w.data<T>();
  const T* Bv = cptr<T>(b);
  T* Y = y.data<T>();
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < out; o++) {
      double s = Bv ? double(Bv[o]) : 0.0;
      for (int64_t i = 0; i < in; i++) s += double(X[r * in + i]) * double(W[o * in + i]);
      Y[r * out + o] = T(s);
    }
}

template <class T>
void linear_backward_t(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  const int64_t in = w.dim(1), out = w.dim(0), rows = x.numel() / in;
  const T* X = x.data<T>();
  const T* W = w.data<T>();
  const T* DY = dy.data<T>();
  if (dx) {
    T* DX = dx->data<T>();
    for (int64_t r = 0; r < rows; r++)
      for (int64_t i = 0; i < in; i++) {
        double s = 0;
        for (int64_t o = 0; o < out; o++) s += double(DY[r * out + o]) * double(W[o * in + i]);
        DX[r * in + i] = T(s);
      }
  }
  if (dw) {
    T* DW = dw->data<T>();
    for (int64_t o = 0; o < out; o++)
      for (int64_t i = 0; i < in; i++) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += double(DY[r * out + o]) * double(X[r * in + i]);
        DW[o * in + i] = T(double(DW[o * in + i]) + s);
      }
  }
  if (db) {
    T* DB = db->data<T>();
    for (int64_t o = 0; o < out; o++) {
      double s = 0;
      for (int64_t r = 0; r < rows; r++) s += double(DY[r * out + o]);
      DB[o] = T(double(DB[o]) + s);
    }
  }
}

}  // namespace

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p) {
  DBT_REF_FLOAT_SWITCH(c.dtype(), "gemm", gemm_t<T>(a, b, c, p));
}
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "linear_forward", linear_forward_t<T>(x, w, b, y));
}
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  DBT_REF_FLOAT_SWITCH(dy.dtype(), "linear_backward", linear_backward_t<T>(x, w, dy, dx, dw, db));
}

}  // namespace dbt::ops::ref
