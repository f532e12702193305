// Embeddings, fast CPU version: row copies; the scatter-add splits the table's columns over threads
// and walks the ids in order, so repeated ids add up in a fixed order.
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "ops/embedding.h"

namespace dbt::ops::ref {
void check_ids(const char* op, const Tensor& ids, int64_t V);
}

namespace dbt::ops::cpu {

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& y) {
  ref::check_ids("embedding_forward", ids, table.dim(0));
  const int64_t D = table.dim(1);
  const int32_t* I = ids.data<int32_t>();
  const float* Tb = table.data<float>();
  float* Y = y.data<float>();
  parallel_for(ids.numel(), 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) std::memcpy(Y + i * D, Tb + int64_t(I[i]) * D, sizeof(float) * size_t(D));
  });
}

void embedding_backward(const Tensor& ids, const Tensor& dy, Tensor& dtable) {
  ref::check_ids("embedding_backward", ids, dtable.dim(0));
  const int64_t D = dtable.dim(1), n = ids.numel();
  const int32_t* I = ids.data<int32_t>();
  const float* DY = dy.data<float>();
  float* DT = dtable.data<float>();
  parallel_for(D, 64, [&](int64_t d0, int64_t d1) {
    for (int64_t i = 0; i < n; i++) {
      float* row = DT + int64_t(I[i]) * D;
      const float* src = DY + i * D;
      for (int64_t d = d0; d < d1; d++) row[d] += src[d];
    }
  });
}

void timestep_embedding(const Tensor& t, int dim, float max_period, Tensor& y) {
  const int64_t N = t.dim(0), half = dim / 2;
  const float* Tt = t.data<float>();
  float* Y = y.data<float>();
  const float neg_log = float(-std::log(double(max_period)));
  for (int64_t n = 0; n < N; n++) {
    for (int64_t i = 0; i < half; i++) {
      const float f = std::exp(neg_log * float(i) / float(half));
      const float arg = Tt[n] * f;
      Y[n * dim + i] = float(std::cos(double(arg)));
      Y[n * dim + half + i] = float(std::sin(double(arg)));
    }
    if (dim % 2) Y[n * dim + dim - 1] = 0.0f;
  }
}

}  // namespace dbt::ops::cpu
