// The CPU's packed, register-blocked f32 GEMM (BLIS-style loops), used by every fast op that multiplies
// matrices (linear, conv via implicit im2col, attention). SIMD kernel picked at run time: AVX-512
// (12x32 tile), AVX2+FMA (6x16), portable C++ (4x16). Multi-threaded with a fixed split of C's rows or
// columns: each C element is computed by one thread with the same k order, so results do not depend on
// the thread count. Called inside a parallel_for it runs single-threaded.
#pragma once
#include <algorithm>
#include <cstdint>

namespace dbt::cpu {

// Writes the slice [k0, k0+kc) x [n0, n0+nc) of the logical K x N matrix B as ceil(nc/nr) panels of
// kc*nr floats (row k of a panel holds nr consecutive columns), zero-padding columns past nc.
struct BSource {
  void (*pack)(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst);
  const void* ctx;
};

// Writes rows [i0, i0+rows) x columns [k0, k0+kc) of the logical M x K matrix A as one panel of kc*mr
// floats (row k of the panel holds the mr rows' values at column k), zero-padding rows past `rows`.
// direct (optional): A(i, k) = direct[i * direct_rs + k * direct_ld] already (alpha 1). A transposed A
// (direct_rs 1) is read in place when N spans at most two column panels (each A panel is then used once or
// twice); a row-major A (direct_ld 1) is read in place when the kernel has a row-reading variant
// (AVX-512) and N spans at most 32 column panels: its full tiles are then never packed. Edge tiles (fewer than mr rows) are always packed.
struct ASource {
  void (*pack)(const void* ctx, int64_t i0, int rows, int64_t k0, int64_t kc, int mr, float* dst);
  const void* ctx;
  const float* direct = nullptr;
  int64_t direct_ld = 0;
  int64_t direct_rs = 1;
};

// C[M,N] = A @ B + beta * C, both operands supplied by packers (implicit GEMM on both sides).
void gemm_packed(int64_t M, int64_t N, int64_t K, const ASource& a, const BSource& b, float beta, float* C,
                 int64_t ldc);

// C[M,N] = alpha * op(A) @ B + beta * C (beta == 0: C is not read). A is [M,K] (lda) or, with trans_a,
// [K,M]. C is row-major with leading dimension ldc.
void gemm_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, bool trans_a, float alpha,
                 const BSource& b, float beta, float* C, int64_t ldc);

// Plain row-major SGEMM: C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// B packed once for many products with different A (attention reuses K and V across query chunks).
struct PackedB {
  const float* data = nullptr;
  int64_t K = 0, N = 0, n_pad = 0;
};
// Number of floats pack_b writes for a K x N operand.
int64_t packed_b_size(int64_t K, int64_t N);
// Packs op(B) (K x N; B is [K,N] with ldb, or [N,K] when trans_b) into dst (packed_b_size floats).
PackedB pack_b(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb, float* dst);
// C[M,N] = alpha * op(A) @ B + beta * C with B packed by pack_b.
void gemm_packed_b(int64_t M, const float* A, int64_t lda, bool trans_a, float alpha, const PackedB& b, float beta,
                   float* C, int64_t ldc);

// A packed by the caller, panel by panel, for products with N columns (Winograd writes its transformed
// weights straight into this layout). Panel (i0, k0), i0 a multiple of mr and k0 of kc, holds rows
// [i0, i0+mr) x columns [k0, k0+kcb) as kcb*mr floats, row k of the panel holding the mr rows' values at
// column k0+k (kcb = min(kc, K-k0)); rows past M are zero. The layout follows the kernel in use for N:
// build it and multiply with the same simd level.
struct PackedA {
  float* data = nullptr;
  int64_t M = 0, K = 0, N = 0, m_pad = 0, kc = 0;
  int mr = 0;
  float* panel(int64_t i0, int64_t k0) const { return data + k0 * m_pad + i0 * std::min(kc, K - k0); }
};
// Number of floats a PackedA for an M x K operand of products with N columns takes.
int64_t packed_a_size(int64_t M, int64_t K, int64_t N);
PackedA packed_a_layout(int64_t M, int64_t K, int64_t N, float* dst);
// C[M,N] = A @ op(B) + beta * C, A packed (a.N columns), B [K,N] with ldb or [N,K] when trans_b.
void gemm_packed_a(const PackedA& a, const float* B, int64_t ldb, bool trans_b, float beta, float* C, int64_t ldc);

// Tile sizes of the kernel in use (for implicit-GEMM packers and tests).
int gemm_nr();
int gemm_mr();

}  // namespace dbt::cpu
