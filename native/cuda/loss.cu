// Sum / mean of a tensor and the per-sample weighted MSE loss, forward and backward. Sums accumulate in f64
// over fixed chunks (one block each, a fixed tree inside), and the chunks are added in order by one block:
// the result depends only on the shapes (deterministic) and is accurate for long sums. Scalars (loss, dloss)
// stay on the device: no host round trip.
#include "common.cuh"
#include "ops/loss.h"
#include "reduce.cuh"

namespace dbt::cuda {
namespace {

constexpr int64_t kChunk = 16384;  // elements per partial sum
constexpr int kReduceThreads = 256;

// partial[row * chunks + c] = sum over chunk c of row `row` (M elements per row) of x, or of (x - t)^2 when t.
template <class T>
__global__ void partial_sums_kernel(const T* __restrict__ x, const T* __restrict__ t, int64_t M, int64_t chunks,
                                    double* __restrict__ partial) {
  __shared__ double scratch[32];
  const int64_t c = blockIdx.x, row = blockIdx.y;
  const int64_t i0 = c * kChunk, i1 = min(M, i0 + kChunk);
  const T* xr = x + row * M;
  const T* tr = t ? t + row * M : nullptr;
  double s = 0.0;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    if (tr) {
      const double d = double(to_float(xr[i])) - double(to_float(tr[i]));
      s += d * d;
    } else {
      s += double(to_float(xr[i]));
    }
  }
  s = block_sum_d(s, scratch);
  if (threadIdx.x == 0) partial[row * chunks + c] = s;
}

// One block: row sums from the partials (rows in order). mse: per-row mean, per_sample[row] = it,
// out[0] = sum_row w[row] * mean_row (w = 1/rows without weights); else out[0] = sum (or sum / M when mean).
template <class T>
__global__ void finish_kernel(const double* __restrict__ partial, int64_t rows, int64_t chunks, int64_t M, bool mse,
                              bool mean, const T* __restrict__ weights, T* __restrict__ out,
                              T* __restrict__ per_sample) {
  __shared__ double scratch[32];
  double total = 0.0;
  for (int64_t r = 0; r < rows; r++) {
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) s += partial[r * chunks + c];
    s = block_sum_d(s, scratch);  // every thread gets the same value: total stays uniform
    if (mse) {
      const double m = s / double(M);
      if (per_sample && threadIdx.x == 0) per_sample[r] = from_float<T>(float(m));
      total += (weights ? double(to_float(weights[r])) : 1.0 / double(rows)) * m;
    } else {
      total += mean ? s / double(M) : s;
    }
  }
  if (threadIdx.x == 0) out[0] = from_float<T>(float(total));
}

template <class T>
void sums(const char* op, const T* x, const T* t, int64_t rows, int64_t M, bool mse, bool mean, const T* weights,
          T* out, T* per_sample, std::initializer_list<Operand> operands) {
  cudaStream_t st = stream();
  const int64_t chunks = std::max<int64_t>(1, (M + kChunk - 1) / kChunk);
  if (rows > 65535 || chunks > 0x7fffffff) throw Error(std::string(op) + ": too many samples for one launch");
  Tensor partial = Tensor::empty(Shape{rows, chunks}, DType::f64, Device::cuda);
  if (M > 0) {
    partial_sums_kernel<T><<<dim3(unsigned(chunks), unsigned(rows)), kReduceThreads, 0, st>>>(x, t, M, chunks,
                                                                                             dptr<double>(partial));
    check_launch(op, operands);
  } else {
    check(cudaMemsetAsync(partial.raw(), 0, partial.nbytes(), st), op);  // empty sum: 0 (0 bits = +0.0)
  }
  finish_kernel<T><<<1, kReduceThreads, 0, st>>>(dptr<double>(partial), rows, chunks, M, mse, mean, weights, out,
                                                  per_sample);
  check_launch(op, operands);
}

template <class T> __global__ void fill_scaled_kernel(const T* __restrict__ dy, double div, T* __restrict__ dx, int64_t n) {
  const float v = float(double(to_float(dy[0])) / div);
  DBT_GRID_STRIDE(i, n) dx[i] = from_float<T>(v);
}

// dpred[i] = dloss * w[row] * 2 (pred - target) / M
template <class T>
__global__ void mse_backward_kernel(const T* __restrict__ pred, const T* __restrict__ target,
                                    const T* __restrict__ weights, const T* __restrict__ dloss, int64_t rows,
                                    int64_t M, T* __restrict__ dpred, int64_t n) {
  const float g = to_float(dloss[0]), scale = 2.0f / float(M);
  DBT_GRID_STRIDE(i, n) {
    const float w = weights ? to_float(weights[i / M]) : 1.0f / float(rows);
    dpred[i] = from_float<T>(g * w * scale * (to_float(pred[i]) - to_float(target[i])));
  }
}

void reduce_all(const Tensor& x, bool mean, Tensor& y) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), mean ? "mean" : "sum", {
    sums<T>(mean ? "mean" : "sum", dptr<T>(x), nullptr, 1, x.numel(), false, mean, nullptr, dptr<T>(y), nullptr,
            {{"x", &x}, {"y", &y}});
  });
}

void reduce_all_backward(const Tensor& dy, bool mean, Tensor& dx) {
  const int64_t n = dx.numel();
  if (n == 0) return;
  DBT_CUDA_FLOAT_SWITCH(dx.dtype(), "reduce_all_backward", {
    fill_scaled_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(dy), mean ? double(n) : 1.0, dptr<T>(dx), n);
  });
  check_launch(mean ? "mean_backward" : "sum_backward", {{"dy", &dy}, {"dx", &dx}});
}

void mse_loss_forward(const Tensor& pred, const Tensor& target, const Tensor* weights, Tensor& loss,
                      Tensor* per_sample) {
  const int64_t N = pred.dim(0), M = pred.numel() / N;
  DBT_CUDA_FLOAT_SWITCH(pred.dtype(), "mse_loss_forward", {
    sums<T>("mse_loss_forward", dptr<T>(pred), dptr<T>(target), N, M, true, false, dptr<T>(weights), dptr<T>(loss),
            dptr<T>(per_sample), {{"pred", &pred}, {"target", &target}, {"loss", &loss}});
  });
}

void mse_loss_backward(const Tensor& pred, const Tensor& target, const Tensor* weights, const Tensor& dloss,
                       Tensor& dpred) {
  const int64_t n = pred.numel(), N = pred.dim(0), M = n / N;
  DBT_CUDA_FLOAT_SWITCH(pred.dtype(), "mse_loss_backward", {
    mse_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(pred), dptr<T>(target), dptr<T>(weights),
                                                                   dptr<T>(dloss), N, M, dptr<T>(dpred), n);
  });
  check_launch("mse_loss_backward", {{"pred", &pred}, {"target", &target}, {"dpred", &dpred}});
}

}  // namespace

void register_loss() {
  ops::reduce_all_table().set(Device::cuda, &reduce_all);
  ops::reduce_all_backward_table().set(Device::cuda, &reduce_all_backward);
  ops::mse_loss_forward_table().set(Device::cuda, &mse_loss_forward);
  ops::mse_loss_backward_table().set(Device::cuda, &mse_loss_backward);
}

}  // namespace dbt::cuda
