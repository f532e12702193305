#include "ops/cpu/gemm_pack.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DBT_X86 1
#endif

#include "core/cpu_features.h"

namespace dbt::cpu {
namespace {

void pack_t_portable(const float* src, int64_t ld, int cols, int64_t kc, int w, float alpha, float* dst) {
  for (int64_t k = 0; k < kc; k++) {
    float* d = dst + k * w;
    for (int j = 0; j < cols; j++) d[j] = alpha * src[j * ld + k];
    for (int j = cols; j < w; j++) d[j] = 0.0f;
  }
}

void pack_n_portable(const float* src, int64_t ld, int cols, int64_t kc, int w, float alpha, float* dst) {
  for (int64_t k = 0; k < kc; k++) {
    const float* s = src + k * ld;
    float* d = dst + k * w;
    for (int j = 0; j < cols; j++) d[j] = alpha * s[j];
    for (int j = cols; j < w; j++) d[j] = 0.0f;
  }
}

void pack_t_seg_portable(const float* src, int64_t ld, int64_t seg_len, int64_t seg_stride, int cols, int64_t k0,
                         int64_t kc, int w, float* dst) {
  int64_t q = k0 / seg_len, r = k0 % seg_len;
  for (int64_t k = 0; k < kc; k++) {
    const float* s = src + q * seg_stride + r;
    float* d = dst + k * w;
    for (int j = 0; j < cols; j++) d[j] = s[j * ld];
    for (int j = cols; j < w; j++) d[j] = 0.0f;
    if (++r == seg_len) {
      r = 0;
      q++;
    }
  }
}

#ifdef DBT_X86
inline __mmask16 first16(int n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u); }

// In-register transpose: r[i] lane j -> r[j] lane i.
__attribute__((target("avx512f"))) inline void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // t[2i] = r2i0 r2i+1,0 r2i1 r2i+1,1 | ... per 128-bit lane
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // r[4i+m] lane block q (128 bits) = column 4q+m of rows 4i..4i+3
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
      t[8 * h + m] = _mm512_shuffle_f32x4(r[8 * h + m], r[8 * h + 4 + m], 0x88);
      t[8 * h + 4 + m] = _mm512_shuffle_f32x4(r[8 * h + m], r[8 * h + 4 + m], 0xdd);
    }
#pragma GCC unroll 8
  for (int m = 0; m < 8; m++) {
    r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
  }
}

__attribute__((target("avx512f"))) void pack_t_avx512(const float* src, int64_t ld, int cols, int64_t kc, int w,
                                                      float alpha, float* dst) {
  const __m512 va = _mm512_set1_ps(alpha);
  for (int j0 = 0; j0 < w; j0 += 16) {
    const int jn = std::clamp(cols - j0, 0, 16);
    const __mmask16 smask = first16(w - j0);
    const float* s = src + j0 * ld;
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
      const int kn = int(std::min<int64_t>(16, kc - k0));
      const __mmask16 kmask = first16(kn);
      __m512 r[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; j++) {
        r[j] = j < jn ? _mm512_maskz_loadu_ps(kmask, s + j * ld + k0) : _mm512_setzero_ps();
        if (alpha != 1.0f) r[j] = _mm512_mul_ps(r[j], va);
        // The next panel's rows (the caller's next call): row segments are too short for the hardware
        // prefetcher to pick up.
        if (j < jn) _mm_prefetch(reinterpret_cast<const char*>(s + (j + w) * ld + k0), _MM_HINT_T0);
      }
      transpose16(r);
      float* d = dst + k0 * w + j0;
      if (kn == 16) {
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(d + k * w, smask, r[k]);
      } else {
        for (int k = 0; k < kn; k++) _mm512_mask_storeu_ps(d + k * w, smask, r[k]);
      }
    }
  }
}

__attribute__((target("avx512f"))) void pack_n_avx512(const float* src, int64_t ld, int cols, int64_t kc, int w,
                                                      float alpha, float* dst) {
  const __m512 va = _mm512_set1_ps(alpha);
  const int groups = (w + 15) / 16;
  __mmask16 lm[4], sm[4];
  for (int g = 0; g < groups && g < 4; g++) {
    lm[g] = first16(cols - 16 * g);
    sm[g] = first16(w - 16 * g);
  }
  if (groups > 4) {
    pack_n_portable(src, ld, cols, kc, w, alpha, dst);
    return;
  }
  for (int64_t k = 0; k < kc; k++) {
    const float* s = src + k * ld;
    float* d = dst + k * w;
    for (int g = 0; g < groups; g++) {
      __m512 v = _mm512_maskz_loadu_ps(lm[g], s + 16 * g);
      if (alpha != 1.0f) v = _mm512_mul_ps(v, va);
      _mm512_mask_storeu_ps(d + 16 * g, sm[g], v);
    }
  }
}

// Each 16-column block of a row is put together from the (at most 17) segment pieces it spans with
// masked loads, then 16 rows are transposed as in pack_t_avx512.
__attribute__((target("avx512f"))) void pack_t_seg_avx512(const float* src, int64_t ld, int64_t seg_len,
                                                          int64_t seg_stride, int cols, int64_t k0, int64_t kc,
                                                          int w, float* dst) {
  int64_t q = k0 / seg_len, r = k0 % seg_len;  // segment and offset of column kb
  for (int64_t kb = 0; kb < kc; kb += 16) {
    const int kn = int(std::min<int64_t>(16, kc - kb));
    __mmask16 m[16];
    int64_t off[16];
    int pieces = 0;
    for (int l = 0; l < kn;) {
      const int n = int(std::min<int64_t>(seg_len - r, kn - l));
      m[pieces] = __mmask16(first16(l + n) & ~first16(l));
      off[pieces] = q * seg_stride + r - l;  // lane l' of the piece reads (src row + off)[l']
      pieces++;
      l += n;
      r += n;
      if (r == seg_len) {
        r = 0;
        q++;
      }
    }
    for (int j0 = 0; j0 < w; j0 += 16) {
      const int jn = std::clamp(cols - j0, 0, 16);
      const __mmask16 smask = first16(w - j0);
      __m512 r[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; j++) {
        r[j] = _mm512_setzero_ps();
        if (j < jn) {
          const float* row = src + (j0 + j) * ld;
          for (int p = 0; p < pieces; p++) r[j] = _mm512_mask_loadu_ps(r[j], m[p], row + off[p]);
        }
      }
      transpose16(r);
      float* d = dst + kb * w + j0;
      for (int kk = 0; kk < kn; kk++) _mm512_mask_storeu_ps(d + kk * w, smask, r[kk]);
    }
  }
}

// ---- AVX2: 8x8 transposes ----
__attribute__((target("avx2"))) inline __m256i first8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2"))) inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) {
    s[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int m = 0; m < 4; m++) {
    r[m] = _mm256_permute2f128_ps(s[m], s[4 + m], 0x20);
    r[4 + m] = _mm256_permute2f128_ps(s[m], s[4 + m], 0x31);
  }
}

__attribute__((target("avx2"))) void pack_t_avx2(const float* src, int64_t ld, int cols, int64_t kc, int w,
                                                 float alpha, float* dst) {
  const __m256 va = _mm256_set1_ps(alpha);
  for (int j0 = 0; j0 < w; j0 += 8) {
    const int jn = std::clamp(cols - j0, 0, 8);
    const int jw = std::min(8, w - j0);
    const __m256i smask = first8(jw);
    const float* s = src + j0 * ld;
    for (int64_t k0 = 0; k0 < kc; k0 += 8) {
      const int kn = int(std::min<int64_t>(8, kc - k0));
      const __m256i kmask = first8(kn);
      __m256 r[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++) {
        r[j] = j >= jn ? _mm256_setzero_ps()
               : kn == 8 ? _mm256_loadu_ps(s + j * ld + k0)
                         : _mm256_maskload_ps(s + j * ld + k0, kmask);
        if (alpha != 1.0f) r[j] = _mm256_mul_ps(r[j], va);
      }
      transpose8(r);
      float* d = dst + k0 * w + j0;
      for (int k = 0; k < kn; k++) {
        if (jw == 8)
          _mm256_storeu_ps(d + k * w, r[k]);
        else
          _mm256_maskstore_ps(d + k * w, smask, r[k]);
      }
    }
  }
}

__attribute__((target("avx2"))) void pack_n_avx2(const float* src, int64_t ld, int cols, int64_t kc, int w,
                                                 float alpha, float* dst) {
  const __m256 va = _mm256_set1_ps(alpha);
  const int groups = (w + 7) / 8;
  if (groups > 8) {
    pack_n_portable(src, ld, cols, kc, w, alpha, dst);
    return;
  }
  __m256i lm[8], sm[8];
  for (int g = 0; g < groups; g++) {
    lm[g] = first8(cols - 8 * g);
    sm[g] = first8(w - 8 * g);
  }
  for (int64_t k = 0; k < kc; k++) {
    const float* s = src + k * ld;
    float* d = dst + k * w;
    for (int g = 0; g < groups; g++) {
      __m256 v = _mm256_maskload_ps(s + 8 * g, lm[g]);
      if (alpha != 1.0f) v = _mm256_mul_ps(v, va);
      _mm256_maskstore_ps(d + 8 * g, sm[g], v);
    }
  }
}
#endif

}  // namespace

void pack_panel_t(const float* src, int64_t ld, int cols, int64_t kc, int w, float alpha, float* dst) {
#ifdef DBT_X86
  switch (simd_level()) {
    case SimdLevel::avx512: return pack_t_avx512(src, ld, cols, kc, w, alpha, dst);
    case SimdLevel::avx2: return pack_t_avx2(src, ld, cols, kc, w, alpha, dst);
    default: break;
  }
#endif
  pack_t_portable(src, ld, cols, kc, w, alpha, dst);
}

void pack_panel_t_seg(const float* src, int64_t ld, int64_t seg_len, int64_t seg_stride, int cols, int64_t k0,
                      int64_t kc, int w, float* dst) {
#ifdef DBT_X86
  if (simd_level() == SimdLevel::avx512)
    return pack_t_seg_avx512(src, ld, seg_len, seg_stride, cols, k0, kc, w, dst);
#endif
  pack_t_seg_portable(src, ld, seg_len, seg_stride, cols, k0, kc, w, dst);
}

void pack_panel_n(const float* src, int64_t ld, int cols, int64_t kc, int w, float alpha, float* dst) {
#ifdef DBT_X86
  switch (simd_level()) {
    case SimdLevel::avx512: return pack_n_avx512(src, ld, cols, kc, w, alpha, dst);
    case SimdLevel::avx2: return pack_n_avx2(src, ld, cols, kc, w, alpha, dst);
    default: break;
  }
#endif
  pack_n_portable(src, ld, cols, kc, w, alpha, dst);
}

}  // namespace dbt::cpu
