// Embedding references.
#include <cmath>
#include <string>
#include <type_traits>

#include "ops/embedding.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {

void check_ids(const char* op, const Tensor& ids, int64_t V) {
  const int32_t* I = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); i++)
    if (I[i] < 0 || I[i] >= V)
      throw OpError(op, "token id " + std::to_string(I[i]) + " at position " + std::to_string(i) +
                            " is outside the table's " + std::to_string(V) + " rows", "");
}

namespace {
template <class T> void fwd(const Tensor& ids, const Tensor& table, Tensor& y) {
  const int64_t D = table.dim(1);
  const int32_t* I = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); i++)
    for (int64_t d = 0; d < D; d++) y.data<T>()[i * D + d] = table.data<T>()[int64_t(I[i]) * D + d];
}
template <class T> void bwd(const Tensor& ids, const Tensor& dy, Tensor& dtable) {
  const int64_t D = dtable.dim(1);
  const int32_t* I = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); i++)
    for (int64_t d = 0; d < D; d++) dtable.data<T>()[int64_t(I[i]) * D + d] += dy.data<T>()[i * D + d];
}
template <class T> void temb(const Tensor& t, int dim, float max_period, Tensor& y) {
  const int64_t N = t.dim(0), half = dim / 2;
  T* Y = y.data<T>();
  for (int64_t n = 0; n < N; n++) {
    for (int64_t i = 0; i < half; i++) {
      double arg;
      if (std::is_same<T, float>::value) {  // f32 arguments, as torch forms them
        float f = std::exp(float(-std::log(double(max_period))) * float(i) / float(half));
        arg = double(float(t.data<T>()[n]) * f);
      } else {
        arg = double(t.data<T>()[n]) * std::exp(-std::log(double(max_period)) * double(i) / double(half));
      }
      Y[n * dim + i] = T(std::cos(arg));
      Y[n * dim + half + i] = T(std::sin(arg));
    }
    if (dim % 2) Y[n * dim + dim - 1] = T(0);
  }
}
}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& y) {
  check_ids("embedding_forward", ids, table.dim(0));
  DBT_REF_FLOAT_SWITCH(table.dtype(), "embedding_forward", fwd<T>(ids, table, y));
}
void embedding_backward(const Tensor& ids, const Tensor& dy, Tensor& dtable) {
  check_ids("embedding_backward", ids, dtable.dim(0));
  DBT_REF_FLOAT_SWITCH(dtable.dtype(), "embedding_backward", bwd<T>(ids, dy, dtable));
}
void timestep_embedding(const Tensor& t, int dim, float max_period, Tensor& y) {
  DBT_REF_FLOAT_SWITCH(y.dtype(), "timestep_embedding", temb<T>(t, dim, max_period, y));
}

}  // namespace dbt::ops::ref
