// GroupNorm (+ fused SiLU) and LayerNorm, forward and backward. Statistics and gradient sums in f32 over
// fixed reduction trees (deterministic). A group's statistics are merged from per-chunk (mean, M2) pairs in
// chunk order (Chan et al.), so one group may span many blocks without the cancellation of E[x²] - E[x]².
// Outputs are written element-wise by separate kernels (any element count per group runs fully parallel),
// reading each element once more; in-place use (y = x, dx = dy) is safe: every element is read before the
// same thread writes it.
#include "common.cuh"
#include "ops/norm.h"
#include "reduce.cuh"

namespace dbt::cuda {
namespace {

using ops::GroupNormParams;

constexpr int64_t kGnChunk = 8192;  // elements of one group per statistics block
constexpr int64_t kLnRows = 64;     // rows per partial of the LayerNorm gamma/beta gradients

__device__ __forceinline__ float sigmoidf_(float z) { return 1.0f / (1.0f + expf(-z)); }

// ---- GroupNorm forward ----
// Block (g, c): chunk c of group g (groups contiguous: cnt elements each). Writes the chunk's mean and M2.
template <class T>
__global__ void gn_stats_partial_kernel(const T* __restrict__ x, int64_t cnt, int64_t chunks, float* __restrict__ pmean,
                                        float* __restrict__ pm2) {
  __shared__ float scratch[32];
  const int64_t grp = blockIdx.x, c = blockIdx.y;
  const T* xg = x + grp * cnt;
  const int64_t i0 = c * kGnChunk, i1 = min(cnt, i0 + kGnChunk);
  float s = 0.0f;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) s += to_float(xg[i]);
  s = block_sum(s, scratch);
  const float m = s / float(i1 - i0);
  float q = 0.0f;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const float d = to_float(xg[i]) - m;
    q += d * d;
  }
  q = block_sum(q, scratch);
  if (threadIdx.x == 0) {
    pmean[grp * chunks + c] = m;
    pm2[grp * chunks + c] = q;
  }
}

// One thread per group: merges the chunks in order; stats[2 * grp] = mean, stats[2 * grp + 1] = rstd (f32).
template <class T>
__global__ void gn_stats_final_kernel(const float* __restrict__ pmean, const float* __restrict__ pm2, int64_t groups,
                                      int64_t cnt, int64_t chunks, float eps, float* __restrict__ stats,
                                      T* __restrict__ mean_out, T* __restrict__ rstd_out) {
  DBT_GRID_STRIDE(grp, groups) {
    float na = 0.0f, mean = 0.0f, m2 = 0.0f;
    for (int64_t c = 0; c < chunks; c++) {
      const float nb = float(min(cnt, (c + 1) * kGnChunk) - c * kGnChunk);
      const float mb = pmean[grp * chunks + c], n = na + nb, delta = mb - mean;
      mean += delta * (nb / n);
      m2 += pm2[grp * chunks + c] + delta * delta * (na * nb / n);
      na = n;
    }
    const float rs = 1.0f / sqrtf(fmaxf(m2, 0.0f) / float(cnt) + eps);
    stats[2 * grp] = mean;
    stats[2 * grp + 1] = rs;
    if (mean_out) mean_out[grp] = from_float<T>(mean);
    if (rstd_out) rstd_out[grp] = from_float<T>(rs);
  }
}

// Row blockIdx.x (= n * C + c, S elements; group row / CG) of x [N, C, S]; blockIdx.y and the threads stride
// over the row (no per-element index division).
#define DBT_ROW_STRIDE(s, S) \
  for (int64_t s = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; s < (S); s += int64_t(gridDim.y) * blockDim.x)

template <class T>
__global__ void gn_apply_kernel(const T* x, const T* __restrict__ gamma, const T* __restrict__ beta,
                                const float* __restrict__ stats, int64_t C, int64_t S, int64_t CG, bool silu, T* y) {
  const int64_t row = blockIdx.x, c = row % C, grp = row / CG;
  const float m = stats[2 * grp], rs = stats[2 * grp + 1], ga = to_float(gamma[c]), be = to_float(beta[c]);
  DBT_ROW_STRIDE(s, S) {
    const int64_t i = row * S + s;
    float z = (to_float(x[i]) - m) * rs * ga + be;
    if (silu) z = z * sigmoidf_(z);
    y[i] = from_float<T>(z);
  }
}

// Grid for a row kernel: one block row per (n, c), enough blocks along the row to cover it.
dim3 row_grid(int64_t rows, int64_t S, int threads) {
  if (rows > 0x7fffffff) throw Error("group_norm: too many channels for one launch");
  return dim3(unsigned(rows), unsigned(std::min<int64_t>(65535, std::max<int64_t>(1, (S + threads - 1) / threads))));
}

// ---- GroupNorm backward ----
// d = dy, times silu'(z) when fused (z recomputed from x and the saved statistics).
template <class T>
__device__ __forceinline__ float gn_grad_in(float dy, float xh, float ga, float be, bool silu) {
  if (!silu) return dy;
  const float z = xh * ga + be, s = sigmoidf_(z);
  return dy * (s * (1.0f + z * (1.0f - s)));
}

// Block per (n, c) row of S elements: a[nc] = sum d * xhat, b[nc] = sum d.
template <class T>
__global__ void gn_bwd_rows_kernel(const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ beta,
                                   const T* __restrict__ mean, const T* __restrict__ rstd, const T* __restrict__ dy,
                                   int64_t C, int64_t S, int64_t G, bool silu, float* __restrict__ a,
                                   float* __restrict__ b) {
  __shared__ float scratch[32];
  const int64_t nc = blockIdx.x, n = nc / C, c = nc % C, grp = n * G + c / (C / G);
  const float m = to_float(mean[grp]), rs = to_float(rstd[grp]), ga = to_float(gamma[c]), be = to_float(beta[c]);
  const T* xr = x + nc * S;
  const T* dyr = dy + nc * S;
  float sa = 0.0f, sb = 0.0f;
  for (int64_t i = threadIdx.x; i < S; i += blockDim.x) {
    const float xh = (to_float(xr[i]) - m) * rs;
    const float d = gn_grad_in<T>(to_float(dyr[i]), xh, ga, be, silu);
    sa += d * xh;
    sb += d;
  }
  sa = block_sum(sa, scratch);
  sb = block_sum(sb, scratch);
  if (threadIdx.x == 0) {
    a[nc] = sa;
    b[nc] = sb;
  }
}

// Thread per (n, g): s[2 grp] = sum_c gamma_c b[n, c] (= sum dxhat), s[2 grp + 1] = sum_c gamma_c a[n, c]
// (= sum dxhat * xhat), channels in order.
template <class T>
__global__ void gn_bwd_groups_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                     const T* __restrict__ gamma, int64_t N, int64_t C, int64_t G,
                                     float* __restrict__ s) {
  DBT_GRID_STRIDE(grp, N * G) {
    const int64_t n = grp / G, g = grp % G, CG = C / G;
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t k = 0; k < CG; k++) {
      const int64_t c = g * CG + k;
      const float ga = to_float(gamma[c]);
      s1 += ga * b[n * C + c];
      s2 += ga * a[n * C + c];
    }
    s[2 * grp] = s1;
    s[2 * grp + 1] = s2;
  }
}

// dx = rstd * (d gamma - s1 / cnt - xhat s2 / cnt), rows as in gn_apply_kernel.
template <class T>
__global__ void gn_bwd_dx_kernel(const T* x, const T* __restrict__ gamma, const T* __restrict__ beta,
                                 const T* __restrict__ mean, const T* __restrict__ rstd, const T* dy,
                                 const float* __restrict__ s, int64_t C, int64_t S, int64_t CG, bool silu, T* dx) {
  const int64_t row = blockIdx.x, c = row % C, grp = row / CG;
  const float m = to_float(mean[grp]), rs = to_float(rstd[grp]), ga = to_float(gamma[c]), be = to_float(beta[c]);
  const float inv = 1.0f / float(CG * S), s1 = s[2 * grp] * inv, s2 = s[2 * grp + 1] * inv;
  DBT_ROW_STRIDE(k, S) {
    const int64_t i = row * S + k;
    const float xh = (to_float(x[i]) - m) * rs;
    const float d = gn_grad_in<T>(to_float(dy[i]), xh, ga, be, silu);
    dx[i] = from_float<T>(rs * (d * ga - s1 - xh * s2));
  }
}

int threads_for(int64_t len) { return len >= 256 ? 256 : len >= 128 ? 128 : len >= 64 ? 64 : 32; }

template <class T>
void gn_forward_t(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p, Tensor& y,
                  Tensor* mean, Tensor* rstd) {
  const int64_t N = x.dim(0), C = x.dim(1), G = p.groups, groups = N * G;
  if (groups == 0) return;
  const int64_t S = x.numel() / (N * C), cnt = (C / G) * S, n = x.numel();
  auto operands = {Operand{"x", &x}, Operand{"gamma", &gamma}, Operand{"y", &y}};
  if (n == 0) return;  // empty groups: nothing to normalise
  Tensor stats = Tensor::empty(Shape{groups, 2}, DType::f32, Device::cuda);
  const int64_t chunks = std::max<int64_t>(1, (cnt + kGnChunk - 1) / kGnChunk);
  if (chunks > 65535 || groups > 0x7fffffff) throw Error("group_norm_forward: groups too large for one launch");
  Tensor pm = Tensor::empty(Shape{groups, chunks, 2}, DType::f32, Device::cuda);
  float* pmean = dptr<float>(pm);
  float* pm2 = pmean + groups * chunks;
  cudaStream_t st = stream();
  gn_stats_partial_kernel<T><<<dim3(unsigned(groups), unsigned(chunks)), threads_for(std::min(cnt, kGnChunk)), 0, st>>>(
      dptr<T>(x), cnt, chunks, pmean, pm2);
  check_launch("group_norm_forward", operands);
  gn_stats_final_kernel<T><<<grid_for(groups), kThreads, 0, st>>>(pmean, pm2, groups, cnt, chunks, p.eps,
                                                                  dptr<float>(stats), dptr<T>(mean), dptr<T>(rstd));
  check_launch("group_norm_forward", operands);
  const int threads = threads_for(S);
  gn_apply_kernel<T><<<row_grid(N * C, S, threads), threads, 0, st>>>(dptr<T>(x), dptr<T>(gamma), dptr<T>(beta),
                                                                      dptr<float>(stats), C, S, C / G, p.silu,
                                                                      dptr<T>(y));
  check_launch("group_norm_forward", operands);
}

template <class T>
void gn_backward_t(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  const int64_t N = x.dim(0), C = x.dim(1), G = p.groups;
  if (N * C == 0) return;
  const int64_t S = x.numel() / (N * C), n = x.numel();
  auto operands = {Operand{"x", &x}, Operand{"dy", &dy}, Operand{"dx", dx}, Operand{"dgamma", dgamma}};
  if (N * C > 0x7fffffff) throw Error("group_norm_backward: too many channels for one launch");
  cudaStream_t st = stream();
  Tensor ab = Tensor::empty(Shape{2, N * C}, DType::f32, Device::cuda);
  float* a = dptr<float>(ab);
  float* b = a + N * C;
  gn_bwd_rows_kernel<T><<<unsigned(N * C), threads_for(S), 0, st>>>(dptr<T>(x), dptr<T>(gamma), dptr<T>(beta),
                                                                     dptr<T>(mean), dptr<T>(rstd), dptr<T>(dy), C, S,
                                                                     G, p.silu, a, b);
  check_launch("group_norm_backward", operands);
  // dgamma[c] += sum_n a[n, c]; dbeta[c] += sum_n b[n, c]
  if (dgamma) sum_ajr<float, T>(a, N, C, 1, dptr<T>(dgamma), true, "group_norm_backward");
  if (dbeta) sum_ajr<float, T>(b, N, C, 1, dptr<T>(dbeta), true, "group_norm_backward");
  if (!dx || n == 0) return;
  Tensor s = Tensor::empty(Shape{N * G, 2}, DType::f32, Device::cuda);
  gn_bwd_groups_kernel<T><<<grid_for(N * G), kThreads, 0, st>>>(a, b, dptr<T>(gamma), N, C, G, dptr<float>(s));
  check_launch("group_norm_backward", operands);
  const int threads = threads_for(S);
  gn_bwd_dx_kernel<T><<<row_grid(N * C, S, threads), threads, 0, st>>>(dptr<T>(x), dptr<T>(gamma), dptr<T>(beta),
                                                                       dptr<T>(mean), dptr<T>(rstd), dptr<T>(dy),
                                                                       dptr<float>(s), C, S, C / G, p.silu,
                                                                       dptr<T>(dx));
  check_launch("group_norm_backward", operands);
}

// ---- LayerNorm: one warp per row (rows are short: 320 to 1280 channels in SD) ----
#define DBT_WARP_ROWS(r, R)                                                                      \
  for (int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < (R);                \
       r += (int64_t(gridDim.x) * blockDim.x) >> 5)

template <class T>
__global__ void ln_forward_kernel(const T* x, const T* __restrict__ gamma, const T* __restrict__ beta, int64_t R,
                                  int64_t C, float eps, T* y, T* __restrict__ mean, T* __restrict__ rstd) {
  const int lane = threadIdx.x & 31;
  DBT_WARP_ROWS(r, R) {  // r is the same for the whole warp: the shuffles below see all 32 lanes
    const T* xr = x + r * C;
    float s = 0.0f;
    for (int64_t i = lane; i < C; i += 32) s += to_float(xr[i]);
    const float m = warp_sum(s) / float(C);
    float q = 0.0f;
    for (int64_t i = lane; i < C; i += 32) {
      const float d = to_float(xr[i]) - m;
      q += d * d;
    }
    const float rs = 1.0f / sqrtf(warp_sum(q) / float(C) + eps);
    for (int64_t i = lane; i < C; i += 32)
      y[r * C + i] = from_float<T>((to_float(xr[i]) - m) * rs * to_float(gamma[i]) + to_float(beta[i]));
    if (lane == 0) {
      if (mean) mean[r] = from_float<T>(m);
      if (rstd) rstd[r] = from_float<T>(rs);
    }
  }
}

template <class T>
__global__ void ln_backward_dx_kernel(const T* x, const T* __restrict__ gamma, const T* __restrict__ mean,
                                      const T* __restrict__ rstd, const T* dy, int64_t R, int64_t C, T* dx) {
  const int lane = threadIdx.x & 31;
  DBT_WARP_ROWS(r, R) {
    const float m = to_float(mean[r]), rs = to_float(rstd[r]);
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t i = lane; i < C; i += 32) {
      const float dg = to_float(dy[r * C + i]) * to_float(gamma[i]);
      s1 += dg;
      s2 += dg * (to_float(x[r * C + i]) - m) * rs;
    }
    const float inv = 1.0f / float(C);
    s1 = warp_sum(s1) * inv;
    s2 = warp_sum(s2) * inv;
    for (int64_t i = lane; i < C; i += 32) {
      const float xh = (to_float(x[r * C + i]) - m) * rs;
      dx[r * C + i] = from_float<T>(rs * (to_float(dy[r * C + i]) * to_float(gamma[i]) - s1 - xh * s2));
    }
  }
}

// Thread per (column, chunk of kLnRows rows): pa[chunk, c] = sum d * xhat, pb[chunk, c] = sum d.
template <class T>
__global__ void ln_backward_param_partial_kernel(const T* __restrict__ x, const T* __restrict__ mean,
                                                 const T* __restrict__ rstd, const T* __restrict__ dy, int64_t R,
                                                 int64_t C, float* __restrict__ pa, float* __restrict__ pb) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int64_t r0 = int64_t(blockIdx.y) * kLnRows, r1 = min(R, r0 + kLnRows);
  float sa = 0.0f, sb = 0.0f;
  for (int64_t r = r0; r < r1; r++) {
    const float d = to_float(dy[r * C + c]);
    sa += d * (to_float(x[r * C + c]) - to_float(mean[r])) * to_float(rstd[r]);
    sb += d;
  }
  pa[int64_t(blockIdx.y) * C + c] = sa;
  pb[int64_t(blockIdx.y) * C + c] = sb;
}

unsigned warp_rows_grid(int64_t R) { return grid_for(R * 32); }

template <class T>
void ln_forward_t(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y, Tensor* mean,
                  Tensor* rstd) {
  const int64_t C = x.dim(-1), R = C ? x.numel() / C : 0;
  if (R == 0 || C == 0) return;
  ln_forward_kernel<T><<<warp_rows_grid(R), kThreads, 0, stream()>>>(dptr<T>(x), dptr<T>(gamma), dptr<T>(beta), R, C,
                                                                     eps, dptr<T>(y), dptr<T>(mean), dptr<T>(rstd));
  check_launch("layer_norm_forward", {{"x", &x}, {"gamma", &gamma}, {"y", &y}});
}

template <class T>
void ln_backward_t(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                   Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  const int64_t C = x.dim(-1), R = C ? x.numel() / C : 0;
  if (R == 0 || C == 0) return;
  auto operands = {Operand{"x", &x}, Operand{"dy", &dy}, Operand{"dx", dx}, Operand{"dgamma", dgamma}};
  cudaStream_t st = stream();
  if (dx) {
    ln_backward_dx_kernel<T><<<warp_rows_grid(R), kThreads, 0, st>>>(dptr<T>(x), dptr<T>(gamma), dptr<T>(mean),
                                                                     dptr<T>(rstd), dptr<T>(dy), R, C, dptr<T>(dx));
    check_launch("layer_norm_backward", operands);
  }
  if (!dgamma && !dbeta) return;
  const int64_t chunks = (R + kLnRows - 1) / kLnRows;
  if (chunks > 65535) throw Error("layer_norm_backward: too many rows for one launch");
  Tensor part = Tensor::empty(Shape{2, chunks, C}, DType::f32, Device::cuda);
  float* pa = dptr<float>(part);
  float* pb = pa + chunks * C;
  ln_backward_param_partial_kernel<T><<<dim3(unsigned((C + 127) / 128), unsigned(chunks)), 128, 0, st>>>(
      dptr<T>(x), dptr<T>(mean), dptr<T>(rstd), dptr<T>(dy), R, C, pa, pb);
  check_launch("layer_norm_backward", operands);
  if (dgamma) sum_ajr<float, T>(pa, chunks, C, 1, dptr<T>(dgamma), true, "layer_norm_backward");
  if (dbeta) sum_ajr<float, T>(pb, chunks, C, 1, dptr<T>(dbeta), true, "layer_norm_backward");
}

void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p, Tensor& y,
                        Tensor* mean, Tensor* rstd) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "group_norm_forward", gn_forward_t<T>(x, gamma, beta, p, y, mean, rstd));
}
void group_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma,
                         Tensor* dbeta) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "group_norm_backward",
                        gn_backward_t<T>(x, gamma, beta, mean, rstd, dy, p, dx, dgamma, dbeta));
}
void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y, Tensor* mean,
                        Tensor* rstd) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "layer_norm_forward", ln_forward_t<T>(x, gamma, beta, eps, y, mean, rstd));
}
void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  DBT_CUDA_FLOAT_SWITCH(x.dtype(), "layer_norm_backward",
                        ln_backward_t<T>(x, gamma, mean, rstd, dy, dx, dgamma, dbeta));
}

}  // namespace

void register_norm() {
  ops::group_norm_forward_table().set(Device::cuda, &group_norm_forward);
  ops::group_norm_backward_table().set(Device::cuda, &group_norm_backward);
  ops::layer_norm_forward_table().set(Device::cuda, &layer_norm_forward);
  ops::layer_norm_backward_table().set(Device::cuda, &layer_norm_backward);
}

}  // namespace dbt::cuda
