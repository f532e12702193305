// conv2d reference: direct seven-deep loops, double accumulation.
#include <vector>

#include "ops/conv2d.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

struct Dims {
  int64_t N, C, H, W, O, KH, KW, Ho, Wo;
  Dims(const Tensor& x, const Tensor& w, const Tensor& y)
      : N(x.dim(0)), C(x.dim(1)), H(x.dim(2)), W(x.dim(3)), O(w.dim(0)), KH(w.dim(2)), KW(w.dim(3)),
        Ho(y.dim(2)), Wo(y.dim(3)) {}
};

template <class T>
void forward_t(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y) {
  Dims d(x, w, y);
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  const T* B = cptr<T>(b);
  T* Y = y.data<T>();
  for (int64_t n = 0; n < d.N; n++)
    for (int64_t o = 0; o < d.O; o++)
      for (int64_t oy = 0; oy < d.Ho; oy++)
        for (int64_t ox = 0; ox < d.Wo; ox++) {
          double s = B ? double(B[o]) : 0.0;
          for (int64_t c = 0; c < d.C; c++)
            for (int64_t ky = 0; ky < d.KH; ky++)
              for (int64_t kx = 0; kx < d.KW; kx++) {
                int64_t iy = oy * p.stride - p.pad_top + ky, ix = ox * p.stride - p.pad_left + kx;
                if (iy < 0 || iy >= d.H || ix < 0 || ix >= d.W) continue;
                s += double(X[((n * d.C + c) * d.H + iy) * d.W + ix]) *
                     double(Wt[((o * d.C + c) * d.KH + ky) * d.KW + kx]);
              }
          Y[((n * d.O + o) * d.Ho + oy) * d.Wo + ox] = T(s);
        }
}

template <class T>
void backward_t(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx, Tensor* dw,
                Tensor* db) {
  Dims d(x, w, dy);
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  const T* DY = dy.data<T>();
  std::vector<double> gx(dx ? size_t(x.numel()) : 0), gw(dw ? size_t(w.numel()) : 0), gb(db ? size_t(d.O) : 0);
  for (int64_t n = 0; n < d.N; n++)
    for (int64_t o = 0; o < d.O; o++)
      for (int64_t oy = 0; oy < d.Ho; oy++)
        for (int64_t ox = 0; ox < d.Wo; ox++) {
          double g = double(DY[((n * d.O + o) * d.Ho + oy) * d.Wo + ox]);
          if (db) gb[size_t(o)] += g;
          for (int64_t c = 0; c < d.C; c++)
            for (int64_t ky = 0; ky < d.KH; ky++)
              for (int64_t kx = 0; kx < d.KW; kx++) {
                int64_t iy = oy * p.stride - p.pad_top + ky, ix = ox * p.stride - p.pad_left + kx;
                if (iy < 0 || iy >= d.H || ix < 0 || ix >= d.W) continue;
                int64_t xi = ((n * d.C + c) * d.H + iy) * d.W + ix, wi = ((o * d.C + c) * d.KH + ky) * d.KW + kx;
                if (dx) gx[size_t(xi)] += g * double(Wt[wi]);
                if (dw) gw[size_t(wi)] += g * double(X[xi]);
              }
        }
  if (dx) {
    T* DX = dx->data<T>();
    for (int64_t i = 0; i < x.numel(); i++) DX[i] = T(gx[size_t(i)]);
  }
  if (dw) {
    T* DW = dw->data<T>();
    for (int64_t i = 0; i < w.numel(); i++) DW[i] = T(double(DW[i]) + gw[size_t(i)]);
  }
  if (db) {
    T* DB = db->data<T>();
    for (int64_t o = 0; o < d.O; o++) DB[o] = T(double(DB[o]) + gb[size_t(o)]);
  }
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "conv2d_forward", forward_t<T>(x, w, b, p, y));
}
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db) {
  DBT_REF_FLOAT_SWITCH(dy.dtype(), "conv2d_backward", backward_t<T>(x, w, dy, p, dx, dw, db));
}

}  // namespace dbt::ops::ref
