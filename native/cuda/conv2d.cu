// conv2d on the GPU as implicit GEMM: the im2col matrix is gathered tile by tile inside the GEMM engine
// (gemm_engine.cuh) and never stored. Per image b:
//   forward  y[b]  [O, P]      = w [O, C*KH*KW] @ im2col(x[b]) [C*KH*KW, P]          (+ bias[o])
//   dgrad    dx[b] [C, H*W]    = wT [C, O*KH*KW] @ gather(dy[b]) [O*KH*KW, H*W]     (wT: w transposed once)
//   wgrad    dw    [O, C*KH*KW] += dy [O, (b, P)] @ im2col(x)^T [(b, P), C*KH*KW]   (K runs over all images)
// 1x1 stride-1 unpadded convolutions (proj_in/out, skips, quant convs) are plain products.
#include "common.cuh"
#include "gemm_engine.cuh"
#include "ops/conv2d.h"
#include "reduce.cuh"

namespace dbt::cuda {
// Named (not anonymous): architectures without bf16 tensor cores compile some kernels empty, and
// unreferenced members of internal-linkage types would then be (error-level) warnings.
namespace conv {

using gemm::bits16;
using gemm::Dense;
using gemm::Epilogue;
using gemm::pack8;

struct Geometry {
  int N, C, H, W, O, KH, KW, Ho, Wo, stride, pt, pl;
  int KK() const { return KH * KW; }
};

Geometry geometry(const Tensor& x, const Tensor& w, const ops::Conv2dParams& p, const Shape& ys) {
  for (int64_t v : {x.numel(), w.numel(), ys.numel()})
    if (v > 0x7fffffff) throw OpError("conv2d", "tensor too large for the CUDA kernels (> 2^31 elements)", "");
  return Geometry{int(x.dim(0)), int(x.dim(1)), int(x.dim(2)), int(x.dim(3)), int(w.dim(0)), int(w.dim(2)),
                  int(w.dim(3)), int(ys[2]), int(ys[3]), p.stride, p.pad_top, p.pad_left};
}

// Forward B operand: (row p = output pixel, k = (c, r, q)) -> x[b, c, oh*s - pt + r, ow*s - pl + q].
template <class T> struct Im2colFwd {
  static constexpr bool kKContig = false;
  const T* x;
  Geometry g;
  int rows, K;  // rows = Ho*Wo, K = C*KH*KW

  __device__ __forceinline__ const T* at(int b, int p, int k) const {
    if (p >= rows || k >= K) return nullptr;
    const int kk = g.KH * g.KW, c = k / kk, rs = k - c * kk, r = rs / g.KW, q = rs - r * g.KW;
    const int oh = p / g.Wo, ow = p - oh * g.Wo;
    const int ih = oh * g.stride - g.pt + r, iw = ow * g.stride - g.pl + q;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return nullptr;
    return x + ((int64_t(b) * g.C + c) * g.H + ih) * g.W + iw;
  }
  __device__ __forceinline__ float get(int b, int p, int k) const {
    const T* a = at(b, p, k);
    return a ? to_float(*a) : 0.0f;
  }
  __device__ __forceinline__ uint16_t raw16(int b, int p, int k) const {
    const T* a = at(b, p, k);
    return a ? bits16(a) : 0;
  }
  // 8 consecutive output pixels p..p+7 for one k: decompose k and p once, then walk along the row.
  __device__ __forceinline__ uint4 load8(int b, int p, int k) const {
    uint16_t v[8] = {};
    if (k < K) {
      const int kk = g.KH * g.KW, c = k / kk, rs = k - c * kk, r = rs / g.KW, q = rs - r * g.KW;
      int oh = p / g.Wo, ow = p - oh * g.Wo;
      const T* plane = x + (int64_t(b) * g.C + c) * g.H * g.W;
#pragma unroll
      for (int e = 0; e < 8; e++) {
        if (p + e < rows) {
          const int ih = oh * g.stride - g.pt + r, iw = ow * g.stride - g.pl + q;
          if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) v[e] = bits16(plane + int64_t(ih) * g.W + iw);
        }
        if (++ow == g.Wo) ow = 0, oh++;
      }
    }
    return pack8(v);
  }
};

// Input-gradient B operand: (row p = input pixel (ih, iw), k = (o, r, q)) -> dy[b, o, oh, ow] where
// oh*s = ih + pt - r and ow*s = iw + pl - q (exactly divisible and in range), else 0.
template <class T> struct DgradGather {
  static constexpr bool kKContig = false;
  const T* dy;
  Geometry g;
  int rows, K;  // rows = H*W, K = O*KH*KW

  __device__ __forceinline__ const T* at(int b, int p, int k) const {
    if (p >= rows || k >= K) return nullptr;
    const int kk = g.KH * g.KW, o = k / kk, rs = k - o * kk, r = rs / g.KW, q = rs - r * g.KW;
    const int ih = p / g.W, iw = p - ih * g.W;
    const int th = ih + g.pt - r, tw = iw + g.pl - q;
    if (th < 0 || tw < 0) return nullptr;
    const int oh = th / g.stride, ow = tw / g.stride;
    if (oh * g.stride != th || ow * g.stride != tw || oh >= g.Ho || ow >= g.Wo) return nullptr;
    return dy + ((int64_t(b) * g.O + o) * g.Ho + oh) * g.Wo + ow;
  }
  __device__ __forceinline__ float get(int b, int p, int k) const {
    const T* a = at(b, p, k);
    return a ? to_float(*a) : 0.0f;
  }
  __device__ __forceinline__ uint16_t raw16(int b, int p, int k) const {
    const T* a = at(b, p, k);
    return a ? bits16(a) : 0;
  }
  __device__ __forceinline__ uint4 load8(int b, int p, int k) const { return gemm::gather8(*this, b, p, k); }
};

// Weight-gradient A operand and 1x1 B operand: (row r, k = (n, p)) -> t[n, r, p] for t [N, rows, P]:
// the reduction index runs over every pixel of every image.
template <class T> struct FoldedK {
  static constexpr bool kKContig = true;
  const T* t;
  int rows, K, P;  // K = N*P

  __device__ __forceinline__ const T* addr(int r, int k) const {
    const int n = k / P, p = k - n * P;
    return t + (int64_t(n) * rows + r) * P + p;
  }
  __device__ __forceinline__ float get(int, int r, int k) const { return (r < rows && k < K) ? to_float(*addr(r, k)) : 0.0f; }
  __device__ __forceinline__ uint16_t raw16(int, int r, int k) const { return (r < rows && k < K) ? bits16(addr(r, k)) : 0; }
  __device__ __forceinline__ uint4 load8(int b, int r, int k) const {
    if (r < rows && k + 8 <= K && k / P == (k + 7) / P) {
      const T* a = addr(r, k);
      if ((reinterpret_cast<uintptr_t>(a) & 15) == 0) return *reinterpret_cast<const uint4*>(a);
    }
    return gemm::gather8(*this, b, r, k);
  }
};

// Weight-gradient B operand: (row j = (c, r, q), k = (n, p)) -> x[n, c, oh*s - pt + r, ow*s - pl + q].
template <class T> struct WgradGather {
  static constexpr bool kKContig = true;
  const T* x;
  Geometry g;
  int rows, K;  // rows = C*KH*KW, K = N*Ho*Wo

  __device__ __forceinline__ const T* at(int j, int k) const {
    if (j >= rows || k >= K) return nullptr;
    const int kk = g.KH * g.KW, c = j / kk, rs = j - c * kk, r = rs / g.KW, q = rs - r * g.KW;
    const int P = g.Ho * g.Wo, n = k / P, p = k - n * P, oh = p / g.Wo, ow = p - oh * g.Wo;
    const int ih = oh * g.stride - g.pt + r, iw = ow * g.stride - g.pl + q;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return nullptr;
    return x + ((int64_t(n) * g.C + c) * g.H + ih) * g.W + iw;
  }
  __device__ __forceinline__ float get(int, int j, int k) const {
    const T* a = at(j, k);
    return a ? to_float(*a) : 0.0f;
  }
  __device__ __forceinline__ uint16_t raw16(int, int j, int k) const {
    const T* a = at(j, k);
    return a ? bits16(a) : 0;
  }
  // k..k+7 for one j: decompose j and k once, then walk pixels (wrapping rows and images).
  __device__ __forceinline__ uint4 load8(int, int j, int k) const {
    uint16_t v[8] = {};
    if (j < rows) {
      const int kk = g.KH * g.KW, c = j / kk, rs = j - c * kk, r = rs / g.KW, q = rs - r * g.KW;
      const int P = g.Ho * g.Wo;
      int n = k / P, p = k - n * P, oh = p / g.Wo, ow = p - oh * g.Wo;
#pragma unroll
      for (int e = 0; e < 8; e++) {
        if (k + e < K) {
          const int ih = oh * g.stride - g.pt + r, iw = ow * g.stride - g.pl + q;
          if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
            v[e] = bits16(x + ((int64_t(n) * g.C + c) * g.H + ih) * g.W + iw);
        }
        if (++ow == g.Wo) {
          ow = 0;
          if (++oh == g.Ho) oh = 0, n++;
        }
      }
    }
    return pack8(v);
  }
};

}  // namespace conv

namespace {
using namespace conv;
using gemm::Dense;
using gemm::Epilogue;

template <class T> __global__ void transpose_weight_kernel(const T* w, T* wt, int O, int C, int KK) {
  // wt[c, (o, rq)] = w[o, c, rq]
  const int64_t total = int64_t(O) * C * KK;
  DBT_GRID_STRIDE(i, total) {
    const int64_t c = i / (int64_t(O) * KK), rem = i - c * O * KK, o = rem / KK, rq = rem - o * KK;
    wt[i] = w[(o * C + c) * KK + rq];
  }
}

bool is_pointwise(const Geometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride == 1 && g.pt == 0 && g.pl == 0 && g.Ho == g.H && g.Wo == g.W;
}

template <class T>
void forward_t(const Tensor& x, const Tensor& w, const Tensor* b, const ops::Conv2dParams& p, Tensor& y) {
  const Geometry g = geometry(x, w, p, y.shape());
  const int P = g.Ho * g.Wo, K = g.C * g.KK();
  Epilogue<T> epi;
  epi.c = dptr<T>(y);
  epi.batch_stride = int64_t(g.O) * P;
  epi.ldc = P;
  if (b) {
    epi.bias = dptr<T>(*b);
    epi.bias_mode = 2;
  }
  std::initializer_list<Operand> ops = {{"x", &x}, {"w", &w}, {"b", b}, {"y", &y}};
  Dense<T, true> A{dptr<T>(w), 0, K, g.O, K};
  if (is_pointwise(g))
    gemm::run<T>(A, Dense<T, false>{dptr<T>(x), int64_t(g.C) * P, P, P, g.C}, epi, g.O, P, K, g.N, "conv2d_forward", ops);
  else
    gemm::run<T>(A, Im2colFwd<T>{dptr<T>(x), g, P, K}, epi, g.O, P, K, g.N, "conv2d_forward", ops);
}

template <class T>
void backward_t(const Tensor& x, const Tensor& w, const Tensor& dy, const ops::Conv2dParams& p, Tensor* dx, Tensor* dw,
                Tensor* db) {
  const Geometry g = geometry(x, w, p, dy.shape());
  const int P = g.Ho * g.Wo, HW = g.H * g.W, KK = g.KK();
  std::initializer_list<Operand> ops = {{"x", &x}, {"w", &w}, {"dy", &dy}, {"dx", dx}, {"dw", dw}, {"db", db}};
  const bool pw = is_pointwise(g);
  if (dx) {
    Epilogue<T> epi;
    epi.c = dptr<T>(*dx);
    epi.batch_stride = int64_t(g.C) * HW;
    epi.ldc = HW;
    const int K = g.O * KK;
    if (pw) {  // dx[b] [C, P] = w^T [C, O] @ dy[b] [O, P]
      gemm::run<T>(Dense<T, false>{dptr<T>(w), 0, g.C, g.C, g.O}, Dense<T, false>{dptr<T>(dy), int64_t(g.O) * P, P, P, g.O},
                   epi, g.C, HW, K, g.N, "conv2d_backward", ops);
    } else {
      Tensor wt = Tensor::empty(Shape{g.C, K}, w.dtype(), Device::cuda);
      const int64_t total = int64_t(g.O) * g.C * KK;
      transpose_weight_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(dptr<T>(w), dptr<T>(wt), g.O, g.C, KK);
      check_launch("conv2d_backward", ops);
      gemm::run<T>(Dense<T, true>{dptr<T>(wt), 0, K, g.C, K}, DgradGather<T>{dptr<T>(dy), g, HW, K}, epi, g.C, HW, K,
                   g.N, "conv2d_backward", ops);
    }
  }
  if (dw) {
    Epilogue<T> epi;
    epi.c = dptr<T>(*dw);
    epi.ldc = int64_t(g.C) * KK;
    epi.beta = 1.0f;
    const int K = g.N * P;
    if (int64_t(g.N) * P > 0x7fffffff) throw OpError("conv2d_backward", "too many pixels for one launch", "");
    FoldedK<T> A{dptr<T>(dy), g.O, K, P};
    if (pw)
      gemm::run<T>(A, FoldedK<T>{dptr<T>(x), g.C, K, P}, epi, g.O, g.C, K, 1, "conv2d_backward", ops);
    else
      gemm::run<T>(A, WgradGather<T>{dptr<T>(x), g, g.C * KK, K}, epi, g.O, g.C * KK, K, 1, "conv2d_backward", ops);
  }
  if (db) sum_ajr<T, T>(dptr<T>(dy), g.N, g.O, P, dptr<T>(*db), true, "conv2d_backward");
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const ops::Conv2dParams& p, Tensor& y) {
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "conv2d_forward", forward_t<T>(x, w, b, p, y));
}
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const ops::Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db) {
  DBT_CUDA_FLOAT_SWITCH(dy.dtype(), "conv2d_backward", backward_t<T>(x, w, dy, p, dx, dw, db));
}

}  // namespace

void register_conv2d() {
  ops::conv2d_forward_table().set(Device::cuda, &conv2d_forward);
  ops::conv2d_backward_table().set(Device::cuda, &conv2d_backward);
}

}  // namespace dbt::cuda
