// Element-wise arithmetic with broadcasting (add/sub/mul forward and backward), axpby, sum_to, clamp.
// Arithmetic in f32; broadcast reductions through reduce.cuh (deterministic).
#include <vector>

#include "broadcast_map.h"
#include "common.cuh"
#include "ops/elementwise.h"
#include "ops/tensor_ops.h"
#include "reduce.cuh"

namespace dbt::cuda {
namespace {

using ops::BinaryOp;

template <class T>
__global__ void binary_kernel(int op, const T* a, const T* b, T* y, IndexMap ma, IndexMap mb, OutDims od, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    float va = to_float(a[map_index(ma, od, i)]), vb = to_float(b[map_index(mb, od, i)]);
    float r = op == 0 ? va + vb : op == 1 ? va - vb : va * vb;
    y[i] = from_float<T>(r);
  }
}

// g[i] = scale * dy[i] * (other ? other[map(i)] : 1), written as TO (T when no reduction follows, f32 else).
template <class T, class TO>
__global__ void grad_kernel(const T* dy, const T* other, IndexMap mo, OutDims od, float scale, TO* g, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    float v = scale * to_float(dy[i]);
    if (other) v *= to_float(other[map_index(mo, od, i)]);
    g[i] = from_float<TO>(v);
  }
}

template <class T> __global__ void axpby_kernel(float alpha, const T* x, float beta, T* y, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    float v = alpha * to_float(x[i]);
    if (beta != 0.0f) v += beta * to_float(y[i]);
    y[i] = from_float<T>(v);
  }
}

template <class T> __global__ void clamp_kernel(const T* x, float lo, float hi, T* y, int64_t n) {
  DBT_GRID_STRIDE(i, n) y[i] = from_float<T>(fminf(hi, fmaxf(lo, to_float(x[i]))));
}

// General sum_to: one warp per output element, lanes stride over the reduced positions.
template <class TI, class T>
__global__ void sum_to_general_kernel(const TI* x, ReduceDims rd, int64_t ny, int64_t count, T* y) {
  const int64_t j = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (j >= ny) return;  // whole warps exit together (j is uniform per warp)
  const int64_t base = reduce_base(rd, j);
  float s = 0.0f;
  for (int64_t r = lane; r < count; r += 32) s += to_float(x[reduce_offset(rd, base, r)]);
  s = warp_sum(s);
  if (lane == 0) y[j] = from_float<T>(s);
}

// y (shape ys) = sum of x (shape xs) over the broadcast dims. TI may be f32 (a gradient intermediate).
template <class TI, class T> void sum_to_t(const TI* x, const Shape& xs, T* y, const Shape& ys, const char* op) {
  int64_t A, J, R;
  if (sum_to_ajr(xs, ys, A, J, R)) return sum_ajr<TI, T>(x, A, J, R, y, false, op);
  const ReduceDims rd = make_reduce_dims(xs, ys);
  int64_t ny = ys.numel(), count = xs.numel() / std::max<int64_t>(ny, 1);
  int64_t threads = ny * 32;
  sum_to_general_kernel<TI, T><<<unsigned((threads + 255) / 256), 256, 0, stream()>>>(x, rd, ny, count, y);
  check_launch(op, {});
}

// ---- ops ----
void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  int64_t n = y.numel();
  if (n == 0) return;
  ops::BroadcastIndex bi(y.shape(), a.shape(), b.shape());
  IndexMap ma = make_map(y.shape(), a.shape(), bi.stride_a), mb = make_map(y.shape(), b.shape(), bi.stride_b);
  OutDims od;
  for (int d = 0; d < kMaxDims; d++) od.d[d] = bi.dims[d];
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "binary_forward", {
    binary_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(int(op), dptr<T>(a), dptr<T>(b), dptr<T>(y), ma, mb,
                                                             od, n);
  });
  check_launch(ops::binary_op_name(op), {{"a", &a}, {"b", &b}, {"y", &y}});
}

// One operand's gradient: g = sum_to(scale * dy * other, g's shape).
template <class T>
void operand_grad(const Tensor& dy, const Tensor* other, const Shape& other_shape, const int64_t* other_stride,
                  float scale, Tensor& g, const char* op) {
  int64_t n = dy.numel();
  IndexMap mo;
  if (other) mo = make_map(dy.shape(), other_shape, other_stride);
  OutDims od;
  ops::BroadcastIndex bi(dy.shape(), dy.shape(), dy.shape());
  for (int d = 0; d < kMaxDims; d++) od.d[d] = bi.dims[d];
  const T* o = other ? dptr<T>(*other) : nullptr;
  if (g.shape() == dy.shape()) {
    grad_kernel<T, T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(dy), o, mo, od, scale, dptr<T>(g), n);
    check_launch(op, {{"dy", &dy}, {"grad", &g}});
    return;
  }
  Tensor tmp = Tensor::empty(dy.shape(), DType::f32, Device::cuda);
  grad_kernel<T, float><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(dy), o, mo, od, scale, dptr<float>(tmp), n);
  check_launch(op, {{"dy", &dy}, {"grad", &g}});
  sum_to_t<float, T>(dptr<float>(tmp), dy.shape(), dptr<T>(g), g.shape(), op);
}

void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da, Tensor* db) {
  if (dy.numel() == 0) {
    if (da) ops::fill(*da, 0.0);
    if (db) ops::fill(*db, 0.0);
    return;
  }
  ops::BroadcastIndex bi(dy.shape(), a.shape(), b.shape());
  const char* name = op == BinaryOp::add ? "add_backward" : op == BinaryOp::sub ? "sub_backward" : "mul_backward";
  DBT_CUDA_FLOAT_SWITCH(dy.dtype(), name, {
    if (da) operand_grad<T>(dy, op == BinaryOp::mul ? &b : nullptr, b.shape(), bi.stride_b, 1.0f, *da, name);
    if (db)
      operand_grad<T>(dy, op == BinaryOp::mul ? &a : nullptr, a.shape(), bi.stride_a,
                      op == BinaryOp::sub ? -1.0f : 1.0f, *db, name);
  });
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  int64_t n = y.numel();
  if (n == 0) return;
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "axpby", {
    axpby_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(alpha, dptr<T>(x), beta, dptr<T>(y), n);
  });
  check_launch("axpby", {{"x", &x}, {"y", &y}});
}

void sum_to(const Tensor& x, Tensor& y) {
  if (y.numel() == 0) return;
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "sum_to", { sum_to_t<T, T>(dptr<T>(x), x.shape(), dptr<T>(y), y.shape(), "sum_to"); });
}

void clamp(const Tensor& x, float lo, float hi, Tensor& y) {
  int64_t n = y.numel();
  if (n == 0) return;
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "clamp", {
    clamp_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(x), lo, hi, dptr<T>(y), n);
  });
  check_launch("clamp", {{"x", &x}, {"y", &y}});
}

}  // namespace

void register_elementwise() {
  ops::binary_forward_table().set(Device::cuda, &binary_forward);
  ops::binary_backward_table().set(Device::cuda, &binary_backward);
  ops::axpby_table().set(Device::cuda, &axpby);
  ops::sum_to_table().set(Device::cuda, &sum_to);
  ops::clamp_table().set(Device::cuda, &clamp);
}

}  // namespace dbt::cuda
