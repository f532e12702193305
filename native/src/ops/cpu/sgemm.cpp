#include "ops/cpu/sgemm.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DBT_X86 1
#endif

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "ops/cpu/gemm_pack.h"

namespace dbt::cpu {
namespace {

// kc x mr packed A panel times kc x nr packed B panel into the mr x nr tile at C (full tile MR x NR is
// computed; only mr rows and nr columns are stored). beta == 0: C = acc, beta == 1: C += acc,
// otherwise C = beta*C + acc.
// A advances by `as` floats per k: mr for a packed panel, lda when read in place from a transposed A.
using MicroKernel = void (*)(int64_t kc, const float* A, const float* B, float* C, int64_t ldc, int mr, int nr,
                             float beta, int64_t as);

struct KernelSpec {
  int mr, nr;
  int64_t kc, mc, nc;  // cache blocking: B micro-panel kc*nr in L1, A block mc*kc in L2, B block kc*nc in L3
  MicroKernel fn;
  MicroKernel fn_rows = nullptr;  // A read in place from row-major rows (as = row stride), if available
};

// ---- portable ----
constexpr int kPortMR = 4, kPortNR = 16;
void kernel_portable(int64_t kc, const float* A, const float* B, float* C, int64_t ldc, int mr, int nr,
                     float beta, int64_t as) {
  float acc[kPortMR][kPortNR] = {};
  for (int64_t k = 0; k < kc; k++) {
    for (int i = 0; i < kPortMR; i++) {
      float a = A[i];
      for (int j = 0; j < kPortNR; j++) acc[i][j] += a * B[j];
    }
    A += as;
    B += kPortNR;
  }
  for (int i = 0; i < mr; i++) {
    float* c = C + i * ldc;
    for (int j = 0; j < nr; j++) c[j] = beta == 0.0f ? acc[i][j] : beta * c[j] + acc[i][j];
  }
}

#ifdef DBT_X86
// ---- AVX2 + FMA: 6 x 16 ----
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* A, const float* B, float* C,
                                                     int64_t ldc, int mr, int nr, float beta, int64_t as) {
  __m256 c0[6], c1[6];
#pragma GCC unroll 6
  for (int i = 0; i < 6; i++) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
      __m256 a = _mm256_broadcast_ss(A + i);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
    A += as;
    B += 16;
  }
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), idx);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), idx);
  const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < 6; i++) {
    if (i >= mr) break;
    float* c = C + i * ldc;
    __m256 r0 = c0[i], r1 = c1[i];
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), r1);
    }
    _mm256_maskstore_ps(c, m0, r0);
    _mm256_maskstore_ps(c + 8, m1, r1);
  }
}

// ---- AVX-512: 12 x 32 ----
// kRows: A is read in place from a row-major matrix, element (i, k) at A[i * as + k] (full tiles only).
template <bool kRows>
__attribute__((target("avx512f"))) inline void kernel_avx512_t(int64_t kc, const float* A, const float* B,
                                                               float* C, int64_t ldc, int mr, int nr, float beta,
                                                               int64_t as) {
  __m512 c0[12], c1[12];
  // Bring the C tile towards L1 while the k loop runs.
#pragma GCC unroll 12
  for (int i = 0; i < 12; i++) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 12
  for (int i = 0; i < 12; i++) c0[i] = c1[i] = _mm512_setzero_ps();
  const float* row[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; i++) row[i] = A + i * as;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) {
      __m512 a = _mm512_set1_ps(kRows ? row[i][k] : A[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    if (!kRows) A += as;
    B += 32;
  }
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xffff) : __mmask16((1u << nr) - 1u);
  const __mmask16 m1 = nr >= 32 ? __mmask16(0xffff) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1u);
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < 12; i++) {
    if (i >= mr) break;
    float* c = C + i * ldc;
    __m512 r0 = c0[i], r1 = c1[i];
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    _mm512_mask_storeu_ps(c + 16, m1, r1);
  }
}

__attribute__((target("avx512f"))) void kernel_avx512(int64_t kc, const float* A, const float* B, float* C,
                                                      int64_t ldc, int mr, int nr, float beta, int64_t as) {
  kernel_avx512_t<false>(kc, A, B, C, ldc, mr, nr, beta, as);
}
__attribute__((target("avx512f"))) void kernel_avx512_rows(int64_t kc, const float* A, const float* B, float* C,
                                                           int64_t ldc, int mr, int nr, float beta, int64_t as) {
  kernel_avx512_t<true>(kc, A, B, C, ldc, mr, nr, beta, as);
}

// ---- AVX-512: 8 x 48, for narrow N (head dim 40: 48 columns instead of 64) ----
template <bool kRows>
__attribute__((target("avx512f"))) inline void kernel_avx512_8x48_t(int64_t kc, const float* A, const float* B,
                                                                    float* C, int64_t ldc, int mr, int nr,
                                                                    float beta, int64_t as) {
  __m512 c0[8], c1[8], c2[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 32), _MM_HINT_T0);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) c0[i] = c1[i] = c2[i] = _mm512_setzero_ps();
  const float* row[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) row[i] = A + i * as;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16), b2 = _mm512_load_ps(B + 32);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      __m512 a = _mm512_set1_ps(kRows ? row[i][k] : A[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
      c2[i] = _mm512_fmadd_ps(a, b2, c2[i]);
    }
    if (!kRows) A += as;
    B += 48;
  }
  auto mask = [](int n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u); };
  const __mmask16 m0 = mask(nr), m1 = mask(nr - 16), m2 = mask(nr - 32);
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    if (i >= mr) break;
    float* c = C + i * ldc;
    __m512 r0 = c0[i], r1 = c1[i], r2 = c2[i];
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
      r2 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m2, c + 32), r2);
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    _mm512_mask_storeu_ps(c + 16, m1, r1);
    _mm512_mask_storeu_ps(c + 32, m2, r2);
  }
}
__attribute__((target("avx512f"))) void kernel_avx512_8x48(int64_t kc, const float* A, const float* B, float* C,
                                                           int64_t ldc, int mr, int nr, float beta, int64_t as) {
  kernel_avx512_8x48_t<false>(kc, A, B, C, ldc, mr, nr, beta, as);
}
__attribute__((target("avx512f"))) void kernel_avx512_8x48_rows(int64_t kc, const float* A, const float* B, float* C,
                                                                int64_t ldc, int mr, int nr, float beta, int64_t as) {
  kernel_avx512_8x48_t<true>(kc, A, B, C, ldc, mr, nr, beta, as);
}
#endif

// DBT_GEMM_BLOCKING=kc,mc,nc overrides the cache blocking (for tuning on a new machine).
KernelSpec tuned(KernelSpec k) {
  if (const char* s = std::getenv("DBT_GEMM_BLOCKING")) {
    long kc = 0, mc = 0, nc = 0;
    if (std::sscanf(s, "%ld,%ld,%ld", &kc, &mc, &nc) == 3 && kc > 0 && mc > 0 && nc > 0) {
      k.kc = kc;
      k.mc = (mc + k.mr - 1) / k.mr * k.mr;
      k.nc = (nc + k.nr - 1) / k.nr * k.nr;
    }
  }
  return k;
}

// The kernel for a product with N columns. Every kernel sums each C element over k in the same order
// (one FMA chain per k block, then added to C), so the choice changes speed only, never results.
const KernelSpec& kernel_spec(int64_t N = 0) {
  static const KernelSpec portable = tuned({kPortMR, kPortNR, 256, 128, 4096, kernel_portable});
#ifdef DBT_X86
  static const KernelSpec avx2 = tuned({6, 16, 256, 144, 4096, kernel_avx2});
  static const KernelSpec avx512 = tuned({12, 32, 384, 144, 4096, kernel_avx512, kernel_avx512_rows});
  static const KernelSpec avx512_narrow = tuned({8, 48, 384, 144, 4080, kernel_avx512_8x48, kernel_avx512_8x48_rows});
  switch (simd_level()) {
    case SimdLevel::avx512:
      // 8x48 where it pads N less (N = 40, attention's head dim at 64x64 latents: 48 columns, not 64)
      return N > 0 && (N + 47) / 48 * 48 < (N + 31) / 32 * 32 ? avx512_narrow : avx512;
    case SimdLevel::avx2: return avx2;
    default: break;
  }
#endif
  return portable;
}

// Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the thread's lifetime.
struct AlignedBuffer {
  float* p = nullptr;
  size_t cap = 0;
  ~AlignedBuffer() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw Error("out of memory: GEMM packing buffer of " + format_bytes(bytes));
      cap = n;
    }
    return p;
  }
};
thread_local AlignedBuffer t_pack_a, t_pack_b;

struct PlainA {
  const float* A;
  int64_t lda;
  bool trans;
  float alpha;
};

void pack_plain_a(const void* ctx, int64_t i0, int rows, int64_t k0, int64_t kc, int mr, float* dst) {
  const PlainA& pa = *static_cast<const PlainA*>(ctx);
  if (!pa.trans)
    pack_panel_t(pa.A + i0 * pa.lda + k0, pa.lda, rows, kc, mr, pa.alpha, dst);
  else
    pack_panel_n(pa.A + k0 * pa.lda + i0, pa.lda, rows, kc, mr, pa.alpha, dst);
}

// Operand panels packed once for the whole matrix and shared by every thread. Layout for k block kb
// (pc = kb * kc_max): the block starts at pc * padded_size and holds consecutive panels of kc * tile.
struct Prepacked {
  const float* a = nullptr;  // M padded to mr
  const float* b = nullptr;  // N padded to nr
  int64_t m_pad = 0, n_pad = 0;
};

// Operands not prepacked are packed panel by panel just before their first use (B panels in the first
// row block, A micro-panels in the first column panel), so packing loads overlap the kernels' arithmetic
// and the packer's prefetches of the next panel have a kernel call's time to arrive.
void gemm_serial(const KernelSpec& ks, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const ASource& a,
                 const BSource& b, float beta, float* C, int64_t ldc, const Prepacked& pre) {
  const int MR = ks.mr, NR = ks.nr;
  for (int64_t jc = n0; jc < n1; jc += ks.nc) {
    const int64_t nc = std::min(ks.nc, n1 - jc);
    const int64_t nc_pad = (nc + NR - 1) / NR * NR;
    const bool in_place = a.direct && a.direct_rs == 1 && nc_pad <= 2 * NR;
    // A row-major A's tiles read in place skip the packing but make the kernel's A loads 12 streams
    // instead of one (measured on Zen 5, single thread: +3.5 % at 10 column panels, +1.3 % at 20, -1.5 %
    // at 128 where the packing is amortised): in place up to 32 panels.
    const bool rows_in_place = a.direct && a.direct_rs != 1 && ks.fn_rows && nc_pad <= 32 * NR;
    for (int64_t pc = 0; pc < K; pc += ks.kc) {
      const int64_t kc = std::min(ks.kc, K - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      float* Bbuf = pre.b ? nullptr : t_pack_b.get(size_t(kc * nc_pad));
      const float* Bp = pre.b ? pre.b + pc * pre.n_pad + jc * kc : Bbuf;
      for (int64_t ic = m0; ic < m1; ic += ks.mc) {
        const int64_t mc = std::min(ks.mc, m1 - ic);
        const int64_t mc_pad = (mc + MR - 1) / MR * MR;
        float* Abuf = pre.a ? nullptr : t_pack_a.get(size_t(kc * mc_pad));
        const float* Ap = pre.a ? pre.a + pc * pre.m_pad + ic * kc : Abuf;
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int nr = int(std::min<int64_t>(NR, nc - jr));
          if (Bbuf && ic == m0) b.pack(b.ctx, pc, kc, jc + jr, nr, NR, Bbuf + jr * kc);
          const float* Bpanel = Bp + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int mr = int(std::min<int64_t>(MR, mc - ir));
            float* Ct = C + (ic + ir) * ldc + jc + jr;
            if (Abuf && rows_in_place && mr == MR) {
              ks.fn_rows(kc, a.direct + (ic + ir) * a.direct_rs + pc, Bpanel, Ct, ldc, mr, nr, beta_eff, a.direct_rs);
              continue;
            }
            if (Abuf && in_place && mr == MR) {
              ks.fn(kc, a.direct + pc * a.direct_ld + ic + ir, Bpanel, Ct, ldc, mr, nr, beta_eff, a.direct_ld);
              continue;
            }
            if (Abuf && jr == 0) a.pack(a.ctx, ic + ir, mr, pc, kc, MR, Abuf + ir * kc);
            ks.fn(kc, Ap + ir * kc, Bpanel, Ct, ldc, mr, nr, beta_eff, MR);
          }
        }
      }
    }
  }
}

struct PlainB {
  const float* B;
  int64_t ldb;
  bool trans;
};

void pack_plain_b(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) {
  const PlainB& pb = *static_cast<const PlainB*>(ctx);
  for (int64_t jp = 0; jp < nc; jp += nr) {
    const int cols = int(std::min<int64_t>(nr, nc - jp));
    if (!pb.trans)
      pack_panel_n(pb.B + k0 * pb.ldb + n0 + jp, pb.ldb, cols, kc, nr, 1.0f, dst + jp * kc);
    else
      pack_panel_t(pb.B + (n0 + jp) * pb.ldb + k0, pb.ldb, cols, kc, nr, 1.0f, dst + jp * kc);
  }
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

}  // namespace

int gemm_nr() { return kernel_spec().nr; }
int gemm_mr() { return kernel_spec().mr; }

void gemm_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, bool trans_a, float alpha,
                 const BSource& b, float beta, float* C, int64_t ldc) {
  if (alpha == 0.0f) K = 0;
  const PlainA pa{A, lda, trans_a, alpha};
  ASource src{pack_plain_a, &pa};
  if (trans_a && alpha == 1.0f) {
    src.direct = A;
    src.direct_ld = lda;
  } else if (alpha == 1.0f) {
    src.direct = A;
    src.direct_rs = lda;
    src.direct_ld = 1;
  }
  gemm_packed(M, N, K, src, b, beta, C, ldc);
}

namespace {

// Runs the product on the pool. pre may hold a prepacked A (PackedA); whatever else every part would
// pack in full is prepacked here.
void gemm_run(const KernelSpec& ks, int64_t M, int64_t N, int64_t K, const ASource& a, const BSource& b, float beta,
              float* C, int64_t ldc, Prepacked pre) {
  // Split the larger of M and N into a few parts per thread (the pool hands them out dynamically),
  // aligned to the tile size. Small problems run on the calling thread.
  int threads = num_threads();
  double work = double(M) * double(N) * double(K);
  if (work < 2.0 * 64 * 64 * 64) threads = 1;
  bool split_m = M >= N;
  int64_t unit = split_m ? ks.mr : ks.nr;
  int64_t units = ((split_m ? M : N) + unit - 1) / unit;
  int64_t parts = std::min<int64_t>(threads == 1 ? 1 : int64_t(threads) * 3, units);
  // With several parts, the operand every part would pack in full (B when splitting M, A when splitting
  // N) is packed once up front, in parallel, and shared.
  Tensor shared;
  if (parts > 1) {
    const int64_t kblocks = (K + ks.kc - 1) / ks.kc;
    if (split_m && !pre.b) {
      pre.n_pad = (N + ks.nr - 1) / ks.nr * ks.nr;
      shared = Tensor::empty(Shape{K * pre.n_pad});
      float* dst = shared.data<float>();
      const int64_t npanels = pre.n_pad / ks.nr;
      parallel_for(kblocks * npanels, 8, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) {
          const int64_t pc = (t / npanels) * ks.kc, kc = std::min(ks.kc, K - pc), j = (t % npanels) * ks.nr;
          b.pack(b.ctx, pc, kc, j, std::min<int64_t>(ks.nr, N - j), ks.nr, dst + pc * pre.n_pad + j * kc);
        }
      });
      pre.b = dst;
    } else if (!split_m && !pre.a) {
      pre.m_pad = (M + ks.mr - 1) / ks.mr * ks.mr;
      shared = Tensor::empty(Shape{K * pre.m_pad});
      float* dst = shared.data<float>();
      const int64_t mpanels = pre.m_pad / ks.mr;
      parallel_for(kblocks * mpanels, 8, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) {
          const int64_t pc = (t / mpanels) * ks.kc, kc = std::min(ks.kc, K - pc), i = (t % mpanels) * ks.mr;
          a.pack(a.ctx, i, int(std::min<int64_t>(ks.mr, M - i)), pc, kc, ks.mr, dst + pc * pre.m_pad + i * kc);
        }
      });
      pre.a = dst;
    }
  }
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      int64_t u0 = units * p / parts, u1 = units * (p + 1) / parts;
      if (split_m)
        gemm_serial(ks, u0 * unit, std::min(M, u1 * unit), 0, N, K, a, b, beta, C, ldc, pre);
      else
        gemm_serial(ks, 0, M, u0 * unit, std::min(N, u1 * unit), K, a, b, beta, C, ldc, pre);
    }
  });
}

}  // namespace

void gemm_packed(int64_t M, int64_t N, int64_t K, const ASource& a, const BSource& b, float beta, float* C,
                 int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  gemm_run(kernel_spec(N), M, N, K, a, b, beta, C, ldc, Prepacked{});
}

int64_t packed_a_size(int64_t M, int64_t K, int64_t N) {
  const KernelSpec& ks = kernel_spec(N);
  return K * ((M + ks.mr - 1) / ks.mr * ks.mr);
}

PackedA packed_a_layout(int64_t M, int64_t K, int64_t N, float* dst) {
  const KernelSpec& ks = kernel_spec(N);
  PackedA out;
  out.data = dst;
  out.M = M;
  out.K = K;
  out.N = N;
  out.m_pad = (M + ks.mr - 1) / ks.mr * ks.mr;
  out.kc = ks.kc;
  out.mr = ks.mr;
  return out;
}

void gemm_packed_a(const PackedA& a, const float* B, int64_t ldb, bool trans_b, float beta, float* C, int64_t ldc) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.K <= 0) {
    scale_c(a.M, a.N, beta, C, ldc);
    return;
  }
  const KernelSpec& ks = kernel_spec(a.N);
  if (ks.mr != a.mr || ks.kc != a.kc) throw Error("gemm_packed_a: A was packed for another GEMM kernel");
  Prepacked pre;
  pre.a = a.data;
  pre.m_pad = a.m_pad;
  PlainB pb{B, ldb, trans_b};
  gemm_run(ks, a.M, a.N, a.K, ASource{nullptr, nullptr}, BSource{pack_plain_b, &pb}, beta, C, ldc, pre);
}

int64_t packed_b_size(int64_t K, int64_t N) {
  const KernelSpec& ks = kernel_spec(N);
  return K * ((N + ks.nr - 1) / ks.nr * ks.nr);
}

PackedB pack_b(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb, float* dst) {
  const KernelSpec& ks = kernel_spec(N);
  PlainB pb{B, ldb, trans_b};
  PackedB out{dst, K, N, (N + ks.nr - 1) / ks.nr * ks.nr};
  for (int64_t pc = 0; pc < K; pc += ks.kc) {
    const int64_t kc = std::min(ks.kc, K - pc);
    pack_plain_b(&pb, pc, kc, 0, N, ks.nr, dst + pc * out.n_pad);
  }
  return out;
}

void gemm_packed_b(int64_t M, const float* A, int64_t lda, bool trans_a, float alpha, const PackedB& b, float beta,
                   float* C, int64_t ldc) {
  if (M <= 0 || b.N <= 0) return;
  if (b.K <= 0 || alpha == 0.0f) {
    scale_c(M, b.N, beta, C, ldc);
    return;
  }
  const KernelSpec& ks = kernel_spec(b.N);
  Prepacked pre;
  pre.b = b.data;
  pre.n_pad = b.n_pad;
  const BSource unused{nullptr, nullptr};
  const PlainA pa{A, lda, trans_a, alpha};
  ASource src{pack_plain_a, &pa};
  if (!trans_a && alpha == 1.0f) {  // row-major A read in place where the kernel can (attention's P V, dS K)
    src.direct = A;
    src.direct_rs = lda;
    src.direct_ld = 1;
  }
  int threads = double(M) * double(b.N) * double(b.K) < 2.0 * 64 * 64 * 64 ? 1 : num_threads();
  const int64_t units = (M + ks.mr - 1) / ks.mr;
  const int64_t parts = std::min<int64_t>(threads == 1 ? 1 : int64_t(threads) * 3, units);
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t u0 = units * p / parts, u1 = units * (p + 1) / parts;
      gemm_serial(ks, u0 * ks.mr, std::min(M, u1 * ks.mr), 0, b.N, b.K, src, unused, beta,
                  C, ldc, pre);
    }
  });
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  PlainB pb{B, ldb, trans_b};
  gemm_packed(M, N, K, A, lda, trans_a, alpha, BSource{pack_plain_b, &pb}, beta, C, ldc);
}

}  // namespace dbt::cpu
