// Norm references: per group / row in double, the textbook backward formula.
#include <cmath>
#include <vector>

#include "ops/norm.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

template <class T>
void gn_forward_t(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p, Tensor& y,
                  Tensor* mean, Tensor* rstd) {
  const int64_t N = x.dim(0), C = x.dim(1), S = x.numel() / (N * C), G = p.groups, CG = C / G;
  const T* X = x.data<T>();
  const T* Ga = gamma.data<T>();
  const T* Be = beta.data<T>();
  T* Y = y.data<T>();
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++) {
      const int64_t base = (n * C + g * CG) * S, cnt = CG * S;
      double m = 0, v = 0;
      for (int64_t i = 0; i < cnt; i++) m += double(X[base + i]);
      m /= double(cnt);
      for (int64_t i = 0; i < cnt; i++) v += (double(X[base + i]) - m) * (double(X[base + i]) - m);
      v /= double(cnt);
      double rs = 1.0 / std::sqrt(v + double(p.eps));
      for (int64_t i = 0; i < cnt; i++) {
        int64_t c = g * CG + i / S;
        double z = (double(X[base + i]) - m) * rs * double(Ga[c]) + double(Be[c]);
        Y[base + i] = T(p.silu ? z * sigmoid(z) : z);
      }
      if (mean) mean->data<T>()[n * G + g] = T(m);
      if (rstd) rstd->data<T>()[n * G + g] = T(rs);
    }
}

template <class T>
void gn_backward_t(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  const int64_t N = x.dim(0), C = x.dim(1), S = x.numel() / (N * C), G = p.groups, CG = C / G;
  const T* X = x.data<T>();
  const T* Ga = gamma.data<T>();
  const T* Be = beta.data<T>();
  const T* DY = dy.data<T>();
  std::vector<double> dg(size_t(C), 0.0), db(size_t(C), 0.0);
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++) {
      const int64_t base = (n * C + g * CG) * S, cnt = CG * S;
      const double m = double(mean.data<T>()[n * G + g]), rs = double(rstd.data<T>()[n * G + g]);
      std::vector<double> xhat(static_cast<size_t>(cnt)), dxhat(static_cast<size_t>(cnt));
      double s1 = 0, s2 = 0;
      for (int64_t i = 0; i < cnt; i++) {
        int64_t c = g * CG + i / S;
        double xh = (double(X[base + i]) - m) * rs;
        double d = double(DY[base + i]);
        if (p.silu) {
          double z = xh * double(Ga[c]) + double(Be[c]), s = sigmoid(z);
          d *= s * (1.0 + z * (1.0 - s));
        }
        dg[size_t(c)] += d * xh;
        db[size_t(c)] += d;
        xhat[size_t(i)] = xh;
        dxhat[size_t(i)] = d * double(Ga[c]);
        s1 += dxhat[size_t(i)];
        s2 += dxhat[size_t(i)] * xh;
      }
      if (dx) {
        T* DX = dx->data<T>();
        for (int64_t i = 0; i < cnt; i++)
          DX[base + i] = T(rs * (dxhat[size_t(i)] - s1 / double(cnt) - xhat[size_t(i)] * s2 / double(cnt)));
      }
    }
  for (int64_t c = 0; c < C; c++) {
    if (dgamma) dgamma->data<T>()[c] = T(double(dgamma->data<T>()[c]) + dg[size_t(c)]);
    if (dbeta) dbeta->data<T>()[c] = T(double(dbeta->data<T>()[c]) + db[size_t(c)]);
  }
}

template <class T>
void ln_forward_t(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y, Tensor* mean,
                  Tensor* rstd) {
  const int64_t C = x.dim(-1), R = x.numel() / C;
  const T* X = x.data<T>();
  T* Y = y.data<T>();
  for (int64_t r = 0; r < R; r++) {
    const T* xr = X + r * C;
    double m = 0, v = 0;
    for (int64_t i = 0; i < C; i++) m += double(xr[i]);
    m /= double(C);
    for (int64_t i = 0; i < C; i++) v += (double(xr[i]) - m) * (double(xr[i]) - m);
    v /= double(C);
    double rs = 1.0 / std::sqrt(v + double(eps));
    for (int64_t i = 0; i < C; i++)
      Y[r * C + i] = T((double(xr[i]) - m) * rs * double(gamma.data<T>()[i]) + double(beta.data<T>()[i]));
    if (mean) mean->data<T>()[r] = T(m);
    if (rstd) rstd->data<T>()[r] = T(rs);
  }
}

template <class T>
void ln_backward_t(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                   Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  const int64_t C = x.dim(-1), R = x.numel() / C;
  const T* X = x.data<T>();
  const T* Ga = gamma.data<T>();
  const T* DY = dy.data<T>();
  std::vector<double> dg(size_t(C), 0.0), db(size_t(C), 0.0);
  for (int64_t r = 0; r < R; r++) {
    const double m = double(mean.data<T>()[r]), rs = double(rstd.data<T>()[r]);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < C; i++) {
      double xh = (double(X[r * C + i]) - m) * rs, d = double(DY[r * C + i]);
      dg[size_t(i)] += d * xh;
      db[size_t(i)] += d;
      s1 += d * double(Ga[i]);
      s2 += d * double(Ga[i]) * xh;
    }
    if (dx)
      for (int64_t i = 0; i < C; i++) {
        double xh = (double(X[r * C + i]) - m) * rs;
        dx->data<T>()[r * C + i] =
            T(rs * (double(DY[r * C + i]) * double(Ga[i]) - s1 / double(C) - xh * s2 / double(C)));
      }
  }
  for (int64_t i = 0; i < C; i++) {
    if (dgamma) dgamma->data<T>()[i] = T(double(dgamma->data<T>()[i]) + dg[size_t(i)]);
    if (dbeta) dbeta->data<T>()[i] = T(double(dbeta->data<T>()[i]) + db[size_t(i)]);
  }
}

}  // namespace

void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p,
                        Tensor& y, Tensor* mean, Tensor* rstd) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "group_norm_forward", gn_forward_t<T>(x, gamma, beta, p, y, mean, rstd));
}
void group_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma,
                         Tensor* dbeta) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "group_norm_backward",
                       gn_backward_t<T>(x, gamma, beta, mean, rstd, dy, p, dx, dgamma, dbeta));
}
void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                        Tensor* mean, Tensor* rstd) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "layer_norm_forward", ln_forward_t<T>(x, gamma, beta, eps, y, mean, rstd));
}
void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  DBT_REF_FLOAT_SWITCH(x.dtype(), "layer_norm_backward",
                       ln_backward_t<T>(x, gamma, mean, rstd, dy, dx, dgamma, dbeta));
}

}  // namespace dbt::ops::ref
