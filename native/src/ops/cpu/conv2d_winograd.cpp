#include "ops/cpu/conv2d_winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

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

// U[xi][o][c] = (G g G^T)[xi] for g = w[o][c] (3x3), G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]].
void transform_weights(const float* w, int64_t O, int64_t C, float* U) {
  const int64_t OC = O * C;
  parallel_for(OC, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* g = w + i * 9;
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
        U[(r * 4 + 0) * OC + i] = a;
        U[(r * 4 + 1) * OC + i] = 0.5f * (a + b + c);
        U[(r * 4 + 2) * OC + i] = 0.5f * (a - b + c);
        U[(r * 4 + 3) * OC + i] = c;
      }
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
  Tensor Ut = Tensor::empty(Shape{16, O, C});
  Tensor Vt = Tensor::empty(Shape{16, C, T});
  Tensor Mt = Tensor::empty(Shape{16, O, T});
  float* U = Ut.data<float>();
  float* V = Vt.data<float>();
  float* M = Mt.data<float>();
  // Rotating g by 180 degrees reverses G's columns, which equals swapping G's rows 0 and 3:
  // G rot(g) G^T = P (G g G^T) P^T. So the flipped, transposed kernels are the plain transform of w
  // ([C, O] per plane) read transposed from plane (s(r), s(q)), s = (3 1 2 0).
  static constexpr int kSwap03[4] = {3, 1, 2, 0};
  if (flipped_t)
    transform_weights(w, C, O, U);
  else
    transform_weights(w, O, C, U);
  for (int64_t n = 0; n < N; n++) {
    transform_input(x + n * C * H * W, C, H, W, pt, pl, th, tw, V);
    // 16 independent products: one per task, each single-threaded (nested parallel_for runs inline).
    parallel_for(16, 1, [&](int64_t a, int64_t b) {
      for (int64_t xi = a; xi < b; xi++) {
        if (flipped_t) {
          const int64_t src = kSwap03[xi / 4] * 4 + kSwap03[xi % 4];
          sgemm(true, false, O, T, C, 1.0f, U + src * O * C, O, V + xi * C * T, T, 0.0f, M + xi * O * T, T);
        } else {
          sgemm(false, false, O, T, C, 1.0f, U + xi * O * C, C, V + xi * C * T, T, 0.0f, M + xi * O * T, T);
        }
      }
    });
    transform_output(M, O, th, tw, bias, y + n * O * Ho * Wo, Ho, Wo);
  }
}

}  // namespace dbt::cpu
