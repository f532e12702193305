#include "ops/embedding.h"

#include "ops/check.h"

namespace dbt::ops {

#define DBT_TABLE(NAME, FN)                              \
  OpTable<FN>& NAME##_table() {                          \
    static OpTable<FN> t(#NAME, &ref::NAME, &cpu::NAME); \
    return t;                                            \
  }
DBT_TABLE(embedding_forward, EmbeddingForwardFn)
DBT_TABLE(embedding_backward, EmbeddingBackwardFn)
DBT_TABLE(timestep_embedding, TimestepEmbeddingFn)
#undef DBT_TABLE

namespace {
Shape embedded_shape(const Checker& ck, const Tensor& ids, int64_t D) {
  ck.require(ids.ndim() < kMaxDims, "ids may have at most 4 dims");
  std::vector<int64_t> s = ids.shape().vec();
  s.push_back(D);
  return Shape(s);
}
}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& y) {
  Checker ck("embedding_forward", {{"ids", &ids}, {"table", &table}, {"y", &y}});
  ck.defined();
  ck.dtype(ids, "ids", DType::i32);
  DType dt = ck.same_float_dtype();
  ck.ndim(table, "table", 2, 2);
  ck.shape(y, "y", embedded_shape(ck, ids, table.dim(1)));
  embedding_forward_table().get(ck.device(), dt)(ids, table, y);
}

void embedding_backward(const Tensor& ids, const Tensor& dy, Tensor& dtable) {
  Checker ck("embedding_backward", {{"ids", &ids}, {"dy", &dy}, {"dtable", &dtable}});
  ck.defined();
  ck.dtype(ids, "ids", DType::i32);
  DType dt = ck.same_float_dtype();
  ck.ndim(dtable, "dtable", 2, 2);
  ck.shape(dy, "dy", embedded_shape(ck, ids, dtable.dim(1)));
  embedding_backward_table().get(ck.device(), dt)(ids, dy, dtable);
}

void timestep_embedding(const Tensor& t, int dim, float max_period, Tensor& y) {
  Checker ck("timestep_embedding", {{"t", &t}, {"y", &y}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.ndim(t, "t", 1, 1);
  ck.require(dim >= 2 && max_period > 0, "dim must be >= 2 and max_period positive");
  ck.shape(y, "y", Shape{t.dim(0), dim});
  timestep_embedding_table().get(ck.device(), dt)(t, dim, max_period, y);
}

}  // namespace dbt::ops
