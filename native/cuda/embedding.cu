// Token embedding lookup, its scatter-add gradient, and the sinusoidal timestep embedding.
//
// Token ids are validated on the device; a bad id is reported as the OpError the CPU raises, which costs one
// device->host wait per call (once per step for the text encoder: negligible, and an out-of-range id would
// otherwise read or corrupt memory silently).
// The gradient is deterministic without atomics: one thread owns one column d of the table and adds the
// positions' rows in position order, so repeated ids accumulate in the same order as the CPU reference.
#include <cmath>
#include <string>
#include <vector>

#include "common.cuh"
#include "ops/embedding.h"

namespace dbt::cuda {
namespace {

// bad[0] = smallest position whose id is outside [0, V) (stays n when all are valid; atomicMin on an
// integer: the result does not depend on the order).
__global__ void check_ids_kernel(const int32_t* __restrict__ ids, int64_t n, int64_t V, unsigned long long* bad) {
  DBT_GRID_STRIDE(i, n) {
    if (ids[i] < 0 || int64_t(ids[i]) >= V) atomicMin(bad, (unsigned long long)i);
  }
}

void check_ids(const char* op, const Tensor& ids, int64_t V) {
  const int64_t n = ids.numel();
  if (n == 0) return;
  cudaStream_t st = stream();
  Tensor bad = Tensor::empty(Shape{1}, DType::f64, Device::cuda);  // 8 bytes for the position
  unsigned long long init = (unsigned long long)n, got = 0;
  check(cudaMemcpyAsync(bad.raw(), &init, sizeof init, cudaMemcpyHostToDevice, st), op);
  check_ids_kernel<<<grid_for(n), kThreads, 0, st>>>(dptr<int32_t>(ids), n, V,
                                                      static_cast<unsigned long long*>(bad.raw()));
  check_launch(op, {{"ids", &ids}});
  check(cudaMemcpyAsync(&got, bad.raw(), sizeof got, cudaMemcpyDeviceToHost, st), op);
  check(cudaStreamSynchronize(st), op);
  if (got < (unsigned long long)n) {
    int32_t id = 0;
    check(cudaMemcpyAsync(&id, dptr<int32_t>(ids) + got, sizeof id, cudaMemcpyDeviceToHost, st), op);
    check(cudaStreamSynchronize(st), op);
    throw OpError(op, "token id " + std::to_string(id) + " at position " + std::to_string(got) +
                          " is outside the table's " + std::to_string(V) + " rows", "");
  }
}

template <class T>
__global__ void embedding_forward_kernel(const int32_t* __restrict__ ids, const T* __restrict__ table,
                                         T* __restrict__ y, int64_t D, int64_t n) {
  DBT_GRID_STRIDE(i, n) y[i] = table[int64_t(ids[i / D]) * D + i % D];
}

// Thread per column d: for each position p in order, dtable[ids[p], d] += dy[p, d].
template <class T>
__global__ void embedding_backward_kernel(const int32_t* __restrict__ ids, const T* __restrict__ dy,
                                          T* __restrict__ dtable, int64_t D, int64_t positions) {
  DBT_GRID_STRIDE(d, D) {
    for (int64_t p = 0; p < positions; p++) {
      T* t = dtable + int64_t(ids[p]) * D + d;
      *t = from_float<T>(to_float(*t) + to_float(dy[p * D + d]));
    }
  }
}

// y [N, dim]: cos(t f_i) in column i, sin in half + i, 0 in the last column of an odd dim. The frequencies
// come from the host (computed exactly as the CPU reference does, in f32); the argument t * f_i is an f32
// product (as PyTorch forms it); cos/sin of it in double, rounded once.
template <class T>
__global__ void timestep_embedding_kernel(const T* __restrict__ t, const float* __restrict__ freq, int64_t N,
                                          int64_t dim, T* __restrict__ y) {
  const int64_t half = dim / 2;
  DBT_GRID_STRIDE(e, N * dim) {
    const int64_t n = e / dim, c = e % dim;
    float v = 0.0f;
    if (c < 2 * half) {
      const int64_t i = c < half ? c : c - half;
      const double arg = double(__fmul_rn(to_float(t[n]), freq[i]));
      v = float(c < half ? cos(arg) : sin(arg));
    }
    y[e] = from_float<T>(v);
  }
}

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& y) {
  check_ids("embedding_forward", ids, table.dim(0));
  const int64_t n = y.numel(), D = table.dim(1);
  if (n == 0) return;
  DBT_CUDA_FLOAT_SWITCH(table.dtype(), "embedding_forward", {
    embedding_forward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<int32_t>(ids), dptr<T>(table),
                                                                        dptr<T>(y), D, n);
  });
  check_launch("embedding_forward", {{"ids", &ids}, {"table", &table}, {"y", &y}});
}

void embedding_backward(const Tensor& ids, const Tensor& dy, Tensor& dtable) {
  check_ids("embedding_backward", ids, dtable.dim(0));
  const int64_t D = dtable.dim(1), positions = ids.numel();
  if (D == 0 || positions == 0) return;
  DBT_CUDA_FLOAT_SWITCH(dtable.dtype(), "embedding_backward", {
    embedding_backward_kernel<T><<<grid_for(D, 128), 128, 0, stream()>>>(dptr<int32_t>(ids), dptr<T>(dy),
                                                                         dptr<T>(dtable), D, positions);
  });
  check_launch("embedding_backward", {{"ids", &ids}, {"dy", &dy}, {"dtable", &dtable}});
}

void timestep_embedding(const Tensor& t, int dim, float max_period, Tensor& y) {
  const int64_t N = t.dim(0), half = dim / 2;
  if (N == 0) return;
  std::vector<float> f(size_t(std::max<int64_t>(half, 1)));
  for (int64_t i = 0; i < half; i++)  // the CPU reference's f32 expression
    f[size_t(i)] = std::exp(float(-std::log(double(max_period))) * float(i) / float(half));
  Tensor freq = Tensor::empty(Shape{int64_t(f.size())}, DType::f32, Device::cuda);
  // From pageable memory the copy returns once `f` is staged: it may go out of scope after.
  check(cudaMemcpyAsync(freq.raw(), f.data(), f.size() * sizeof(float), cudaMemcpyHostToDevice, stream()),
        "timestep_embedding");
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "timestep_embedding", {
    timestep_embedding_kernel<T><<<grid_for(N * dim), kThreads, 0, stream()>>>(dptr<T>(t), dptr<float>(freq), N, dim,
                                                                               dptr<T>(y));
  });
  check_launch("timestep_embedding", {{"t", &t}, {"y", &y}});
}

}  // namespace

void register_embedding() {
  ops::embedding_forward_table().set(Device::cuda, &embedding_forward);
  ops::embedding_backward_table().set(Device::cuda, &embedding_backward);
  ops::timestep_embedding_table().set(Device::cuda, &timestep_embedding);
}

}  // namespace dbt::cuda
