// Activation and softmax references in double with libm.
#include <cmath>

#include "ops/activation.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;
double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x * kInvSqrt2)); }
double gelu_grad(double x) { return 0.5 * (1.0 + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x); }

double f(Activation a, double x) {
  switch (a) {
    case Activation::silu: return x * sig(x);
    case Activation::gelu: return gelu(x);
    case Activation::quick_gelu: return x * sig(1.702 * x);
  }
  return 0;
}
double df(Activation a, double x) {
  switch (a) {
    case Activation::silu: return sig(x) * (1.0 + x * (1.0 - sig(x)));
    case Activation::gelu: return gelu_grad(x);
    case Activation::quick_gelu: {
      double s = sig(1.702 * x);
      return s + 1.702 * x * s * (1.0 - s);
    }
  }
  return 0;
}

template <class T> void act_fwd(Activation a, const Tensor& x, Tensor& y) {
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t i = 0; i < x.numel(); i++) Y[i] = T(f(a, double(X[i])));
}
template <class T> void act_bwd(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  const T* X = x.data<T>();
  const T* DY = dy.data<T>();
  T* DX = dx.data<T>();
  for (int64_t i = 0; i < x.numel(); i++) DX[i] = T(double(DY[i]) * df(a, double(X[i])));
}
template <class T> void geglu_fwd(const Tensor& x, Tensor& y) {
  const int64_t F = y.dim(-1), R = y.numel() / F;
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t r = 0; r < R; r++)
    for (int64_t i = 0; i < F; i++) Y[r * F + i] = T(double(X[r * 2 * F + i]) * gelu(double(X[r * 2 * F + F + i])));
}
template <class T> void geglu_bwd(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t F = dy.dim(-1), R = dy.numel() / F;
  const T* X = x.data<T>();
  const T* DY = dy.data<T>();
  T* DX = dx.data<T>();
  for (int64_t r = 0; r < R; r++)
    for (int64_t i = 0; i < F; i++) {
      double h = double(X[r * 2 * F + i]), g = double(X[r * 2 * F + F + i]), d = double(DY[r * F + i]);
      DX[r * 2 * F + i] = T(d * gelu(g));
      DX[r * 2 * F + F + i] = T(d * h * gelu_grad(g));
    }
}
template <class T> void softmax_fwd(const Tensor& x, Tensor& y) {
  const int64_t C = x.dim(-1), R = x.numel() / C;
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t r = 0; r < R; r++) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < C; i++) m = std::fmax(m, double(X[r * C + i]));
    for (int64_t i = 0; i < C; i++) s += std::exp(double(X[r * C + i]) - m);
    for (int64_t i = 0; i < C; i++) Y[r * C + i] = T(std::exp(double(X[r * C + i]) - m) / s);
  }
}
template <class T> void softmax_bwd(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t C = y.dim(-1), R = y.numel() / C;
  const T* Y = y.data<T>();
  const T* DY = dy.data<T>();
  T* DX = dx.data<T>();
  for (int64_t r = 0; r < R; r++) {
    double s = 0;
    for (int64_t i = 0; i < C; i++) s += double(DY[r * C + i]) * double(Y[r * C + i]);
    for (int64_t i = 0; i < C; i++) DX[r * C + i] = T(double(Y[r * C + i]) * (double(DY[r * C + i]) - s));
  }
}

}  // namespace

void activation_forward(Activation a, const Tensor& x, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "activation_forward", act_fwd<T>(a, x, y));
}
void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "activation_backward", act_bwd<T>(a, x, dy, dx));
}
void geglu_forward(const Tensor& x, Tensor& y) { DBT_REF_FLOAT_SWITCH(x.dtype(), "geglu_forward", geglu_fwd<T>(x, y)); }
void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "geglu_backward", geglu_bwd<T>(x, dy, dx));
}
void softmax_forward(const Tensor& x, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "softmax_forward", softmax_fwd<T>(x, y));
}
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "softmax_backward", softmax_bwd<T>(y, dy, dx));
}

}  // namespace dbt::ops::ref
