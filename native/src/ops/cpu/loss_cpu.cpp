// Reductions and loss, fast CPU version: sums over fixed blocks of kBlock elements in double, blocks
// combined in order — the result does not depend on the thread count.
#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "ops/loss.h"

namespace dbt::ops::cpu {
namespace {

constexpr int64_t kBlock = 1 << 14;

// sum over [0, n) of f(i), deterministic.
template <class F> double block_sum(int64_t n, F f) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(std::max<int64_t>(blocks, 1)), 0.0);
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      double lanes[8] = {};
      const int64_t e = std::min(n, (b + 1) * kBlock);
      int64_t i = b * kBlock;
      for (; i + 8 <= e; i += 8)
        for (int j = 0; j < 8; j++) lanes[j] += f(i + j);
      for (; i < e; i++) lanes[0] += f(i);
      double s = 0;
      for (double v : lanes) s += v;
      part[size_t(b)] = s;
    }
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

}  // namespace

void reduce_all(const Tensor& x, bool mean, Tensor& y) {
  const float* X = x.data<float>();
  double s = block_sum(x.numel(), [&](int64_t i) { return double(X[i]); });
  y.data<float>()[0] = float(mean ? s / double(x.numel()) : s);
}

void reduce_all_backward(const Tensor& dy, bool mean, Tensor& dx) {
  const float v = float(double(dy.data<float>()[0]) / (mean ? double(dx.numel()) : 1.0));
  float* DX = dx.data<float>();
  parallel_for(dx.numel(), kBlock, [&](int64_t b, int64_t e) { std::fill(DX + b, DX + e, v); });
}

void mse_loss_forward(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,
                      Tensor* per_sample) {
  const int64_t N = pred.dim(0), M = pred.numel() / N;
  const float* P = pred.data<float>();
  const float* Tg = target.data<float>();
  double total = 0;
  for (int64_t n = 0; n < N; n++) {
    const float* p = P + n * M;
    const float* t = Tg + n * M;
    double s = block_sum(M, [&](int64_t i) {
                 double d = double(p[i]) - double(t[i]);
                 return d * d;
               }) /
               double(M);
    if (per_sample) per_sample->data<float>()[n] = float(s);
    total += (weights ? double(weights->data<float>()[n]) : 1.0 / double(N)) * s;
  }
  loss.data<float>()[0] = float(total);
}

void mse_loss_backward(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss,
                       Tensor& dpred) {
  const int64_t N = pred.dim(0), M = pred.numel() / N;
  const float* P = pred.data<float>();
  const float* Tg = target.data<float>();
  float* D = dpred.data<float>();
  const double g = double(dloss.data<float>()[0]);
  for (int64_t n = 0; n < N; n++) {
    const double w = weights ? double(weights->data<float>()[n]) : 1.0 / double(N);
    const float k = float(g * w * 2.0 / double(M));
    parallel_for(M, kBlock, [&](int64_t b, int64_t e) {
      for (int64_t i = n * M + b; i < n * M + e; i++) D[i] = k * (P[i] - Tg[i]);
    });
  }
}

}  // namespace dbt::ops::cpu
