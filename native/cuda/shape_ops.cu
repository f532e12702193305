// Data movement: nearest 2x upsampling (forward for any dtype, backward summing each 2x2 block in f32),
// concat and split along any dim (element copies, any dtype: moved as 1/2/4/8-byte words).
#include <vector>

#include "common.cuh"
#include "ops/shape_ops.h"

namespace dbt::cuda {
namespace {

// y [P, 2H, 2W] from x [P, H, W] (P = N * C); thread per output element.
template <class U>
__global__ void upsample_forward_kernel(const U* __restrict__ x, U* __restrict__ y, int64_t H, int64_t W, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    const int64_t j = i % (2 * W), r = i / (2 * W), ii = r % (2 * H), p = r / (2 * H);
    y[i] = x[(p * H + ii / 2) * W + j / 2];
  }
}

// dx [P, H, W]: thread per input element, the four dy values added in a fixed order.
template <class T>
__global__ void upsample_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, int64_t H, int64_t W, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    const int64_t j = i % W, r = i / W, ii = r % H, p = r / H;
    const T* d0 = dy + (p * 2 * H + 2 * ii) * 2 * W + 2 * j;
    const T* d1 = d0 + 2 * W;
    dx[i] = from_float<T>(((to_float(d0[0]) + to_float(d0[1])) + to_float(d1[0])) + to_float(d1[1]));
  }
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
  by_word_size(x.dtype(), "upsample_nearest2x_forward", [&](auto word) {
    using U = decltype(word);
    upsample_forward_kernel<U><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const U*>(x.raw()),
                                                                       static_cast<U*>(y.raw()), H, W, n);
  });
  check_launch("upsample_nearest2x_forward", {{"x", &x}, {"y", &y}});
}

void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx) {
  const int64_t n = dx.numel(), H = dx.dim(2), W = dx.dim(3);
  if (n == 0) return;
  DBT_CUDA_FLOAT_SWITCH(dx.dtype(), "upsample_nearest2x_backward", {
    upsample_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(dy), dptr<T>(dx), H, W, n);
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
