// Data movement: nearest 2x upsampling (forward for any dtype, backward summing each 2x2 block in f32),
// concat and split along any dim (element copies, any dtype: moved as 1/2/4/8-byte words).
#include <string>
#include <vector>

#include "common.cuh"
#include "ops/shape_ops.h"

namespace dbt::cuda {
namespace {

// Block row blockIdx.x is one image row; blockIdx.y and the threads stride over its columns.
#define DBT_COL_STRIDE(c, W) \
  for (int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; c < (W); c += int64_t(gridDim.y) * blockDim.x)

// y [P, 2H, 2W] from x [P, H, W] (P = N * C): row blockIdx.x of y (p = row / 2H, i = row % 2H).
template <class U> __global__ void upsample_forward_kernel(const U* __restrict__ x, U* __restrict__ y, int64_t H, int64_t W) {
  const int64_t row = blockIdx.x, p = row / (2 * H), i = row % (2 * H);
  const U* xr = x + (p * H + i / 2) * W;
  U* yr = y + row * 2 * W;
  DBT_COL_STRIDE(j, 2 * W) yr[j] = xr[j / 2];
}

// dx [P, H, W]: row blockIdx.x of dx; each element adds its 2x2 block of dy in a fixed order.
template <class T>
__global__ void upsample_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, int64_t H, int64_t W) {
  const int64_t row = blockIdx.x, p = row / H, i = row % H;
  const T* d0 = dy + (p * 2 * H + 2 * i) * 2 * W;
  const T* d1 = d0 + 2 * W;
  DBT_COL_STRIDE(j, W) {
    dx[row * W + j] = from_float<T>(((to_float(d0[2 * j]) + to_float(d0[2 * j + 1])) + to_float(d1[2 * j])) +
                                    to_float(d1[2 * j + 1]));
  }
}

int col_threads(int64_t W) { return W >= 256 ? 256 : W >= 128 ? 128 : W >= 64 ? 64 : 32; }
dim3 row_col_grid(int64_t rows, int64_t W, int threads, const char* op) {
  if (rows > 0x7fffffff) throw Error(std::string(op) + ": too many rows for one launch");
  return dim3(unsigned(rows), unsigned(std::min<int64_t>(65535, std::max<int64_t>(1, (W + threads - 1) / threads))));
}

// One part of a concat (to_y) or split (!to_y): part [outer, len] <-> y [outer, ylen] columns [at, at + len).
template <class U>
__global__ void slice_copy_kernel(U* __restrict__ y, U* __restrict__ part, int64_t len, int64_t ylen, int64_t at,
                                  int64_t n, bool to_y) {
  DBT_GRID_STRIDE(e, n) {
    const int64_t o = e / len, k = e % len;
    U* yp = y + o * ylen + at + k;
    if (to_y) *yp = part[e];
    else part[e] = *yp;
  }
}

template <class F> void by_word_size(DType dt, const char* op, F&& f) {
  switch (dtype_size(dt)) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
  }
  throw OpError(op, std::string("unsupported dtype ") + dtype_name(dt), "");
}

void upsample_nearest2x_forward(const Tensor& x, Tensor& y) {
  const int64_t n = y.numel(), H = x.dim(2), W = x.dim(3);
  if (n == 0) return;
  const int threads = col_threads(2 * W);
  const dim3 grid = row_col_grid(x.dim(0) * x.dim(1) * 2 * H, 2 * W, threads, "upsample_nearest2x_forward");
  by_word_size(x.dtype(), "upsample_nearest2x_forward", [&](auto word) {
    using U = decltype(word);
    upsample_forward_kernel<U><<<grid, threads, 0, stream()>>>(static_cast<const U*>(x.raw()), static_cast<U*>(y.raw()),
                                                               H, W);
  });
  check_launch("upsample_nearest2x_forward", {{"x", &x}, {"y", &y}});
}

void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx) {
  const int64_t n = dx.numel(), H = dx.dim(2), W = dx.dim(3);
  if (n == 0) return;
  const int threads = col_threads(W);
  const dim3 grid = row_col_grid(dx.dim(0) * dx.dim(1) * H, W, threads, "upsample_nearest2x_backward");
  DBT_CUDA_FLOAT_SWITCH(dx.dtype(), "upsample_nearest2x_backward", {
    upsample_backward_kernel<T><<<grid, threads, 0, stream()>>>(dptr<T>(dy), dptr<T>(dx), H, W);
  });
  check_launch("upsample_nearest2x_backward", {{"dy", &dy}, {"dx", &dx}});
}

// Copies between y and each part along dim (inner = elements per unit of dim).
void slices(const Tensor& y, int dim, const std::vector<const Tensor*>& parts, const std::vector<int64_t>& sizes,
            bool to_y, const char* op) {
  const int64_t outer = y.shape().prod(0, dim), inner = y.shape().prod(dim + 1, y.ndim()), ylen = y.dim(dim) * inner;
  int64_t at = 0;
  for (size_t i = 0; i < parts.size(); i++) {
    const int64_t len = sizes[i] * inner, n = outer * len;
    if (parts[i] && n > 0) {
      Tensor* part = const_cast<Tensor*>(parts[i]);  // written only when !to_y (split's outputs)
      by_word_size(y.dtype(), op, [&](auto word) {
        using U = decltype(word);
        slice_copy_kernel<U><<<grid_for(n), kThreads, 0, stream()>>>(
            static_cast<U*>(const_cast<void*>(y.raw())), static_cast<U*>(part->raw()), len, ylen, at, n, to_y);
      });
      check_launch(op, {{"y", &y}, {"part", parts[i]}});
    }
    at += len;
  }
}

void concat(const std::vector<Tensor>& xs, int dim, Tensor& y) {
  std::vector<const Tensor*> parts;
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) {
    parts.push_back(&x);
    sizes.push_back(x.dim(dim));
  }
  slices(y, dim, parts, sizes, true, "concat");
}

void split(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts) {
  std::vector<const Tensor*> ps(parts.begin(), parts.end());
  slices(y, dim, ps, sizes, false, "split");
}

}  // namespace

void register_shape_ops() {
  ops::upsample_nearest2x_forward_table().set(Device::cuda, &upsample_nearest2x_forward);
  ops::upsample_nearest2x_backward_table().set(Device::cuda, &upsample_nearest2x_backward);
  ops::concat_table().set(Device::cuda, &concat);
  ops::split_table().set(Device::cuda, &split);
}

}  // namespace dbt::cuda
