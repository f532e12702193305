// The matrix-product engine behind gemm, linear and the implicit-GEMM convolutions.
//
//   out(b, m, n) = sum_k A(b, m, k) * B(b, k, n)      (f32 accumulation), handed to an Epilogue
//
// Operands are read through loaders, so a convolution's im2col matrix is gathered on the fly and never
// stored. A loader addresses its operand as (row, k): rows are M for A and N for B.
//   kKContig                      true when k is the contiguous dimension in memory (else rows are)
//   float get(b, row, k)          one element as f32, 0 outside [0, rows) x [0, K)
//   uint4 load8(b, row, k)        8 16-bit elements along the contiguous dimension (k..k+7 or row..row+7),
//                                 zero-filled outside; element e in bits [16e, 16e+16)
//
// Paths: f16/bf16 use tensor cores (WMMA 16x16x16, f32 accumulators; bf16 needs sm_80+), with 128x128 or
// 64x64 block tiles, BK = 32, double-buffered shared memory fed through registers. f32 uses an exact
// SIMT kernel (64x64 tiles, 4x4 per thread) so f32 results match the CPU to ~1e-6.
// Split-K: when the output has too few tiles to fill the GPU, K is cut into `splits` ranges (multiples of
// BK) whose partial sums go to an f32 workspace and are added in split order (deterministic).
#pragma once
#include <mma.h>

#include <type_traits>

#include "common.cuh"
#include "gemm_plan.h"

namespace dbt::cuda::gemm {

// ---- 16-bit element helpers ----
template <class T> __device__ __forceinline__ uint16_t bits16(const T* p) {
  return *reinterpret_cast<const uint16_t*>(p);
}
__device__ __forceinline__ uint4 pack8(const uint16_t (&v)[8]) {
  return make_uint4(uint32_t(v[0]) | (uint32_t(v[1]) << 16), uint32_t(v[2]) | (uint32_t(v[3]) << 16),
                    uint32_t(v[4]) | (uint32_t(v[5]) << 16), uint32_t(v[6]) | (uint32_t(v[7]) << 16));
}

// Eight elements through the loader's scalar raw16(b, row, k) (0 outside), along its contiguous dim.
template <class L> __device__ __forceinline__ uint4 gather8(const L& l, int b, int row, int k) {
  uint16_t v[8];
#pragma unroll
  for (int e = 0; e < 8; e++) v[e] = L::kKContig ? l.raw16(b, row, k + e) : l.raw16(b, row + e, k);
  return pack8(v);
}

// A plain strided matrix: element (row, k) at p[b * batch_stride + row * ld + k] (k contiguous) or
// p[b * batch_stride + k * ld + row] (rows contiguous). batch_stride 0 shares one matrix across batches.
template <class T, bool KCONTIG> struct Dense {
  static constexpr bool kKContig = KCONTIG;
  const T* p;
  int64_t batch_stride;
  int64_t ld;
  int rows, K;

  __device__ __forceinline__ const T* addr(int b, int r, int k) const {
    return p + int64_t(b) * batch_stride + (KCONTIG ? int64_t(r) * ld + k : int64_t(k) * ld + r);
  }
  __device__ __forceinline__ bool in(int r, int k) const { return r < rows && k < K; }
  __device__ __forceinline__ float get(int b, int r, int k) const { return in(r, k) ? to_float(*addr(b, r, k)) : 0.0f; }
  __device__ __forceinline__ uint16_t raw16(int b, int r, int k) const { return in(r, k) ? bits16(addr(b, r, k)) : 0; }
  __device__ __forceinline__ uint4 load8(int b, int r, int k) const {
    const bool full = KCONTIG ? (r < rows && k + 8 <= K) : (k < K && r + 8 <= rows);
    if (full) {
      const T* a = addr(b, r, k);
      if ((reinterpret_cast<uintptr_t>(a) & 15) == 0) return *reinterpret_cast<const uint4*>(a);
    }
    return gather8(*this, b, r, k);
  }
};

// ---- epilogue ----
// Final value: alpha * acc (+ bias[n] or bias[m]) (+ beta * old c), stored at
// c[b * batch_stride + m * ldc + n]. With ws set, the kernel stores raw partial sums of split `split` to
// ws[((split * batches + b) * M + m) * N + n] and finish() runs in the split-K reduction.
template <class T> struct Epilogue {
  T* c = nullptr;
  int64_t batch_stride = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  const T* bias = nullptr;
  int bias_mode = 0;  // 0 none, 1 bias[n], 2 bias[m]
  float* ws = nullptr;
  int M = 0, N = 0, batches = 1;

  __device__ __forceinline__ void finish(int b, int m, int n, float acc) const {
    float v = alpha * acc;
    if (bias_mode == 1) v += to_float(bias[n]);
    else if (bias_mode == 2) v += to_float(bias[m]);
    T* p = c + int64_t(b) * batch_stride + int64_t(m) * ldc + n;
    if (beta != 0.0f) v += beta * to_float(*p);
    *p = from_float<T>(v);
  }
  __device__ __forceinline__ void operator()(int b, int split, int m, int n, float acc) const {
    if (ws) ws[((int64_t(split) * batches + b) * M + m) * N + n] = acc;
    else finish(b, m, n, acc);
  }
};

struct Range {
  int M, N, K;
  int batches, splits, k_per_split;  // k_per_split: a multiple of every BK used
};

// ---- tensor-core kernel ----
constexpr int kPad = 8;  // 16 bytes: keeps WMMA pointers 32-byte aligned and spreads banks

template <bool KCONTIG, int ROWS> struct TileShape {
  // KCONTIG: [ROWS][BK + pad] (row-major in k); else [BK][ROWS + pad].
  static constexpr int kLd = KCONTIG ? kBK + kPad : ROWS + kPad;
  static constexpr int kElems = KCONTIG ? ROWS * kLd : kBK * kLd;
  static constexpr int kChunks = ROWS * kBK / 8;  // 8-element chunks per tile
  // WMMA needs ldm a multiple of 8 (16-bit) and 32-byte aligned fragment pointers; the uint4 stores need
  // 16-byte chunk offsets. Fragments start at multiples of 16 rows/k (16 * kLd * 2 bytes: a multiple of 32
  // when kLd is a multiple of 8), in buffers of kElems elements from a 128-byte aligned base.
  static_assert(kLd % 8 == 0, "WMMA ldm (16-bit) must be a multiple of 8");
  static_assert(kElems * 2 % 32 == 0, "each tile buffer must keep fragment pointers 32-byte aligned");
  static_assert(ROWS % 16 == 0 && kBK % 16 == 0, "tiles hold whole 16x16 fragments");
  // Shared-memory offset of chunk c and its (row, k) within the tile.
  __device__ static __forceinline__ void chunk(int c, int& row, int& k, int& off) {
    if (KCONTIG) {
      row = c / (kBK / 8);
      k = (c % (kBK / 8)) * 8;
      off = row * kLd + k;
    } else {
      k = c / (ROWS / 8);
      row = (c % (ROWS / 8)) * 8;
      off = k * kLd + row;
    }
  }
};

template <class T, class LA, class LB, class Epi, int BM, int BN, int WM, int WN>
__device__ __forceinline__ void tc_body(const LA& la, const LB& lb, const Epi& epi, const Range& pr) {
  using namespace nvcuda;
  constexpr int kThreadsTc = WM * WN * 32;
  constexpr int kWarpM = BM / WM, kWarpN = BN / WN;
  constexpr int FM = kWarpM / 16, FN = kWarpN / 16;
  using TA = TileShape<LA::kKContig, BM>;
  using TB = TileShape<LB::kKContig, BN>;
  static_assert(TA::kChunks % kThreadsTc == 0 && TB::kChunks % kThreadsTc == 0, "tile chunks must split evenly");
  constexpr int CA = TA::kChunks / kThreadsTc, CB = TB::kChunks / kThreadsTc;
  constexpr int kPipeBytes = 2 * (TA::kElems + TB::kElems) * 2;
  constexpr int kEpiBytes = WM * WN * 16 * 16 * 4;
  constexpr int kSmemBytes = kPipeBytes > kEpiBytes ? kPipeBytes : kEpiBytes;
  static_assert(kSmemBytes <= 48 * 1024, "static shared memory limit");
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  uint16_t* As = reinterpret_cast<uint16_t*>(smem);
  uint16_t* Bs = As + 2 * TA::kElems;

  using LayoutA = std::conditional_t<LA::kKContig, wmma::row_major, wmma::col_major>;
  using LayoutB = std::conditional_t<LB::kKContig, wmma::col_major, wmma::row_major>;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int z = blockIdx.z, b = z / pr.splits, split = z % pr.splits;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int wm0 = (warp / WN) * kWarpM, wn0 = (warp % WN) * kWarpN;
  const int kb = split * pr.k_per_split;
  const int ke = min(pr.K, kb + pr.k_per_split);
  const int ntiles = ke > kb ? (ke - kb + kBK - 1) / kBK : 0;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

  uint4 ra[CA], rb[CB];
  auto load = [&](int k0) {
#pragma unroll
    for (int i = 0; i < CA; i++) {
      int row, k, off;
      TA::chunk(tid + i * kThreadsTc, row, k, off);
      ra[i] = la.load8(b, m0 + row, k0 + k);
    }
#pragma unroll
    for (int i = 0; i < CB; i++) {
      int row, k, off;
      TB::chunk(tid + i * kThreadsTc, row, k, off);
      rb[i] = lb.load8(b, n0 + row, k0 + k);
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < CA; i++) {
      int row, k, off;
      TA::chunk(tid + i * kThreadsTc, row, k, off);
      *reinterpret_cast<uint4*>(As + buf * TA::kElems + off) = ra[i];
    }
#pragma unroll
    for (int i = 0; i < CB; i++) {
      int row, k, off;
      TB::chunk(tid + i * kThreadsTc, row, k, off);
      *reinterpret_cast<uint4*>(Bs + buf * TB::kElems + off) = rb[i];
    }
  };

  if (ntiles > 0) {
    load(kb);
    store(0);
  }
  __syncthreads();
  for (int t = 0; t < ntiles; t++) {
    const int buf = t & 1;
    if (t + 1 < ntiles) load(kb + (t + 1) * kBK);  // global loads in flight during the MMAs
    const T* a_tile = reinterpret_cast<const T*>(As + buf * TA::kElems);
    const T* b_tile = reinterpret_cast<const T*>(Bs + buf * TB::kElems);
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LayoutA> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; i++) {
        const int m = wm0 + i * 16;
        wmma::load_matrix_sync(fa[i], a_tile + (LA::kKContig ? m * TA::kLd + kk : kk * TA::kLd + m), TA::kLd);
      }
#pragma unroll
      for (int j = 0; j < FN; j++) {
        const int n = wn0 + j * 16;
        wmma::load_matrix_sync(fb[j], b_tile + (LB::kKContig ? n * TB::kLd + kk : kk * TB::kLd + n), TB::kLd);
      }
#pragma unroll
      for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    // The other buffer was last read in iteration t-1, which every thread finished before the barrier
    // that ended it; the barrier below publishes this store before iteration t+1 reads it.
    if (t + 1 < ntiles) store(buf ^ 1);
    __syncthreads();
  }

  // Epilogue: each warp stages one 16x16 accumulator at a time in its own 1 KiB of shared memory (the
  // pipeline buffers are free: the loop ended with a barrier), then lanes write 8 consecutive n each.
  float* scratch = reinterpret_cast<float*>(smem) + warp * 256;
  const int row = lane >> 1, c0 = (lane & 1) * 8;
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int gm = m0 + wm0 + i * 16 + row, gn0 = n0 + wn0 + j * 16 + c0;
      if (gm < pr.M)
#pragma unroll
        for (int e = 0; e < 8; e++)
          if (gn0 + e < pr.N) epi(b, split, gm, gn0 + e, scratch[row * 16 + c0 + e]);
      __syncwarp();
    }
}

template <class T, class LA, class LB, class Epi, int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__(WM * WN * 32) gemm_tc_kernel(LA la, LB lb, Epi epi, Range pr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
#if __CUDA_ARCH__ >= 800
    tc_body<T, LA, LB, Epi, BM, BN, WM, WN>(la, lb, epi, pr);
#else
    __trap();  // no bf16 tensor cores before sm_80: run() refuses these launches; never write nothing silently
#endif
  } else {
    tc_body<T, LA, LB, Epi, BM, BN, WM, WN>(la, lb, epi, pr);
  }
#endif
}

// ---- exact f32 kernel (SIMT) ----
template <class LA, class LB, class Epi>
__global__ void __launch_bounds__(256) gemm_simt_kernel(LA la, LB lb, Epi epi, Range pr) {
  __shared__ float As[kSimtBK][kSimtBM + 4];
  __shared__ float Bs[kSimtBK][kSimtBN + 4];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int z = blockIdx.z, b = z / pr.splits, split = z % pr.splits;
  const int m0 = blockIdx.y * kSimtBM, n0 = blockIdx.x * kSimtBN;
  const int kb = split * pr.k_per_split;
  const int ke = min(pr.K, kb + pr.k_per_split);
  float acc[4][4] = {};
  for (int k0 = kb; k0 < ke; k0 += kSimtBK) {
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int idx = tid + e * 256;
      int r, k;
      if (LA::kKContig) r = idx / kSimtBK, k = idx % kSimtBK;
      else k = idx / kSimtBM, r = idx % kSimtBM;
      As[k][r] = la.get(b, m0 + r, k0 + k);
      if (LB::kKContig) r = idx / kSimtBK, k = idx % kSimtBK;
      else k = idx / kSimtBN, r = idx % kSimtBN;
      Bs[k][r] = lb.get(b, n0 + r, k0 + k);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kSimtBK; k++) {
      float a[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) bv[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < pr.M && n < pr.N) epi(b, split, m, n, acc[i][j]);
    }
}

// Split-K reduction: partial sums added in split order, then the epilogue's final step.
template <class Epi> __global__ void splitk_reduce_kernel(Epi epi, const float* ws, int splits, int64_t total) {
  DBT_GRID_STRIDE(i, total) {
    float s = 0.0f;
    for (int q = 0; q < splits; q++) s += ws[q * total + i];
    const int64_t mn = int64_t(epi.M) * epi.N;
    const int b = int(i / mn);
    const int64_t r = i % mn;
    epi.finish(b, int(r / epi.N), int(r % epi.N), s);
  }
}

// ---- launcher ----
// Runs the product for all batches; `op` and `operands` name the caller in errors. Returns after queuing.
template <class T, class LA, class LB>
void run(const LA& la, const LB& lb, Epilogue<T> epi, int M, int N, int K, int batches, const char* op,
         std::initializer_list<Operand> operands) {
  if (M <= 0 || N <= 0 || batches <= 0) return;
  const DeviceProps& dev = device();
  if (std::is_same_v<T, __nv_bfloat16> && dev.cc() < 80)
    throw OpError(op, "bf16 matrix products need compute capability 8.0 or newer (this GPU is " +
                          std::to_string(dev.major) + "." + std::to_string(dev.minor) + "): use f16 or f32",
                  describe_operands(operands));
  constexpr bool kSimt = std::is_same_v<T, float>;
  const Plan pl = plan(M, N, K, batches, dev.sms, kSimt);
  if (pl.error) throw OpError(op, std::string(pl.error) + " (" + std::to_string(batches) + " batches, M " +
                                      std::to_string(M) + ", " + std::to_string(pl.splits) + " K splits)",
                              describe_operands(operands));
  const bool big = pl.big;
  const int splits = pl.splits, k_per_split = pl.k_per_split;

  Tensor ws;
  Epilogue<T> kepi = epi;
  if (splits > 1) {
    ws = Tensor::empty(Shape{int64_t(splits) * batches * M * N}, DType::f32, Device::cuda);
    kepi.ws = static_cast<float*>(ws.raw());
  }
  kepi.M = M;
  kepi.N = N;
  kepi.batches = batches;
  epi.M = M;
  epi.N = N;
  epi.batches = batches;
  Range pr{M, N, K, batches, splits, k_per_split};
  cudaStream_t st = stream();
  dim3 grid(unsigned(pl.grid_x), unsigned(pl.grid_y), unsigned(pl.grid_z));
  if constexpr (kSimt) {
    gemm_simt_kernel<LA, LB, Epilogue<T>><<<grid, 256, 0, st>>>(la, lb, kepi, pr);
  } else {
    if (big) gemm_tc_kernel<T, LA, LB, Epilogue<T>, 128, 128, 2, 4><<<grid, 256, 0, st>>>(la, lb, kepi, pr);
    else gemm_tc_kernel<T, LA, LB, Epilogue<T>, 64, 64, 2, 2><<<grid, 128, 0, st>>>(la, lb, kepi, pr);
  }
  check_launch(op, operands);
  if (splits > 1) {
    const int64_t total = int64_t(batches) * M * N;
    splitk_reduce_kernel<Epilogue<T>><<<grid_for(total), kThreads, 0, st>>>(epi, kepi.ws, splits, total);
    check_launch(op, operands);
  }
}

}  // namespace dbt::cuda::gemm
