// Reduction and loss references in double.
#include <vector>

#include "ops/loss.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

template <class T> void reduce_t(const Tensor& x, bool mean, Tensor& y) {
  double s = 0;
  for (int64_t i = 0; i < x.numel(); i++) s += double(x.data<T>()[i]);
  y.data<T>()[0] = T(mean ? s / double(x.numel()) : s);
}
template <class T> void reduce_bwd_t(const Tensor& dy, bool mean, Tensor& dx) {
  double v = double(dy.data<T>()[0]) / (mean ? double(dx.numel()) : 1.0);
  for (int64_t i = 0; i < dx.numel(); i++) dx.data<T>()[i] = T(v);
}
template <class T>
void mse_t(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss, Tensor* per_sample) {
  const int64_t N = pred.dim(0), M = pred.numel() / N;
  double total = 0;
  for (int64_t n = 0; n < N; n++) {
    double s = 0;
    for (int64_t i = 0; i < M; i++) {
      double d = double(pred.data<T>()[n * M + i]) - double(target.data<T>()[n * M + i]);
      s += d * d;
    }
    s /= double(M);
    if (per_sample) per_sample->data<T>()[n] = T(s);
    total += (weights ? double(weights->data<T>()[n]) : 1.0 / double(N)) * s;
  }
  loss.data<T>()[0] = T(total);
}
template <class T>
void mse_bwd_t(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss, Tensor& dpred) {
  const int64_t N = pred.dim(0), M = pred.numel() / N;
  const double g = double(dloss.data<T>()[0]);
  for (int64_t n = 0; n < N; n++) {
    double w = weights ? double(weights->data<T>()[n]) : 1.0 / double(N);
    for (int64_t i = 0; i < M; i++) {
      double d = double(pred.data<T>()[n * M + i]) - double(target.data<T>()[n * M + i]);
      dpred.data<T>()[n * M + i] = T(g * w * 2.0 * d / double(M));
    }
  }
}

}  // namespace

void reduce_all(const Tensor& x, bool mean, Tensor& y) { DBT_REF_FLOAT_SWITCH(x.dtype(), "reduce_all", reduce_t<T>(x, mean, y)); }
void reduce_all_backward(const Tensor& dy, bool mean, Tensor& dx) {
  DBT_REF_FLOAT_SWITCH(dx.dtype(), "reduce_all_backward", reduce_bwd_t<T>(dy, mean, dx));
}
void mse_loss_forward(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,
                      Tensor* per_sample) {
  DBT_REF_FLOAT_SWITCH(pred.dtype(), "mse_loss_forward", mse_t<T>(pred, target, weights, loss, per_sample));
}
void mse_loss_backward(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss,
                       Tensor& dpred) {
  DBT_REF_FLOAT_SWITCH(pred.dtype(), "mse_loss_backward", mse_bwd_t<T>(pred, target, weights, dloss, dpred));
}

}  // namespace dbt::ops::ref
