// Activations (SiLU, exact GELU, quick GELU), GEGLU and softmax, forward and backward, computed in f32.
// Element-wise kernels allow in-place use (y = x, dx = dy): each element is read before it is written, by
// the same thread, so no pointer here is __restrict__ where the API allows aliasing. Softmax runs one warp
// per row (three passes over the row: max, sum, write), a fixed shuffle tree: deterministic.
#include <string>

#include "common.cuh"
#include "ops/activation.h"

namespace dbt::cuda {
namespace {

using ops::Activation;

constexpr float kInvSqrt2 = 0.70710678118654752440f, kInvSqrt2Pi = 0.39894228040143267794f;

__device__ __forceinline__ float sig(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * kInvSqrt2)); }
__device__ __forceinline__ float gelu_grad(float x) {
  return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
}

template <Activation A> __device__ __forceinline__ float act(float x) {
  if constexpr (A == Activation::silu) return x * sig(x);
  else if constexpr (A == Activation::gelu) return gelu(x);
  else return x * sig(1.702f * x);
}
template <Activation A> __device__ __forceinline__ float act_grad(float x) {
  if constexpr (A == Activation::silu) {
    const float s = sig(x);
    return s * (1.0f + x * (1.0f - s));
  } else if constexpr (A == Activation::gelu) {
    return gelu_grad(x);
  } else {
    const float s = sig(1.702f * x);
    return s + 1.702f * x * s * (1.0f - s);
  }
}

template <Activation A, class T> __global__ void act_forward_kernel(const T* x, T* y, int64_t n) {
  DBT_GRID_STRIDE(i, n) y[i] = from_float<T>(act<A>(to_float(x[i])));
}
template <Activation A, class T> __global__ void act_backward_kernel(const T* x, const T* dy, T* dx, int64_t n) {
  DBT_GRID_STRIDE(i, n) dx[i] = from_float<T>(to_float(dy[i]) * act_grad<A>(to_float(x[i])));
}

// x [R, 2F] -> y [R, F]: block row blockIdx.x is a row, blockIdx.y and the threads stride over its columns.
#define DBT_COL_STRIDE(c, F) \
  for (int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; c < (F); c += int64_t(gridDim.y) * blockDim.x)

template <class T> __global__ void geglu_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t F) {
  const int64_t r = blockIdx.x;
  DBT_COL_STRIDE(c, F) {
    const float h = to_float(x[r * 2 * F + c]), g = to_float(x[r * 2 * F + F + c]);
    y[r * F + c] = from_float<T>(h * gelu(g));
  }
}
template <class T>
__global__ void geglu_backward_kernel(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, int64_t F) {
  const int64_t r = blockIdx.x;
  DBT_COL_STRIDE(c, F) {
    const float h = to_float(x[r * 2 * F + c]), g = to_float(x[r * 2 * F + F + c]), d = to_float(dy[r * F + c]);
    dx[r * 2 * F + c] = from_float<T>(d * gelu(g));
    dx[r * 2 * F + F + c] = from_float<T>(d * h * gelu_grad(g));
  }
}

int col_threads(int64_t F) { return F >= 256 ? 256 : F >= 128 ? 128 : F >= 64 ? 64 : 32; }
dim3 row_col_grid(int64_t R, int64_t F, int threads, const char* op) {
  if (R > 0x7fffffff) throw Error(std::string(op) + ": too many rows for one launch");
  return dim3(unsigned(R), unsigned(std::min<int64_t>(65535, std::max<int64_t>(1, (F + threads - 1) / threads))));
}

#define DBT_WARP_ROWS(r, R)                                                                      \
  for (int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < (R);                \
       r += (int64_t(gridDim.x) * blockDim.x) >> 5)

template <class T> __global__ void softmax_forward_kernel(const T* x, T* y, int64_t R, int64_t C) {
  const int lane = threadIdx.x & 31;
  DBT_WARP_ROWS(r, R) {  // uniform per warp: all 32 lanes reach the shuffles
    const T* xr = x + r * C;
    float m = -INFINITY;
    for (int64_t i = lane; i < C; i += 32) m = fmaxf(m, to_float(xr[i]));
    m = warp_max(m);
    float s = 0.0f;
    for (int64_t i = lane; i < C; i += 32) s += expf(to_float(xr[i]) - m);
    const float inv = 1.0f / warp_sum(s);
    for (int64_t i = lane; i < C; i += 32) y[r * C + i] = from_float<T>(expf(to_float(xr[i]) - m) * inv);
  }
}

template <class T> __global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t R, int64_t C) {
  const int lane = threadIdx.x & 31;
  DBT_WARP_ROWS(r, R) {
    float s = 0.0f;
    for (int64_t i = lane; i < C; i += 32) s += to_float(dy[r * C + i]) * to_float(y[r * C + i]);
    s = warp_sum(s);
    for (int64_t i = lane; i < C; i += 32) {
      const float yi = to_float(y[r * C + i]);
      dx[r * C + i] = from_float<T>(yi * (to_float(dy[r * C + i]) - s));
    }
  }
}

template <class T> void act_forward_t(Activation a, const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const unsigned g = grid_for(n);
  cudaStream_t st = stream();
  switch (a) {
    case Activation::silu: act_forward_kernel<Activation::silu, T><<<g, kThreads, 0, st>>>(dptr<T>(x), dptr<T>(y), n); break;
    case Activation::gelu: act_forward_kernel<Activation::gelu, T><<<g, kThreads, 0, st>>>(dptr<T>(x), dptr<T>(y), n); break;
    case Activation::quick_gelu:
      act_forward_kernel<Activation::quick_gelu, T><<<g, kThreads, 0, st>>>(dptr<T>(x), dptr<T>(y), n);
      break;
  }
  check_launch(ops::activation_name(a), {{"x", &x}, {"y", &y}});
}

template <class T> void act_backward_t(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const unsigned g = grid_for(n);
  cudaStream_t st = stream();
  switch (a) {
    case Activation::silu:
      act_backward_kernel<Activation::silu, T><<<g, kThreads, 0, st>>>(dptr<T>(x), dptr<T>(dy), dptr<T>(dx), n);
      break;
    case Activation::gelu:
      act_backward_kernel<Activation::gelu, T><<<g, kThreads, 0, st>>>(dptr<T>(x), dptr<T>(dy), dptr<T>(dx), n);
      break;
    case Activation::quick_gelu:
      act_backward_kernel<Activation::quick_gelu, T><<<g, kThreads, 0, st>>>(dptr<T>(x), dptr<T>(dy), dptr<T>(dx), n);
      break;
  }
  check_launch(ops::activation_name(a), {{"x", &x}, {"dy", &dy}, {"dx", &dx}});
}

void activation_forward(Activation a, const Tensor& x, Tensor& y) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "activation_forward", act_forward_t<T>(a, x, y));
}
void activation_backward(Activation a, const Tensor& x, const Tensor& dy, Tensor& dx) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "activation_backward", act_backward_t<T>(a, x, dy, dx));
}

void geglu_forward(const Tensor& x, Tensor& y) {
  const int64_t n = y.numel(), F = y.dim(-1);
  if (n == 0) return;
  const int threads = col_threads(F);
  const dim3 grid = row_col_grid(n / F, F, threads, "geglu_forward");
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "geglu_forward", {
    geglu_forward_kernel<T><<<grid, threads, 0, stream()>>>(dptr<T>(x), dptr<T>(y), F);
  });
  check_launch("geglu_forward", {{"x", &x}, {"y", &y}});
}
void geglu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t n = dy.numel(), F = dy.dim(-1);
  if (n == 0) return;
  const int threads = col_threads(F);
  const dim3 grid = row_col_grid(n / F, F, threads, "geglu_backward");
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "geglu_backward", {
    geglu_backward_kernel<T><<<grid, threads, 0, stream()>>>(dptr<T>(x), dptr<T>(dy), dptr<T>(dx), F);
  });
  check_launch("geglu_backward", {{"x", &x}, {"dy", &dy}, {"dx", &dx}});
}

void softmax_forward(const Tensor& x, Tensor& y) {
  const int64_t C = x.dim(-1), R = C ? x.numel() / C : 0;
  if (R == 0 || C == 0) return;
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "softmax_forward", {
    softmax_forward_kernel<T><<<grid_for(R * 32), kThreads, 0, stream()>>>(dptr<T>(x), dptr<T>(y), R, C);
  });
  check_launch("softmax_forward", {{"x", &x}, {"y", &y}});
}
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t C = y.dim(-1), R = C ? y.numel() / C : 0;
  if (R == 0 || C == 0) return;
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "softmax_backward", {
    softmax_backward_kernel<T><<<grid_for(R * 32), kThreads, 0, stream()>>>(dptr<T>(y), dptr<T>(dy), dptr<T>(dx), R, C);
  });
  check_launch("softmax_backward", {{"y", &y}, {"dy", &dy}, {"dx", &dx}});
}

}  // namespace

void register_activation() {
  ops::activation_forward_table().set(Device::cuda, &activation_forward);
  ops::activation_backward_table().set(Device::cuda, &activation_backward);
  ops::geglu_forward_table().set(Device::cuda, &geglu_forward);
  ops::geglu_backward_table().set(Device::cuda, &geglu_backward);
  ops::softmax_forward_table().set(Device::cuda, &softmax_forward);
  ops::softmax_backward_table().set(Device::cuda, &softmax_backward);
}

}  // namespace dbt::cuda
