// Deterministic sums over axes, shared by the families that need bias gradients and broadcast
// reductions. x is viewed as [A, J, R]; out[j] (+)= sum over a < A, r < R of x[(a * J + j) * R + r].
// Summation order is fixed by the shapes alone (never by scheduling), so results repeat bit for bit.
#pragma once
#include "common.cuh"

namespace dbt::cuda {

// Double-precision block sum (loss and norm reductions accumulate in f64: exact enough for long sums and
// still memory-bound). Same contract as block_sum: blockDim.x a multiple of 32, `scratch` 32 doubles.
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double block_sum_d(double v, double* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum_d(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double t = lane < nwarps ? scratch[lane] : 0.0;
  t = warp_sum_d(t);
  __syncthreads();
  return t;
}

// R >= 32 (inner rows contiguous): one block per output, lanes stride over r (coalesced), a fixed tree
// combines the block.
template <class TI, class T>
__global__ void sum_ajr_inner_kernel(const TI* __restrict__ x, int64_t A, int64_t J, int64_t R, T* __restrict__ out,
                                     bool accumulate) {
  __shared__ float scratch[32];
  const int64_t j = blockIdx.x;
  float s = 0.0f;
  for (int64_t a = 0; a < A; a++) {
    const TI* row = x + (a * J + j) * R;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += to_float(row[r]);
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) out[j] = from_float<T>(accumulate ? to_float(out[j]) + s : s);
}

// R == 1 style (outputs contiguous): threads along j; the A rows are split in chunks of kChunk whose
// partial sums go to partial[chunk][j] (f32); a second pass adds the chunks in order.
constexpr int kSumChunk = 64;
template <class TI>
__global__ void sum_ajr_outer_partial_kernel(const TI* __restrict__ x, int64_t A, int64_t J, int64_t R,
                                             float* __restrict__ partial) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= J) return;
  const int64_t a0 = int64_t(blockIdx.y) * kSumChunk, a1 = min(A, a0 + kSumChunk);
  float s = 0.0f;
  for (int64_t a = a0; a < a1; a++)
    for (int64_t r = 0; r < R; r++) s += to_float(x[(a * J + j) * R + r]);
  partial[int64_t(blockIdx.y) * J + j] = s;
}
template <class T>
__global__ void sum_chunks_kernel(const float* __restrict__ partial, int64_t chunks, int64_t J, T* __restrict__ out,
                                  bool accumulate) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= J) return;
  float s = 0.0f;
  for (int64_t c = 0; c < chunks; c++) s += partial[c * J + j];
  out[j] = from_float<T>(accumulate ? to_float(out[j]) + s : s);
}

// out [J] (+)= sums of x viewed as [A, J, R] (x may be f32 while out is f16/bf16: a f32 intermediate).
// `op` names the op in error messages.
template <class TI, class T>
void sum_ajr(const TI* x, int64_t A, int64_t J, int64_t R, T* out, bool accumulate, const char* op) {
  if (J == 0) return;
  cudaStream_t st = stream();
  if (A == 0 || R == 0) {
    if (!accumulate) check(cudaMemsetAsync(out, 0, size_t(J) * sizeof(T), st), op);  // 0 bits = +0 for all types
    return;
  }
  if (R >= 32) {
    int threads = R >= 256 ? 256 : R >= 128 ? 128 : 32;
    if (J > 0x7fffffff) throw Error(std::string(op) + ": too many outputs for one launch");
    sum_ajr_inner_kernel<TI, T><<<unsigned(J), threads, 0, st>>>(x, A, J, R, out, accumulate);
    check_launch(op, {});
    return;
  }
  int64_t chunks = (A + kSumChunk - 1) / kSumChunk;
  if (chunks > 65535) throw Error(std::string(op) + ": reduction too long for one launch");
  Tensor partial = Tensor::empty(Shape{chunks, J}, DType::f32, Device::cuda);
  dim3 grid(unsigned((J + 255) / 256), unsigned(chunks));
  sum_ajr_outer_partial_kernel<TI><<<grid, 256, 0, st>>>(x, A, J, R, static_cast<float*>(partial.raw()));
  check_launch(op, {});
  sum_chunks_kernel<T><<<unsigned((J + 255) / 256), 256, 0, st>>>(static_cast<const float*>(partial.raw()), chunks,
                                                                    J, out, accumulate);
  check_launch(op, {});
}

}  // namespace dbt::cuda
