// Element-wise arithmetic with broadcasting (add/sub/mul forward and backward), axpby, sum_to.
// Arithmetic in f32; broadcast reductions through reduce.cuh (deterministic).
#include <vector>

#include "common.cuh"
#include "ops/elementwise.h"
#include "ops/tensor_ops.h"
#include "reduce.cuh"

namespace dbt::cuda {
namespace {

using ops::BinaryOp;

// How an operand's index follows from the output index i.
struct IndexMap {
  int kind = 0;     // 0: i (same shape); 1: i % m (operand repeats, e.g. bias [C] of [B,N,C]);
                    // 2: i / m (operand constant over the inner m, e.g. [N,C,1,1] of [N,C,H,W]); 3: general
  int64_t m = 1;
  int64_t stride[kMaxDims] = {};  // kind 3: stride per output dim (0 where broadcast)
};
struct OutDims {
  int64_t d[kMaxDims];
};

__device__ __forceinline__ int64_t map_index(const IndexMap& mp, const OutDims& od, int64_t i) {
  switch (mp.kind) {
    case 0: return i;
    case 1: return i % mp.m;
    case 2: return i / mp.m;
    default: {
      int64_t off = 0, rem = i;
#pragma unroll
      for (int d = kMaxDims - 1; d >= 0; d--) {
        int64_t c = rem % od.d[d];
        rem /= od.d[d];
        off += c * mp.stride[d];
      }
      return off;
    }
  }
}

// Operand shape `s` (broadcasting to `out`) -> its index map; bstride: BroadcastIndex's strides for s.
IndexMap make_map(const Shape& out, const Shape& s, const int64_t* bstride) {
  IndexMap mp;
  if (s == out) return mp;
  const int no = out.ndim();
  std::vector<int64_t> sp(size_t(no), 1);  // s right-aligned to out's rank
  for (int i = 0; i < s.ndim(); i++) sp[size_t(no - s.ndim() + i)] = s[i];
  int first = 0;
  while (first < no && sp[size_t(first)] == 1) first++;
  bool suffix = true;  // 1s, then out's trailing dims: the operand repeats every numel(s) outputs
  for (int d = first; d < no; d++) suffix = suffix && sp[size_t(d)] == out[d];
  if (suffix) {
    mp.kind = 1;
    mp.m = s.numel();
    return mp;
  }
  int last = no - 1;
  while (last >= 0 && sp[size_t(last)] == 1) last--;
  bool prefix = true;  // out's leading dims, then 1s: constant over blocks of numel(out)/numel(s)
  for (int d = 0; d <= last; d++) prefix = prefix && sp[size_t(d)] == out[d];
  if (prefix) {
    mp.kind = 2;
    mp.m = out.numel() / s.numel();
    return mp;
  }
  mp.kind = 3;
  for (int d = 0; d < kMaxDims; d++) mp.stride[d] = bstride[d];
  return mp;
}

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

// General sum_to: one warp per output element, lanes stride over the reduced positions.
struct ReduceDims {
  int64_t xstride[kMaxDims];  // x's contiguous strides (right-aligned)
  int64_t rdims[kMaxDims];    // sizes of the reduced dims (1 elsewhere)
  int64_t ydims[kMaxDims];    // y's dims right-aligned to x (1 where reduced)
};
template <class TI, class T>
__global__ void sum_to_general_kernel(const TI* x, ReduceDims rd, int64_t ny, int64_t count, T* y) {
  const int64_t j = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (j >= ny) return;  // whole warps exit together (j is uniform per warp)
  int64_t base = 0, rem = j;
  for (int d = kMaxDims - 1; d >= 0; d--) {
    base += (rem % rd.ydims[d]) * rd.xstride[d];
    rem /= rd.ydims[d];
  }
  float s = 0.0f;
  for (int64_t r = lane; r < count; r += 32) {
    int64_t off = base, q = r;
    for (int d = kMaxDims - 1; d >= 0; d--) {
      off += (q % rd.rdims[d]) * rd.xstride[d];
      q /= rd.rdims[d];
    }
    s += to_float(x[off]);
  }
  s = warp_sum(s);
  if (lane == 0) y[j] = from_float<T>(s);
}

// y (shape ys) = sum of x (shape xs) over the broadcast dims. TI may be f32 (a gradient intermediate).
template <class TI, class T> void sum_to_t(const TI* x, const Shape& xs, T* y, const Shape& ys, const char* op) {
  // Classify x's dims (right-aligned with y): kept (equal, > 1), reduced (y 1, x > 1), or size 1.
  std::vector<std::pair<char, int64_t>> groups;
  for (int i = 0; i < xs.ndim(); i++) {
    int yi = i - (xs.ndim() - ys.ndim());
    int64_t xd = xs[i], yd = yi >= 0 ? ys[yi] : 1;
    if (xd == 1) continue;
    char kind = yd == xd ? 'K' : 'R';
    if (!groups.empty() && groups.back().first == kind) groups.back().second *= xd;
    else groups.push_back({kind, xd});
  }
  std::string pat;
  for (auto& g : groups) pat += g.first;
  int64_t A = 1, J = 1, R = 1;
  bool fast = true;
  if (pat == "" || pat == "K") J = groups.empty() ? 1 : groups[0].second;
  else if (pat == "R") R = groups[0].second;
  else if (pat == "RK") A = groups[0].second, J = groups[1].second;
  else if (pat == "KR") J = groups[0].second, R = groups[1].second;
  else if (pat == "RKR") A = groups[0].second, J = groups[1].second, R = groups[2].second;
  else fast = false;
  if (fast) return sum_ajr<TI, T>(x, A, J, R, y, false, op);

  ReduceDims rd;
  int off = kMaxDims - xs.ndim();
  int64_t stride = 1;
  for (int d = kMaxDims - 1; d >= 0; d--) {
    int i = d - off;
    int64_t xd = i >= 0 ? xs[i] : 1;
    int yi = i - (xs.ndim() - ys.ndim());
    int64_t yd = (i >= 0 && yi >= 0) ? ys[yi] : 1;
    rd.xstride[d] = stride;
    rd.ydims[d] = yd;
    rd.rdims[d] = yd == xd ? 1 : xd;
    stride *= xd;
  }
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

}  // namespace

void register_elementwise() {
  ops::binary_forward_table().set(Device::cuda, &binary_forward);
  ops::binary_backward_table().set(Device::cuda, &binary_backward);
  ops::axpby_table().set(Device::cuda, &axpby);
  ops::sum_to_table().set(Device::cuda, &sum_to);
}

}  // namespace dbt::cuda
