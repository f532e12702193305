// Token / position embeddings and the sinusoidal timestep embedding.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

// y[..., D] = table[ids[...], :]; ids i32, table [V, D]. An id outside [0, V) is an OpError.
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& y);
// dtable[ids[i], :] += dy[i, :] (scatter-add, ids in order: repeated ids accumulate deterministically).
void embedding_backward(const Tensor& ids, const Tensor& dy, Tensor& dtable);

// y [N, dim] = cat(cos(t * f), sin(t * f)) with f_i = exp(-ln(max_period) * i / half), half = dim / 2,
// cos first (LDM's timestep_embedding); odd dim -> last column 0. The arguments are formed in f32 exactly
// like the LDM/diffusers code so results match PyTorch. t holds timesteps (data, no gradient).
void timestep_embedding(const Tensor& t, int dim, float max_period, Tensor& y);

using EmbeddingForwardFn = void (*)(const Tensor& ids, const Tensor& table, Tensor& y);
using EmbeddingBackwardFn = void (*)(const Tensor& ids, const Tensor& dy, Tensor& dtable);
using TimestepEmbeddingFn = void (*)(const Tensor& t, int dim, float max_period, Tensor& y);
OpTable<EmbeddingForwardFn>& embedding_forward_table();
OpTable<EmbeddingBackwardFn>& embedding_backward_table();
OpTable<TimestepEmbeddingFn>& timestep_embedding_table();

#define DBT_EMBEDDING_DECLS                                                   \
  void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& y);  \
  void embedding_backward(const Tensor& ids, const Tensor& dy, Tensor& dtable); \
  void timestep_embedding(const Tensor& t, int dim, float max_period, Tensor& y);
namespace ref {
DBT_EMBEDDING_DECLS
}
namespace cpu {
DBT_EMBEDDING_DECLS
}
#undef DBT_EMBEDDING_DECLS

}  // namespace dbt::ops
