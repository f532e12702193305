// Scaled-dot-product attention on the GPU, flash style: scores are computed tile by tile in shared memory
// and never stored for more than 32 keys (or queries) at a time; softmax is online, accumulation in f32.
// Layouts are the CPU op's (ops/attention.h): q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*Dv], heads
// interleaved in the channel dim; lse [B, H, Nq] in natural log.
//
// One warp owns 16 rows (queries in the forward and dQ pass, keys in the dK/dV pass); a block has 1, 2 or
// 4 warps (the most whose shared memory fits the device) and walks over tiles of 32 keys (or queries)
// that all its warps share. Head dims are padded with zeros to DP (a multiple of 16: 32, 48, 64, 80, 128,
// 160 or 256), so D = 40 runs as 48 and D = 80, 160 run unpadded.
//   f16/bf16: products on tensor cores (WMMA 16x16x16, f32 accumulators; bf16 needs sm_80+). The output
//             accumulator stays in registers; it is rescaled per row through a fragment of row indices
//             (the accumulator's element-to-row map is opaque, so it is read once from a known matrix).
//   f32:      the same kernels with exact SIMT products (fmaf), so f32 matches the CPU to ~1e-6.
// Backward (deterministic, no atomics): delta_i = dout_i . out_i; one pass over key blocks writes dK and
// dV (each key row owned by one warp), one pass over query blocks writes dQ. Scores are recomputed from
// the log-sum-exp; with f16/bf16 operands the saved lse is itself rounded (bf16: up to ~3 % error in P),
// so the backward first recomputes it in f32 (one extra Q.K^T sweep).
#include <mma.h>

#include <cmath>
#include <type_traits>

#include "attention_plan.h"
#include "common.cuh"
#include "ops/attention.h"

namespace dbt::cuda {
// Named (not anonymous): on sm_75 the bf16 kernels compile empty, and unreferenced members of
// internal-linkage types would then be (error-level) warnings.
namespace attn {

template <class T> constexpr int pad_of() { return pad_for(int(sizeof(T))); }
template <class T, int DP> constexpr int ld_dp() { return row_ld(int(sizeof(T)), DP); }
template <class T> constexpr int ld_p() { return p_ld(int(sizeof(T))); }
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Geo {
  int B, Nq, Nk, H, D, Dv;
  float scale;   // the op's scale (natural-log domain)
  float scale2;  // scale * log2(e): scores in the log2 domain for exp2f
  bool causal;
};

// Rows [r0, r0 + n) of one head's [rows, cols] slice (element (r, c) at src[r * rs + c]) into dst[r][0, DP),
// zero outside [0, valid) x [0, cols). All threads of the block (or `nthreads` of them) cooperate.
template <class T, int DP>
__device__ __forceinline__ void load_rows(T* dst, const T* src, int64_t rs, int r0, int n, int valid, int cols,
                                          int tid, int nthreads) {
  constexpr int V = 16 / int(sizeof(T));
  constexpr int kChunks = DP / V;
  constexpr int LD = ld_dp<T, DP>();
  static_assert(LD * sizeof(T) % 16 == 0 && DP % V == 0, "16-byte row chunks in the tile");
  const bool vec = ((reinterpret_cast<uintptr_t>(src) | uintptr_t(rs * int64_t(sizeof(T)))) & 15) == 0;
  for (int i = tid; i < n * kChunks; i += nthreads) {
    const int r = i / kChunks, c0 = (i - r * kChunks) * V, gr = r0 + r;
    T* d = dst + r * LD + c0;
    const T* s = src + int64_t(gr) * rs + c0;
    if (gr < valid && vec && c0 + V <= cols) {
      *reinterpret_cast<uint4*>(d) = *reinterpret_cast<const uint4*>(s);
    } else {
#pragma unroll
      for (int e = 0; e < V; e++) d[e] = (gr < valid && c0 + e < cols) ? s[e] : from_float<T>(0.0f);
    }
  }
}

// ---- warp-level products: tensor cores (f16/bf16) ----
// Interface shared with SimtWarp:
//   nt(S, A, lda, B, ldb)        S[16][kTile] (f32, ld kLdS) = A[16][DP] . B[kTile][DP]^T   (row-major A, B)
//   acc_nn(acc, A, lda, B, ldb)  acc[16][DP] += A[16][kTile] . B[kTile][DP]
//   scale_rows(acc, rows, f)     acc row r *= f[r]
//   store(acc, rows, f, stage, w) w(r, c, acc[r][c] * f[r]) for every element (stage: 16 x kLdS f32 scratch)
template <class T, int DP> struct TcWarp {
  using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, T, nvcuda::wmma::row_major>;
  using FragBc = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, T, nvcuda::wmma::col_major>;
  using FragBr = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, T, nvcuda::wmma::row_major>;
  using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
  static constexpr int kF = DP / 16;
  // WMMA: ldm a multiple of 8 (16-bit) or 4 (f32 scores); every fragment pointer 32-byte aligned. Regions
  // are 128-byte aligned (Carve); within them fragments start at multiples of 16 rows and 16 columns, and
  // each warp's slice of a region is 16 rows.
  static_assert(sizeof(T) == 2 && DP % 16 == 0 && kTile % 16 == 0, "16-bit operands, whole 16x16 fragments");
  static_assert(ld_dp<T, DP>() % 8 == 0 && ld_p<T>() % 8 == 0 && kLdS % 4 == 0, "WMMA ldm");
  static_assert(16 * ld_dp<T, DP>() * 2 % 32 == 0 && 16 * ld_p<T>() * 2 % 32 == 0 && 16 * kLdS * 4 % 32 == 0,
                "per-warp and per-fragment offsets keep 32-byte alignment");
  struct Acc {
    FragC f[kF];
  };
  struct Rows {
    int r[FragC::num_elements];
  };

  // The row of each accumulator element, read from a matrix whose element (r, c) is r.
  __device__ static void init_rows(Rows& rows, float* stage) {
    const int lane = threadIdx.x & 31;
    for (int i = lane; i < 256; i += 32) stage[(i >> 4) * kLdS + (i & 15)] = float(i >> 4);
    __syncwarp();
    FragC t;
    nvcuda::wmma::load_matrix_sync(t, stage, kLdS, nvcuda::wmma::mem_row_major);
#pragma unroll
    for (int e = 0; e < FragC::num_elements; e++) rows.r[e] = int(t.x[e]);
    __syncwarp();
  }
  __device__ static void zero(Acc& acc) {
#pragma unroll
    for (int f = 0; f < kF; f++) nvcuda::wmma::fill_fragment(acc.f[f], 0.0f);
  }
  __device__ static void nt(float* S, const T* A, int lda, const T* B, int ldb) {
    FragC c[kTile / 16];
#pragma unroll
    for (int j = 0; j < kTile / 16; j++) nvcuda::wmma::fill_fragment(c[j], 0.0f);
#pragma unroll
    for (int kk = 0; kk < DP; kk += 16) {
      FragA a;
      nvcuda::wmma::load_matrix_sync(a, A + kk, lda);
#pragma unroll
      for (int j = 0; j < kTile / 16; j++) {
        FragBc b;
        nvcuda::wmma::load_matrix_sync(b, B + j * 16 * ldb + kk, ldb);
        nvcuda::wmma::mma_sync(c[j], a, b, c[j]);
      }
    }
#pragma unroll
    for (int j = 0; j < kTile / 16; j++)
      nvcuda::wmma::store_matrix_sync(S + j * 16, c[j], kLdS, nvcuda::wmma::mem_row_major);
  }
  __device__ static void acc_nn(Acc& acc, const T* A, int lda, const T* B, int ldb) {
#pragma unroll
    for (int kk = 0; kk < kTile; kk += 16) {
      FragA a;
      nvcuda::wmma::load_matrix_sync(a, A + kk, lda);
#pragma unroll
      for (int f = 0; f < kF; f++) {
        FragBr b;
        nvcuda::wmma::load_matrix_sync(b, B + kk * ldb + f * 16, ldb);
        nvcuda::wmma::mma_sync(acc.f[f], a, b, acc.f[f]);
      }
    }
  }
  __device__ static void scale_rows(Acc& acc, const Rows& rows, const float* f) {
#pragma unroll
    for (int i = 0; i < kF; i++)
#pragma unroll
      for (int e = 0; e < FragC::num_elements; e++) acc.f[i].x[e] *= f[rows.r[e]];
  }
  template <class W> __device__ static void store(const Acc& acc, const Rows&, const float* f, float* stage, W&& w) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < kF; i++) {
      nvcuda::wmma::store_matrix_sync(stage, acc.f[i], kLdS, nvcuda::wmma::mem_row_major);
      __syncwarp();
      for (int x = lane; x < 256; x += 32) {
        const int r = x >> 4, c = x & 15;
        w(r, i * 16 + c, stage[r * kLdS + c] * f[r]);
      }
      __syncwarp();
    }
  }
};

// ---- warp-level products: exact f32 (SIMT) ----
// Lane l works on row l & 15: score columns (l >> 4) * 16 + [0, 16), accumulator columns (l >> 4) + 2t.
template <int DP> struct SimtWarp {
  static constexpr int kC = DP / 2;
  struct Acc {
    float v[kC];
  };
  struct Rows {};
  __device__ static void init_rows(Rows&, float*) {}
  __device__ static void zero(Acc& acc) {
#pragma unroll
    for (int t = 0; t < kC; t++) acc.v[t] = 0.0f;
  }
  __device__ static void nt(float* S, const float* A, int lda, const float* B, int ldb) {
    const int lane = threadIdx.x & 31, r = lane & 15, c0 = (lane >> 4) * 16;
    float s[16];
#pragma unroll
    for (int c = 0; c < 16; c++) s[c] = 0.0f;
    for (int d = 0; d < DP; d++) {
      const float a = A[r * lda + d];
#pragma unroll
      for (int c = 0; c < 16; c++) s[c] = fmaf(a, B[(c0 + c) * ldb + d], s[c]);
    }
#pragma unroll
    for (int c = 0; c < 16; c++) S[r * kLdS + c0 + c] = s[c];
  }
  __device__ static void acc_nn(Acc& acc, const float* A, int lda, const float* B, int ldb) {
    const int lane = threadIdx.x & 31, r = lane & 15, half = lane >> 4;
    for (int j = 0; j < kTile; j++) {
      const float a = A[r * lda + j];
#pragma unroll
      for (int t = 0; t < kC; t++) acc.v[t] = fmaf(a, B[j * ldb + half + 2 * t], acc.v[t]);
    }
  }
  __device__ static void scale_rows(Acc& acc, const Rows&, const float* f) {
    const float s = f[threadIdx.x & 15];
#pragma unroll
    for (int t = 0; t < kC; t++) acc.v[t] *= s;
  }
  template <class W> __device__ static void store(const Acc& acc, const Rows&, const float* f, float*, W&& w) {
    const int lane = threadIdx.x & 31, r = lane & 15, half = lane >> 4;
    const float s = f[r];
#pragma unroll
    for (int t = 0; t < kC; t++) w(r, half + 2 * t, acc.v[t] * s);
  }
};

template <class T, int DP> struct WarpFor {
  using type = TcWarp<T, DP>;
};
template <int DP> struct WarpFor<float, DP> {
  using type = SimtWarp<DP>;
};

// ---- forward ----
// lse_only: the backward's f32 lse recompute (no V, no output; lse to lse_f).
template <class T, int DP>
__device__ __forceinline__ void fwd_body(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                         T* __restrict__ out, T* __restrict__ lse_t, float* __restrict__ lse_f,
                                         const Geo g, const bool lse_only) {
  using W = typename WarpFor<T, DP>::type;
  constexpr int LD = ld_dp<T, DP>(), LDP = ld_p<T>();
  extern __shared__ __align__(128) unsigned char smem[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
  const FwdSmem L(int(sizeof(T)), DP, warps);
  T* Qs = reinterpret_cast<T*>(smem + L.q);
  T* Ks = reinterpret_cast<T*>(smem + L.k);
  T* Vs = reinterpret_cast<T*>(smem + L.v);
  float* Sw = reinterpret_cast<float*>(smem + L.s) + warp * kRows * kLdS;
  T* Pw = reinterpret_cast<T*>(smem + L.p) + warp * kRows * LDP;
  float* Fw = reinterpret_cast<float*>(smem + L.f) + warp * kRows;

  const int bm = warps * kRows, q0 = blockIdx.x * bm, b = blockIdx.y / g.H, h = blockIdx.y % g.H;
  const int64_t qk_rs = int64_t(g.H) * g.D, v_rs = int64_t(g.H) * g.Dv;
  const T* qh = q + int64_t(b) * g.Nq * qk_rs + int64_t(h) * g.D;
  const T* kh = k + int64_t(b) * g.Nk * qk_rs + int64_t(h) * g.D;
  const T* vh = v + int64_t(b) * g.Nk * v_rs + int64_t(h) * g.Dv;
  load_rows<T, DP>(Qs, qh, qk_rs, q0, bm, g.Nq, g.D, tid, blockDim.x);

  typename W::Rows rows;
  W::init_rows(rows, Sw);
  typename W::Acc acc;
  W::zero(acc);
  // This lane's row (both lanes of a row pair hold the same m and l): running max (log2 domain) and sum.
  const int r = lane & 15, half = lane >> 4, qi = q0 + warp * kRows + r;
  float m = -INFINITY, l = 0.0f;
  const int key_end = g.causal ? min(g.Nk, q0 + bm) : g.Nk;
  for (int j0 = 0; j0 < key_end; j0 += kTile) {
    __syncthreads();  // every warp is done with the previous K/V tile and its own score tile
    load_rows<T, DP>(Ks, kh, qk_rs, j0, kTile, g.Nk, g.D, tid, blockDim.x);
    if (!lse_only) load_rows<T, DP>(Vs, vh, v_rs, j0, kTile, g.Nk, g.Dv, tid, blockDim.x);
    __syncthreads();
    W::nt(Sw, Qs + warp * kRows * LD, LD, Ks, LD);
    __syncwarp();
    float s[16], mx = -INFINITY;
#pragma unroll
    for (int c = 0; c < 16; c++) {
      const int j = j0 + half * 16 + c;
      float x = Sw[r * kLdS + half * 16 + c] * g.scale2;
      if (j >= g.Nk || (g.causal && j > qi)) x = -INFINITY;
      s[c] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
    const float m_new = fmaxf(m, mx);
    const float base = m_new == -INFINITY ? 0.0f : m_new;  // a row with no visible key yet: all p = 0
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < 16; c++) {
      const float p = exp2f(s[c] - base);
      sum += p;
      if (!lse_only) Pw[r * LDP + half * 16 + c] = from_float<T>(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 16);
    const float alpha = exp2f(m - base);
    l = l * alpha + sum;
    m = m_new;
    if (!lse_only) {
      if (half == 0) Fw[r] = alpha;
      __syncwarp();
      W::scale_rows(acc, rows, Fw);
      W::acc_nn(acc, Pw, LDP, Vs, LD);
    }
  }
  if (lane < 16 && qi < g.Nq) {
    const float lse = (m + log2f(l)) * kLn2;
    const int64_t at = int64_t(blockIdx.y) * g.Nq + qi;
    if (lse_f) lse_f[at] = lse;
    else if (lse_t) lse_t[at] = from_float<T>(lse);
  }
  if (lse_only) return;
  __syncwarp();  // Fw was read by every lane in scale_rows
  if (half == 0) Fw[r] = l > 0.0f ? 1.0f / l : 0.0f;
  __syncwarp();
  T* oh = out + int64_t(b) * g.Nq * v_rs + int64_t(h) * g.Dv;
  const int row0 = q0 + warp * kRows;
  W::store(acc, rows, Fw, Sw, [&](int rr, int c, float val) {
    if (row0 + rr < g.Nq && c < g.Dv) oh[int64_t(row0 + rr) * v_rs + c] = from_float<T>(val);
  });
}

template <class T, int DP>
__global__ void __launch_bounds__(128) fwd_kernel(const T* q, const T* k, const T* v, T* out, T* lse_t, float* lse_f,
                                                  Geo g, bool lse_only) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
#if __CUDA_ARCH__ >= 800
    fwd_body<T, DP>(q, k, v, out, lse_t, lse_f, g, lse_only);
#else
    __trap();  // no bf16 tensor cores before sm_80: check_common refuses these launches
#endif
  } else {
    fwd_body<T, DP>(q, k, v, out, lse_t, lse_f, g, lse_only);
  }
#endif
}

// ---- backward ----
// P (recomputed from the f32 lse) and dS = P * (dP - delta) * scale for one warp's 16 x kTile tile.
// Rows index `own` (queries in the dQ pass, keys in the dK/dV pass), columns the tile.
template <class T>
__device__ __forceinline__ void probs_and_ds(const float* Sw, const float* dPw, T* Pw, T* dSw, const float* lse2,
                                             const float* delta, bool rows_are_queries, int own0, int tile0,
                                             const Geo& g) {
  constexpr int LDP = ld_p<T>();
  const int lane = threadIdx.x & 31, r = lane & 15, half = lane >> 4;
#pragma unroll 4
  for (int c = 0; c < 16; c++) {
    const int col = half * 16 + c;
    const int i = rows_are_queries ? own0 + r : tile0 + col;  // query
    const int j = rows_are_queries ? tile0 + col : own0 + r;  // key
    const int li = rows_are_queries ? r : col;                // index into lse2 / delta
    const bool visible = i < g.Nq && j < g.Nk && !(g.causal && j > i);
    const float p = visible ? exp2f(Sw[r * kLdS + col] * g.scale2 - lse2[li]) : 0.0f;
    const float ds = p * (dPw[r * kLdS + col] - delta[li]) * g.scale;
    Pw[r * LDP + col] = from_float<T>(p);
    dSw[r * LDP + col] = from_float<T>(ds);
  }
}

// dK, dV for the block's keys: loop over query tiles.
template <class T, int DP>
__device__ __forceinline__ void dkdv_body(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                          const T* __restrict__ dout, const float* __restrict__ lse,
                                          const float* __restrict__ delta, T* __restrict__ dk, T* __restrict__ dv,
                                          const Geo g) {
  using W = typename WarpFor<T, DP>::type;
  constexpr int LD = ld_dp<T, DP>(), LDP = ld_p<T>();
  extern __shared__ __align__(128) unsigned char smem[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, tid = threadIdx.x;
  const BwdSmem L(int(sizeof(T)), DP, warps);
  T* Ks = reinterpret_cast<T*>(smem + L.own_a);
  T* Vs = reinterpret_cast<T*>(smem + L.own_b);
  T* Qt = reinterpret_cast<T*>(smem + L.tile_a);
  T* dOt = reinterpret_cast<T*>(smem + L.tile_b);
  float* lse2 = reinterpret_cast<float*>(smem + L.lse);
  float* dlt = reinterpret_cast<float*>(smem + L.delta);
  float* Sw = reinterpret_cast<float*>(smem + L.s) + warp * kRows * kLdS;
  float* dPw = reinterpret_cast<float*>(smem + L.dp) + warp * kRows * kLdS;
  T* Pw = reinterpret_cast<T*>(smem + L.p) + warp * kRows * LDP;
  T* dSw = reinterpret_cast<T*>(smem + L.ds) + warp * kRows * LDP;

  const int bn = warps * kRows, k0 = blockIdx.x * bn, b = blockIdx.y / g.H, h = blockIdx.y % g.H;
  const int64_t qk_rs = int64_t(g.H) * g.D, v_rs = int64_t(g.H) * g.Dv;
  const T* qh = q + int64_t(b) * g.Nq * qk_rs + int64_t(h) * g.D;
  const T* kh = k + int64_t(b) * g.Nk * qk_rs + int64_t(h) * g.D;
  const T* vh = v + int64_t(b) * g.Nk * v_rs + int64_t(h) * g.Dv;
  const T* doh = dout + int64_t(b) * g.Nq * v_rs + int64_t(h) * g.Dv;
  const float* lse_bh = lse + int64_t(blockIdx.y) * g.Nq;
  const float* delta_bh = delta + int64_t(blockIdx.y) * g.Nq;
  load_rows<T, DP>(Ks, kh, qk_rs, k0, bn, g.Nk, g.D, tid, blockDim.x);
  load_rows<T, DP>(Vs, vh, v_rs, k0, bn, g.Nk, g.Dv, tid, blockDim.x);

  typename W::Rows rows;
  W::init_rows(rows, Sw);
  typename W::Acc acc_k, acc_v;
  W::zero(acc_k);
  W::zero(acc_v);
  const int own0 = k0 + warp * kRows;
  // Causal: queries before the block's first key see none of its keys.
  const int i_begin = g.causal ? (k0 / kTile) * kTile : 0;
  for (int i0 = i_begin; i0 < g.Nq; i0 += kTile) {
    __syncthreads();
    load_rows<T, DP>(Qt, qh, qk_rs, i0, kTile, g.Nq, g.D, tid, blockDim.x);
    load_rows<T, DP>(dOt, doh, v_rs, i0, kTile, g.Nq, g.Dv, tid, blockDim.x);
    for (int t = tid; t < kTile; t += blockDim.x) {
      const bool in = i0 + t < g.Nq;
      lse2[t] = in ? lse_bh[i0 + t] * kLog2e : 0.0f;
      dlt[t] = in ? delta_bh[i0 + t] : 0.0f;
    }
    __syncthreads();
    W::nt(Sw, Ks + warp * kRows * LD, LD, Qt, LD);    // S^T [keys][queries]
    W::nt(dPw, Vs + warp * kRows * LD, LD, dOt, LD);  // dP^T
    __syncwarp();
    probs_and_ds<T>(Sw, dPw, Pw, dSw, lse2, dlt, false, own0, i0, g);
    __syncwarp();
    W::acc_nn(acc_v, Pw, LDP, dOt, LD);   // dV += P^T dO
    W::acc_nn(acc_k, dSw, LDP, Qt, LD);   // dK += dS^T Q
  }
  __syncwarp();
  float* Fw = dPw;  // row factors of 1 (the stores stage through Sw)
  if ((threadIdx.x & 31) < 16) Fw[threadIdx.x & 15] = 1.0f;
  __syncwarp();
  T* dkh = dk + int64_t(b) * g.Nk * qk_rs + int64_t(h) * g.D;
  T* dvh = dv + int64_t(b) * g.Nk * v_rs + int64_t(h) * g.Dv;
  if (dk)
    W::store(acc_k, rows, Fw, Sw, [&](int rr, int c, float val) {
      if (own0 + rr < g.Nk && c < g.D) dkh[int64_t(own0 + rr) * qk_rs + c] = from_float<T>(val);
    });
  if (dv)
    W::store(acc_v, rows, Fw, Sw, [&](int rr, int c, float val) {
      if (own0 + rr < g.Nk && c < g.Dv) dvh[int64_t(own0 + rr) * v_rs + c] = from_float<T>(val);
    });
}

// dQ for the block's queries: loop over key tiles.
template <class T, int DP>
__device__ __forceinline__ void dq_body(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                        const T* __restrict__ dout, const float* __restrict__ lse,
                                        const float* __restrict__ delta, T* __restrict__ dq, const Geo g) {
  using W = typename WarpFor<T, DP>::type;
  constexpr int LD = ld_dp<T, DP>(), LDP = ld_p<T>();
  extern __shared__ __align__(128) unsigned char smem[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, tid = threadIdx.x;
  const BwdSmem L(int(sizeof(T)), DP, warps);
  T* Qs = reinterpret_cast<T*>(smem + L.own_a);
  T* dOs = reinterpret_cast<T*>(smem + L.own_b);
  T* Kt = reinterpret_cast<T*>(smem + L.tile_a);
  T* Vt = reinterpret_cast<T*>(smem + L.tile_b);
  float* lse2 = reinterpret_cast<float*>(smem + L.lse);
  float* dlt = reinterpret_cast<float*>(smem + L.delta);
  float* Sw = reinterpret_cast<float*>(smem + L.s) + warp * kRows * kLdS;
  float* dPw = reinterpret_cast<float*>(smem + L.dp) + warp * kRows * kLdS;
  T* Pw = reinterpret_cast<T*>(smem + L.p) + warp * kRows * LDP;
  T* dSw = reinterpret_cast<T*>(smem + L.ds) + warp * kRows * LDP;

  const int bm = warps * kRows, q0 = blockIdx.x * bm, b = blockIdx.y / g.H, h = blockIdx.y % g.H;
  const int64_t qk_rs = int64_t(g.H) * g.D, v_rs = int64_t(g.H) * g.Dv;
  const T* qh = q + int64_t(b) * g.Nq * qk_rs + int64_t(h) * g.D;
  const T* kh = k + int64_t(b) * g.Nk * qk_rs + int64_t(h) * g.D;
  const T* vh = v + int64_t(b) * g.Nk * v_rs + int64_t(h) * g.Dv;
  const T* doh = dout + int64_t(b) * g.Nq * v_rs + int64_t(h) * g.Dv;
  load_rows<T, DP>(Qs, qh, qk_rs, q0, bm, g.Nq, g.D, tid, blockDim.x);
  load_rows<T, DP>(dOs, doh, v_rs, q0, bm, g.Nq, g.Dv, tid, blockDim.x);
  for (int t = tid; t < bm; t += blockDim.x) {
    const bool in = q0 + t < g.Nq;
    lse2[t] = in ? lse[int64_t(blockIdx.y) * g.Nq + q0 + t] * kLog2e : 0.0f;
    dlt[t] = in ? delta[int64_t(blockIdx.y) * g.Nq + q0 + t] : 0.0f;
  }

  typename W::Rows rows;
  W::init_rows(rows, Sw);
  typename W::Acc acc;
  W::zero(acc);
  const int own0 = q0 + warp * kRows;
  const int key_end = g.causal ? min(g.Nk, q0 + bm) : g.Nk;
  for (int j0 = 0; j0 < key_end; j0 += kTile) {
    __syncthreads();
    load_rows<T, DP>(Kt, kh, qk_rs, j0, kTile, g.Nk, g.D, tid, blockDim.x);
    load_rows<T, DP>(Vt, vh, v_rs, j0, kTile, g.Nk, g.Dv, tid, blockDim.x);
    __syncthreads();
    W::nt(Sw, Qs + warp * kRows * LD, LD, Kt, LD);    // S [queries][keys]
    W::nt(dPw, dOs + warp * kRows * LD, LD, Vt, LD);  // dP
    __syncwarp();
    probs_and_ds<T>(Sw, dPw, Pw, dSw, lse2 + warp * kRows, dlt + warp * kRows, true, own0, j0, g);
    __syncwarp();
    W::acc_nn(acc, dSw, LDP, Kt, LD);  // dQ += dS K
  }
  __syncwarp();
  float* Fw = dPw;
  if ((threadIdx.x & 31) < 16) Fw[threadIdx.x & 15] = 1.0f;
  __syncwarp();
  T* dqh = dq + int64_t(b) * g.Nq * qk_rs + int64_t(h) * g.D;
  W::store(acc, rows, Fw, Sw, [&](int rr, int c, float val) {
    if (own0 + rr < g.Nq && c < g.D) dqh[int64_t(own0 + rr) * qk_rs + c] = from_float<T>(val);
  });
}

template <class T, int DP>
__global__ void __launch_bounds__(128) dkdv_kernel(const T* q, const T* k, const T* v, const T* dout,
                                                   const float* lse, const float* delta, T* dk, T* dv, Geo g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
#if __CUDA_ARCH__ >= 800
    dkdv_body<T, DP>(q, k, v, dout, lse, delta, dk, dv, g);
#else
    __trap();  // no bf16 tensor cores before sm_80: check_common refuses these launches
#endif
  } else {
    dkdv_body<T, DP>(q, k, v, dout, lse, delta, dk, dv, g);
  }
#endif
}

template <class T, int DP>
__global__ void __launch_bounds__(128) dq_kernel(const T* q, const T* k, const T* v, const T* dout, const float* lse,
                                                 const float* delta, T* dq, Geo g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
#if __CUDA_ARCH__ >= 800
    dq_body<T, DP>(q, k, v, dout, lse, delta, dq, g);
#else
    __trap();  // no bf16 tensor cores before sm_80: check_common refuses these launches
#endif
  } else {
    dq_body<T, DP>(q, k, v, dout, lse, delta, dq, g);
  }
#endif
}

// delta[b, h, i] = sum_e dout[b, i, h, e] * out[b, i, h, e]: one warp per (b, i, h), fixed lane order.
template <class T>
__global__ void delta_kernel(const T* __restrict__ out, const T* __restrict__ dout, float* __restrict__ delta, Geo g,
                             int64_t rows) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t w = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); w < rows; w += warps) {
    const int64_t bi = w / g.H;  // b * Nq + i
    const int h = int(w - bi * g.H);
    const int64_t base = bi * int64_t(g.H) * g.Dv + int64_t(h) * g.Dv;
    float s = 0.0f;
    for (int e = lane; e < g.Dv; e += 32) s = fmaf(to_float(dout[base + e]), to_float(out[base + e]), s);
    s = warp_sum(s);
    if (lane == 0) {
      const int64_t b = bi / g.Nq, i = bi - b * g.Nq;
      delta[(b * g.H + h) * g.Nq + i] = s;
    }
  }
}

// ---- host side ----
Geo geometry(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionParams& p, const char* op) {
  for (const Tensor* t : {&q, &k, &v})
    if (t->numel() > (int64_t(1) << 40) || t->dim(1) > 0x7fffffff || t->dim(2) > 0x7fffffff)
      throw OpError(op, "tensor too large for the CUDA kernels", "");
  Geo g;
  g.B = int(q.dim(0));
  g.Nq = int(q.dim(1));
  g.Nk = int(k.dim(1));
  g.H = p.heads;
  g.D = int(q.dim(2) / p.heads);
  g.Dv = int(v.dim(2) / p.heads);
  g.scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(float(g.D));
  g.scale2 = g.scale * kLog2e;
  g.causal = p.causal;
  return g;
}

// Largest block (4, 2 or 1 warps) whose shared memory fits the device (attention_plan.h); sets the
// kernel's dynamic shared-memory limit when above the default 48 KiB.
template <class Smem>
int launch_warps(const void* kernel, int es, int dp, const char* op, const Geo& g,
                 std::initializer_list<Operand> operands, size_t& bytes) {
  const DeviceProps& dev = device();
  const int w = pick_warps<Smem>(es, dp, dev.smem_per_block_optin, bytes);
  if (w == 0)
    throw OpError(op,
                  "head dim " + std::to_string(std::max(g.D, g.Dv)) + " needs " + std::to_string(bytes / 1024) +
                      " KiB of shared memory per block in this dtype; this GPU allows " +
                      std::to_string(dev.smem_per_block_optin / 1024) + " KiB (use f16/bf16 or a smaller head dim)",
                  describe_operands(operands));
  if (bytes > 48 * 1024)
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), op,
          describe_operands(operands));
  return w;
}

void check_common(const Geo& g, DType dt, const char* op, std::initializer_list<Operand> operands) {
  if (padded_dim(std::max(g.D, g.Dv)) == 0)
    throw OpError(op, "the CUDA attention kernels take head dims up to 256, got " + std::to_string(std::max(g.D, g.Dv)),
                  describe_operands(operands));
  if (int64_t(g.B) * g.H > 65535)
    throw OpError(op, "batch x heads is above 65535 (one CUDA grid dimension)", describe_operands(operands));
  if (dt == DType::bf16 && device().cc() < 80)
    throw OpError(op, "bf16 attention needs compute capability 8.0 or newer (this GPU is " +
                          std::to_string(device().major) + "." + std::to_string(device().minor) + "): use f16 or f32",
                  describe_operands(operands));
}

template <class T, int DP>
void launch_fwd(const T* q, const T* k, const T* v, T* out, T* lse_t, float* lse_f, const Geo& g, bool lse_only,
                const char* op, std::initializer_list<Operand> operands) {
  if (g.B == 0 || g.H == 0 || g.Nq == 0) return;
  cudaStream_t st = stream();  // first: makes the device current before the attribute call
  size_t bytes = 0;
  const int w = launch_warps<FwdSmem>(reinterpret_cast<const void*>(&fwd_kernel<T, DP>), int(sizeof(T)), DP, op, g,
                                        operands, bytes);
  dim3 grid(unsigned((g.Nq + w * kRows - 1) / (w * kRows)), unsigned(g.B * g.H));
  fwd_kernel<T, DP><<<grid, w * 32, bytes, st>>>(q, k, v, out, lse_t, lse_f, g, lse_only);
  check_launch(op, operands);
}

template <class T, int DP>
void backward_dp(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                 const Tensor& dout, const Geo& g, Tensor* dq, Tensor* dk, Tensor* dv,
                 std::initializer_list<Operand> operands) {
  const char* op = "attention_backward";
  cudaStream_t st = stream();
  // f32 lse and delta, [B, H, Nq].
  const int64_t rows = int64_t(g.B) * g.H * g.Nq;
  Tensor delta = Tensor::empty(Shape{std::max<int64_t>(rows, 1)}, DType::f32, Device::cuda);
  Tensor lse32;
  const float* lse_p = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    lse_p = dptr<float>(lse);
  } else {
    lse32 = Tensor::empty(Shape{std::max<int64_t>(rows, 1)}, DType::f32, Device::cuda);
    launch_fwd<T, DP>(dptr<T>(q), dptr<T>(k), dptr<T>(v), nullptr, nullptr, dptr<float>(lse32), g, true, op, operands);
    lse_p = dptr<float>(lse32);
  }
  if (rows > 0) {
    delta_kernel<T><<<grid_for(rows * 32), kThreads, 0, st>>>(dptr<T>(out), dptr<T>(dout), dptr<float>(delta), g, rows);
    check_launch(op, operands);
  }
  if ((dk || dv) && g.Nk > 0) {
    size_t bytes = 0;
    const int w =
        launch_warps<BwdSmem>(reinterpret_cast<const void*>(&dkdv_kernel<T, DP>), int(sizeof(T)), DP, op, g,
                              operands, bytes);
    dim3 grid(unsigned((g.Nk + w * kRows - 1) / (w * kRows)), unsigned(g.B * g.H));
    dkdv_kernel<T, DP><<<grid, w * 32, bytes, st>>>(dptr<T>(q), dptr<T>(k), dptr<T>(v), dptr<T>(dout), lse_p,
                                                    dptr<float>(delta), dptr<T>(dk), dptr<T>(dv), g);
    check_launch(op, operands);
  }
  if (dq && g.Nq > 0) {
    size_t bytes = 0;
    const int w = launch_warps<BwdSmem>(reinterpret_cast<const void*>(&dq_kernel<T, DP>), int(sizeof(T)), DP, op, g,
                                       operands, bytes);
    dim3 grid(unsigned((g.Nq + w * kRows - 1) / (w * kRows)), unsigned(g.B * g.H));
    dq_kernel<T, DP><<<grid, w * 32, bytes, st>>>(dptr<T>(q), dptr<T>(k), dptr<T>(v), dptr<T>(dout), lse_p,
                                                  dptr<float>(delta), dptr<T>(*dq), g);
    check_launch(op, operands);
  }
}

// Runs body with the compile-time padded head dim DP for d (the cases are attention_plan.h's kPaddedDims).
static_assert(sizeof(kPaddedDims) / sizeof(int) == 7 && kPaddedDims[0] == 32 && kPaddedDims[1] == 48 &&
                  kPaddedDims[2] == 64 && kPaddedDims[3] == 80 && kPaddedDims[4] == 128 && kPaddedDims[5] == 160 &&
                  kPaddedDims[6] == 256,
              "DBT_ATTN_DP_SWITCH lists the padded head dims");
#define DBT_ATTN_DP_SWITCH(d, ...)    \
  switch (padded_dim(d)) {            \
    case 32: {                        \
      constexpr int DP = 32;          \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
    case 48: {                        \
      constexpr int DP = 48;          \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
    case 64: {                        \
      constexpr int DP = 64;          \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
    case 80: {                        \
      constexpr int DP = 80;          \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
    case 128: {                       \
      constexpr int DP = 128;         \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
    case 160: {                       \
      constexpr int DP = 160;         \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
    default: {                        \
      constexpr int DP = 256;         \
      __VA_ARGS__;                    \
      break;                          \
    }                                 \
  }

template <class T>
void forward_t(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionParams& p, Tensor& out,
               Tensor* lse) {
  const char* op = "attention_forward";
  std::initializer_list<Operand> operands = {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", lse}};
  const Geo g = geometry(q, k, v, p, op);
  check_common(g, q.dtype(), op, operands);
  DBT_ATTN_DP_SWITCH(std::max(g.D, g.Dv), launch_fwd<T, DP>(dptr<T>(q), dptr<T>(k), dptr<T>(v), dptr<T>(out),
                                                           dptr<T>(lse), nullptr, g, false, op, operands));
}

template <class T>
void backward_t(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                const Tensor& dout, const ops::AttentionParams& p, Tensor* dq, Tensor* dk, Tensor* dv) {
  const char* op = "attention_backward";
  std::initializer_list<Operand> operands = {{"q", &q},       {"k", &k},   {"v", &v},   {"out", &out}, {"lse", &lse},
                                             {"dout", &dout}, {"dq", dq}, {"dk", dk}, {"dv", dv}};
  const Geo g = geometry(q, k, v, p, op);
  check_common(g, q.dtype(), op, operands);
  if (g.B == 0 || g.H == 0) return;
  DBT_ATTN_DP_SWITCH(std::max(g.D, g.Dv), backward_dp<T, DP>(q, k, v, out, lse, dout, g, dq, dk, dv, operands));
}

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionParams& p, Tensor& out,
                       Tensor* lse) {
  DBT_CUDA_FLOAT_SWITCH(q.dtype(), "attention_forward", forward_t<T>(q, k, v, p, out, lse));
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const ops::AttentionParams& p, Tensor* dq, Tensor* dk, Tensor* dv) {
  DBT_CUDA_FLOAT_SWITCH(q.dtype(), "attention_backward", backward_t<T>(q, k, v, out, lse, dout, p, dq, dk, dv));
}

}  // namespace attn

void register_attention() {
  ops::attention_forward_table().set(Device::cuda, &attn::attention_forward);
  ops::attention_backward_table().set(Device::cuda, &attn::attention_backward);
}

}  // namespace dbt::cuda
