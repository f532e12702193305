#include "ops/cpu/conv2d_winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DBT_X86 1
#endif

#include "core/cpu_features.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "ops/cpu/sgemm.h"

namespace dbt::cpu {
namespace {

bool enabled() {
  static const bool on = [] {
    const char* s = std::getenv("DBT_CONV_WINOGRAD");
    return !(s && std::strcmp(s, "0") == 0);
  }();
  return on;
}

// The Winograd weights as the 16 GEMMs' A operands, packed: plane xi, row o, column c is
// (G g G^T)[xi] for the 3x3 kernel g at w + o * so + c * sc, G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]];
// plane xi of the transform goes to U[perm[xi]]. Every path computes each value with the same operations
// in the same order (G g first, then (G g) G^T), so the packed values do not depend on the path.
struct WeightSource {
  const float* w;
  int64_t so, sc;
  const int* perm;
};

// The 16 values for one kernel g (9 taps).
inline void winograd_weights(const float g[9], float u[16]) {
  float t[4][3];  // G g
  for (int j = 0; j < 3; j++) {
    const float a = g[0 * 3 + j], b = g[1 * 3 + j], c = g[2 * 3 + j];
    t[0][j] = a;
    t[1][j] = 0.5f * (a + b + c);
    t[2][j] = 0.5f * (a - b + c);
    t[3][j] = c;
  }
  for (int r = 0; r < 4; r++) {  // (G g) G^T
    const float a = t[r][0], b = t[r][1], c = t[r][2];
    u[r * 4 + 0] = a;
    u[r * 4 + 1] = 0.5f * (a + b + c);
    u[r * 4 + 2] = 0.5f * (a - b + c);
    u[r * 4 + 3] = c;
  }
}

// Panel (i0, k0) of all 16 planes: rows [i0, i0 + rows), columns [k0, k0 + kcb).
void weights_panel_portable(const WeightSource& s, const PackedA* U, int64_t i0, int rows, int64_t k0, int64_t kcb) {
  const int mr = U[0].mr;
  float* dst[16];
  for (int xi = 0; xi < 16; xi++) dst[xi] = U[s.perm[xi]].panel(i0, k0);
  for (int64_t k = 0; k < kcb; k++)
    for (int l = 0; l < mr; l++) {
      float u[16];
      if (l < rows) {
        const float* t = s.w + (i0 + l) * s.so + (k0 + k) * s.sc;
        float g[9];
        for (int j = 0; j < 9; j++) g[j] = t[j];
        winograd_weights(g, u);
      } else {
        std::fill(u, u + 16, 0.0f);
      }
      for (int xi = 0; xi < 16; xi++) dst[xi][k * mr + l] = u[xi];
    }
}

#ifdef DBT_X86
// Lanes are the panel's rows (mr <= 16): the 9 taps of the rows' kernels at one column are gathered, the
// 16 planes' values computed and stored as one panel row each.
__attribute__((target("avx512f"))) void weights_panel_avx512(const WeightSource& s, const PackedA* U, int64_t i0,
                                                             int rows, int64_t k0, int64_t kcb) {
  const int mr = U[0].mr;
  float* dst[16];
  for (int xi = 0; xi < 16; xi++) dst[xi] = U[s.perm[xi]].panel(i0, k0);
  const __mmask16 load = __mmask16((1u << rows) - 1u), store = __mmask16((1u << mr) - 1u);
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(int(s.so)));
  const __m512 h = _mm512_set1_ps(0.5f);
  for (int64_t k = 0; k < kcb; k++) {
    const float* taps = s.w + i0 * s.so + (k0 + k) * s.sc;
    __m512 g[9], u[16];
#pragma GCC unroll 9
    for (int j = 0; j < 9; j++) g[j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), load, idx, taps + j, 4);
    __m512 t[4][3];  // as in winograd_weights
#pragma GCC unroll 3
    for (int j = 0; j < 3; j++) {
      const __m512 a = g[0 * 3 + j], b = g[1 * 3 + j], c = g[2 * 3 + j];
      t[0][j] = a;
      t[1][j] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_add_ps(a, b), c));
      t[2][j] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_sub_ps(a, b), c));
      t[3][j] = c;
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const __m512 a = t[r][0], b = t[r][1], c = t[r][2];
      u[r * 4 + 0] = a;
      u[r * 4 + 1] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_add_ps(a, b), c));
      u[r * 4 + 2] = _mm512_mul_ps(h, _mm512_add_ps(_mm512_sub_ps(a, b), c));
      u[r * 4 + 3] = c;
    }
#pragma GCC unroll 16
    for (int xi = 0; xi < 16; xi++) _mm512_mask_storeu_ps(dst[xi] + k * mr, store, u[xi]);
  }
}
#endif

void transform_weights(const WeightSource& s, const PackedA* U) {
  const PackedA& a = U[0];
  const int64_t panels = a.m_pad / a.mr, kblocks = (a.K + a.kc - 1) / a.kc;
#ifdef DBT_X86
  const bool avx512 = simd_level() == SimdLevel::avx512 && a.mr <= 16 && 15 * s.so < (int64_t(1) << 31);
#endif
  parallel_for(panels * kblocks, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t i0 = (t % panels) * a.mr, k0 = (t / panels) * a.kc;
      const int rows = int(std::min<int64_t>(a.mr, a.M - i0));
      const int64_t kcb = std::min(a.kc, a.K - k0);
#ifdef DBT_X86
      if (avx512) {
        weights_panel_avx512(s, U, i0, rows, k0, kcb);
        continue;
      }
#endif
      weights_panel_portable(s, U, i0, rows, k0, kcb);
    }
  });
}

// V[xi][c][t] = (B^T d B)[xi] for the 4x4 input tile d of tile t (zero outside the image),
// B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]. One task per (channel, tile row): the four input
// rows are copied into zero-padded buffers, then every tile of the row is transformed in vectorisable loops.
void transform_input(const float* x, int64_t C, int64_t H, int64_t W, int pt, int pl, int64_t th, int64_t tw,
                     float* V) {
  const int64_t T = th * tw, CT = C * T, Wp = 2 * tw + 2;
  parallel_for(C * th, 4, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(static_cast<size_t>(8 * Wp));
    float* rows = buf.data();      // [4][Wp] input rows, padded
    float* trow = rows + 4 * Wp;   // [4][Wp] B^T applied down the rows
    for (int64_t r = r0; r < r1; r++) {
      const int64_t c = r / th, ty = r % th;
      const float* xc = x + c * H * W;
      for (int i = 0; i < 4; i++) {
        float* row = rows + i * Wp;
        const int64_t yy = 2 * ty - pt + i;
        std::fill(row, row + Wp, 0.0f);
        if (yy < 0 || yy >= H) continue;
        const int64_t k0 = std::max<int64_t>(0, pl), k1 = std::min<int64_t>(Wp, W + pl);
        if (k1 > k0) std::memcpy(row + k0, xc + yy * W + (k0 - pl), sizeof(float) * size_t(k1 - k0));
      }
      const float *d0 = rows, *d1 = rows + Wp, *d2 = rows + 2 * Wp, *d3 = rows + 3 * Wp;
      float *t0 = trow, *t1 = trow + Wp, *t2 = trow + 2 * Wp, *t3 = trow + 3 * Wp;
      for (int64_t k = 0; k < Wp; k++) {
        t0[k] = d0[k] - d2[k];
        t1[k] = d1[k] + d2[k];
        t2[k] = d2[k] - d1[k];
        t3[k] = d1[k] - d3[k];
      }
      float* out = V + c * T + ty * tw;
      for (int i = 0; i < 4; i++) {
        const float* t = trow + i * Wp;
        float* o0 = out + (i * 4 + 0) * CT;
        float* o1 = out + (i * 4 + 1) * CT;
        float* o2 = out + (i * 4 + 2) * CT;
        float* o3 = out + (i * 4 + 3) * CT;
        for (int64_t tx = 0; tx < tw; tx++) {
          const float a = t[2 * tx], b = t[2 * tx + 1], cc = t[2 * tx + 2], d = t[2 * tx + 3];
          o0[tx] = a - cc;
          o1[tx] = b + cc;
          o2[tx] = cc - b;
          o3[tx] = b - d;
        }
      }
    }
  });
}

// y tile = A^T m A, A^T = [[1,1,1,0],[0,1,-1,-1]], clipped at the image edge; plus bias. One task per
// (output channel, tile row), vectorisable over the tiles of the row.
void transform_output(const float* M, int64_t O, int64_t th, int64_t tw, const float* bias, float* y, int64_t Ho,
                      int64_t Wo) {
  const int64_t T = th * tw, OT = O * T;
  parallel_for(O * th, 4, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(static_cast<size_t>(8 * tw));
    for (int64_t r = r0; r < r1; r++) {
      const int64_t o = r / th, ty = r % th;
      const float bv = bias ? bias[o] : 0.0f;
      const float* m = M + o * T + ty * tw;
      float* s = buf.data();  // [2][4][tw]: A^T applied down the columns
      for (int j = 0; j < 4; j++) {
        const float* m0 = m + (0 * 4 + j) * OT;
        const float* m1 = m + (1 * 4 + j) * OT;
        const float* m2 = m + (2 * 4 + j) * OT;
        const float* m3 = m + (3 * 4 + j) * OT;
        float* s0 = s + j * tw;
        float* s1 = s + (4 + j) * tw;
        for (int64_t tx = 0; tx < tw; tx++) {
          s0[tx] = m0[tx] + m1[tx] + m2[tx];
          s1[tx] = m1[tx] - m2[tx] - m3[tx];
        }
      }
      for (int i = 0; i < 2; i++) {
        const int64_t yy = 2 * ty + i;
        if (yy >= Ho) break;
        const float *a = s + (i * 4 + 0) * tw, *b = s + (i * 4 + 1) * tw, *c = s + (i * 4 + 2) * tw,
                    *d = s + (i * 4 + 3) * tw;
        float* yr = y + o * Ho * Wo + yy * Wo;
        const int64_t full = Wo / 2;
        for (int64_t tx = 0; tx < full; tx++) {
          yr[2 * tx] = a[tx] + b[tx] + c[tx] + bv;
          yr[2 * tx + 1] = b[tx] - c[tx] - d[tx] + bv;
        }
        if (Wo % 2) yr[Wo - 1] = a[full] + b[full] + c[full] + bv;
      }
    }
  });
}

}  // namespace

bool winograd_applies(int64_t C, int64_t O, int64_t kh, int64_t kw, int stride, int pt, int pl, int64_t Ho,
                      int64_t Wo) {
  // Below ~256 tiles the [C, tiles] products are too thin and the weight transform dominates.
  return enabled() && kh == 3 && kw == 3 && stride == 1 && pt <= 2 && pl <= 2 && C >= 16 && O >= 16 &&
         Ho * Wo >= 1024;
}

void winograd_conv3x3(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* w, int64_t O,
                      const float* bias, int pt, int pl, float* y, int64_t Ho, int64_t Wo, bool flipped_t) {
  const int64_t th = (Ho + 1) / 2, tw = (Wo + 1) / 2, T = th * tw;
  const int64_t plane = packed_a_size(O, C, T);
  Tensor Ut = Tensor::empty(Shape{16 * plane});
  Tensor Vt = Tensor::empty(Shape{16, C, T});
  Tensor Mt = Tensor::empty(Shape{16, O, T});
  PackedA U[16];
  for (int xi = 0; xi < 16; xi++) U[xi] = packed_a_layout(O, C, T, Ut.data<float>() + xi * plane);
  float* V = Vt.data<float>();
  float* M = Mt.data<float>();
  // Rotating g by 180 degrees reverses G's columns, which equals swapping G's rows 0 and 3:
  // G rot(g) G^T = P (G g G^T) P^T. So plane (r, q) of the flipped, transposed kernels is plane
  // (s(r), s(q)) of the plain transform of w[c][o], s = (3 1 2 0).
  static constexpr int kIdentity[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static constexpr int kSwap03[16] = {15, 13, 14, 12, 7, 5, 6, 4, 11, 9, 10, 8, 3, 1, 2, 0};
  if (flipped_t)
    transform_weights(WeightSource{w, 9, 9 * O, kSwap03}, U);
  else
    transform_weights(WeightSource{w, 9 * C, 9, kIdentity}, U);
  for (int64_t n = 0; n < N; n++) {
    transform_input(x + n * C * H * W, C, H, W, pt, pl, th, tw, V);
    // 16 independent products: one per task, each single-threaded (nested parallel_for runs inline).
    parallel_for(16, 1, [&](int64_t a, int64_t b) {
      for (int64_t xi = a; xi < b; xi++) gemm_packed_a(U[xi], V + xi * C * T, T, false, 0.0f, M + xi * O * T, T);
    });
    transform_output(M, O, th, tw, bias, y + n * O * Ho * Wo, Ho, Wo);
  }
}

}  // namespace dbt::cpu
