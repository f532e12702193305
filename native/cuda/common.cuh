// Device-side helpers shared by the kernel files: storage types <-> float, dtype dispatch, launch
// geometry, deterministic warp/block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "runtime.h"

namespace dbt::cuda {

// ---- storage types: kernels compute in f32 and load/store f32, f16 or bf16 ----
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <class T> T* dptr(Tensor& t) { return static_cast<T*>(t.raw()); }
template <class T> const T* dptr(const Tensor& t) { return static_cast<const T*>(t.raw()); }
template <class T> T* dptr(Tensor* t) { return t ? static_cast<T*>(t->raw()) : nullptr; }
template <class T> const T* dptr(const Tensor* t) { return t ? static_cast<const T*>(t->raw()) : nullptr; }

[[noreturn]] inline void unsupported_dtype(const char* op, DType dt) {
  throw OpError(op, std::string("CUDA kernels take f32, f16 or bf16, got ") + dtype_name(dt), "");
}

// Runs body with `T` bound to the device storage type of dtype (float, __half, __nv_bfloat16).
#define DBT_CUDA_FLOAT_SWITCH(dtype, OPNAME, ...)          \
  do {                                                     \
    switch (dtype) {                                       \
      case ::dbt::DType::f32: {                            \
        using T = float;                                   \
        __VA_ARGS__;                                       \
        break;                                             \
      }                                                    \
      case ::dbt::DType::f16: {                            \
        using T = __half;                                  \
        __VA_ARGS__;                                       \
        break;                                             \
      }                                                    \
      case ::dbt::DType::bf16: {                           \
        using T = __nv_bfloat16;                           \
        __VA_ARGS__;                                       \
        break;                                             \
      }                                                    \
      default:                                             \
        ::dbt::cuda::unsupported_dtype(OPNAME, (dtype));   \
    }                                                      \
  } while (0)

// ---- launch geometry ----
constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements: enough to fill the device, never 0 (callers return
// early for n == 0: a launch with 0 blocks is an error).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t want = (n + threads - 1) / threads;
  int64_t cap = int64_t(device().sms) * 16;
  return unsigned(std::max<int64_t>(1, std::min(want, cap)));
}

#define DBT_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// ---- deterministic reductions (fixed tree: same result every run) ----
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats of shared memory; the function synchronises before returning, so the same
// scratch may be reused by the next call.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : 0.0f;
  t = warp_sum(t);
  __syncthreads();
  return t;
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : -INFINITY;
  t = warp_max(t);
  __syncthreads();
  return t;
}

}  // namespace dbt::cuda
