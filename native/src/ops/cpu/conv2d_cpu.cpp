// conv2d, fast CPU version: implicit-im2col GEMM. The packed GEMM's B panels are filled straight from
// the image (no im2col buffer) for the forward pass and the weight gradient; the input gradient of a
// stride-1 convolution is the forward convolution of dy with flipped, transposed weights, and of a
// strided one a chunked GEMM + col2im.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "ops/conv2d.h"
#include "ops/cpu/conv2d_winograd.h"
#include "ops/cpu/gemm_pack.h"
#include "ops/cpu/sgemm.h"

namespace dbt::ops::cpu {
namespace {

struct Geometry {
  int64_t C, H, W, KH, KW, Ho, Wo;
  int stride, pt, pl;
};

// B = im2col(x) as a logical [C*KH*KW, Ho*Wo] matrix, for one image x [C, H, W]. flip: kernel position
// (ky, kx) of row (c, ky, kx) reads tap (KH-1-ky, KW-1-kx) (the input gradient's rotated kernels).
struct ColSource {
  const float* x;
  Geometry g;
  bool flip = false;
};

// A = rot180(w)^T as a logical [C, O*KH*KW] matrix for w [O, C, KH, KW], in the column order (o, ky, kx)
// of w's own taps: row c, column (o, s) is w[o][c][s]; the rotation is carried by ColSource::flip.
struct FlippedWeights {
  const float* w;
  int64_t O, C, khw;
};

void pack_flipped_weights(const void* ctx, int64_t i0, int rows, int64_t k0, int64_t kc, int mr, float* dst) {
  const FlippedWeights& f = *static_cast<const FlippedWeights*>(ctx);
  // row c holds, for each o, the khw contiguous taps w[o][c][:]; successive o are C * khw apart
  dbt::cpu::pack_panel_t_seg(f.w + i0 * f.khw, f.khw, f.khw, f.C * f.khw, rows, k0, kc, mr, dst);
}

// dst[k * ld + t] = im2col(x)[k0 + k][p0 + t] for k < kc, t < np.
void im2col_rows(const ColSource& s, int64_t k0, int64_t kc, int64_t p0, int64_t np, float* dst, int64_t ld) {
  const Geometry& g = s.g;
  const int64_t khw = g.KH * g.KW;
  for (int64_t k = 0; k < kc; k++) {
    const int64_t kk = k0 + k, c = kk / khw, r = s.flip ? khw - 1 - kk % khw : kk % khw, ky = r / g.KW,
                  kx = r % g.KW;
    const float* xc = s.x + c * g.H * g.W;
    float* dk = dst + k * ld;
    int64_t j = 0, oy = p0 / g.Wo, ox = p0 % g.Wo;
    while (j < np) {
      const int64_t seg = std::min(np - j, g.Wo - ox);
      const int64_t iy = oy * g.stride - g.pt + ky;
      if (iy < 0 || iy >= g.H) {
        std::memset(dk + j, 0, sizeof(float) * size_t(seg));
      } else {
        const float* row = xc + iy * g.W;
        if (g.stride == 1) {
          const int64_t ix0 = ox - g.pl + kx;
          const int64_t t0 = std::clamp<int64_t>(-ix0, 0, seg);
          const int64_t t1 = std::max(t0, std::clamp<int64_t>(g.W - ix0, 0, seg));
          if (t0) std::memset(dk + j, 0, sizeof(float) * size_t(t0));
          if (t1 > t0) std::memcpy(dk + j + t0, row + ix0 + t0, sizeof(float) * size_t(t1 - t0));
          if (seg > t1) std::memset(dk + j + t1, 0, sizeof(float) * size_t(seg - t1));
        } else {
          for (int64_t t = 0; t < seg; t++) {
            const int64_t ix = (ox + t) * g.stride - g.pl + kx;
            dk[j + t] = ix >= 0 && ix < g.W ? row[ix] : 0.0f;
          }
        }
      }
      j += seg;
      ox += seg;
      if (ox == g.Wo) {
        ox = 0;
        oy++;
      }
    }
  }
}

void pack_col(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) {
  const ColSource& s = *static_cast<const ColSource*>(ctx);
  for (int64_t jp = 0; jp < nc; jp += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - jp);
    float* d = dst + jp * kc;
    im2col_rows(s, k0, kc, n0 + jp, cols, d, nr);
    if (cols < nr)
      for (int64_t k = 0; k < kc; k++) std::fill(d + k * nr + cols, d + (k + 1) * nr, 0.0f);
  }
}

// B = [im2col(x[0]) ... im2col(x[N-1])]^T as a logical [N*Ho*Wo, C*KH*KW] matrix (the weight gradient
// over every image in one product): each panel's columns are gathered as rows (row copies, split at
// image boundaries), then transposed into the panel.
struct ColTSource {
  const float* x;  // [N, C, H, W]
  Geometry g;
  int64_t N;
};

void pack_col_t(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float* dst) {
  const ColTSource& s = *static_cast<const ColTSource*>(ctx);
  const int64_t P = s.g.Ho * s.g.Wo, image = s.g.C * s.g.H * s.g.W;
  thread_local std::vector<float> rows;
  if (rows.size() < size_t(nr * kc)) rows.resize(size_t(nr * kc));
  for (int64_t jp = 0; jp < nc; jp += nr) {
    const int cols = int(std::min<int64_t>(nr, nc - jp));
    for (int64_t k = k0; k < k0 + kc;) {  // rows[j][k - k0]: column j over pixels k of image k / P
      const int64_t n = k / P, p = k % P, np = std::min(P - p, k0 + kc - k);
      im2col_rows(ColSource{s.x + n * image, s.g}, n0 + jp, cols, p, np, rows.data() + (k - k0), kc);
      k += np;
    }
    dbt::cpu::pack_panel_t(rows.data(), kc, cols, kc, nr, 1.0f, dst + jp * kc);
  }
}

// A = [dy[0] ... dy[N-1]] as a logical [O, N*P] matrix, dy [N, O, P].
struct ImagesA {
  const float* dy;
  int64_t O, P;
};

void pack_images_a(const void* ctx, int64_t i0, int rows, int64_t k0, int64_t kc, int mr, float* dst) {
  const ImagesA& a = *static_cast<const ImagesA*>(ctx);
  dbt::cpu::pack_panel_t_seg(a.dy + i0 * a.P, a.P, a.P, a.O * a.P, rows, k0, kc, mr, dst);
}

bool is_pointwise(const Geometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride == 1 && g.pt == 0 && g.pl == 0 && g.Ho == g.H && g.Wo == g.W;
}

// y[n] = w @ im2col(x[n]) (+ bias), for N images. flipped_t: w is [C, O, KH, KW] and the convolution
// uses its 180-degree rotated, transposed kernels (the input gradient of a stride-1 convolution).
void forward_images(const float* x, int64_t N, const Geometry& g, const float* w, int64_t O, const float* bias,
                    float* y, bool flipped_t = false) {
  const int64_t P = g.Ho * g.Wo, CKK = g.C * g.KH * g.KW;
  if (dbt::cpu::winograd_applies(g.C, O, g.KH, g.KW, g.stride, g.pt, g.pl, g.Ho, g.Wo)) {
    dbt::cpu::winograd_conv3x3(x, N, g.C, g.H, g.W, w, O, bias, g.pt, g.pl, y, g.Ho, g.Wo, flipped_t);
    return;
  }
  const FlippedWeights fw{w, g.C, O, g.KH * g.KW};
  auto one = [&](int64_t n) {
    const float* xn = x + n * g.C * g.H * g.W;
    float* yn = y + n * O * P;
    if (bias)
      for (int64_t o = 0; o < O; o++) std::fill(yn + o * P, yn + (o + 1) * P, bias[o]);
    const float beta = bias ? 1.0f : 0.0f;
    if (is_pointwise(g)) {  // rotation changes nothing; transposed weights [C, O]
      dbt::cpu::sgemm(flipped_t, false, O, P, g.C, 1.0f, w, flipped_t ? O : g.C, xn, P, beta, yn, P);
    } else if (flipped_t) {
      ColSource src{xn, g, true};
      dbt::cpu::gemm_packed(O, P, CKK, dbt::cpu::ASource{pack_flipped_weights, &fw}, dbt::cpu::BSource{pack_col, &src},
                            beta, yn, P);
    } else {
      ColSource src{xn, g};
      dbt::cpu::gemm_packed(O, P, CKK, w, CKK, false, 1.0f, dbt::cpu::BSource{pack_col, &src}, beta, yn, P);
    }
  };
  // Small images: one image per task (each GEMM then runs on one thread); large: every GEMM threaded.
  if (N > 1 && double(O) * double(CKK) * double(P) < double(1 << 22)) {
    parallel_for(N, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; n++) one(n);
    });
  } else {
    for (int64_t n = 0; n < N; n++) one(n);
  }
}

Geometry geometry(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p) {
  return Geometry{x.dim(1), x.dim(2), x.dim(3), w.dim(2), w.dim(3), y.dim(2), y.dim(3), p.stride, p.pad_top, p.pad_left};
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y) {
  Geometry g = geometry(x, w, y, p);
  forward_images(x.data<float>(), x.dim(0), g, w.data<float>(), w.dim(0), b ? b->data<float>() : nullptr,
                 y.data<float>());
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db) {
  const Geometry g = geometry(x, w, dy, p);
  const int64_t N = x.dim(0), O = w.dim(0), P = g.Ho * g.Wo, CKK = g.C * g.KH * g.KW, HW = g.H * g.W;
  const float* X = x.data<float>();
  const float* Wt = w.data<float>();
  const float* DY = dy.data<float>();

  if (db) {
    float* DB = db->data<float>();
    parallel_for(O, 8, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; o++) {
        float s = 0.0f;
        for (int64_t n = 0; n < N; n++) {
          const float* r = DY + (n * O + o) * P;
          float part = 0.0f;
          for (int64_t i = 0; i < P; i++) part += r[i];
          s += part;
        }
        DB[o] += s;
      }
    });
  }

  if (dw) {
    // dw[O, CKK] += [dy[0] .. dy[N-1]] @ [im2col(x[0]) .. im2col(x[N-1])]^T: one product over all images
    // (dw is read and written once, not once per image).
    float* DW = dw->data<float>();
    if (is_pointwise(g)) {
      for (int64_t n = 0; n < N; n++)
        dbt::cpu::sgemm(false, true, O, g.C, P, 1.0f, DY + n * O * P, P, X + n * g.C * HW, P, 1.0f, DW, g.C);
    } else {
      const ColTSource src{X, g, N};
      const ImagesA a{DY, O, P};
      dbt::cpu::gemm_packed(O, CKK, N * P, dbt::cpu::ASource{pack_images_a, &a}, dbt::cpu::BSource{pack_col_t, &src},
                            1.0f, DW, CKK);
    }
  }

  if (!dx) return;
  float* DX = dx->data<float>();
  const int fpt = int(g.KH) - 1 - g.pt, fpl = int(g.KW) - 1 - g.pl;
  const int fpb = int(g.KH) - 1 - p.pad_bottom, fpr = int(g.KW) - 1 - p.pad_right;
  if (g.stride == 1 && fpt >= 0 && fpl >= 0 && fpb >= 0 && fpr >= 0) {
    // dx = conv(dy, rot180(w)^T) with the complementary padding; the rotation is folded into the packing.
    Geometry gt{O, g.Ho, g.Wo, g.KH, g.KW, g.H, g.W, 1, fpt, fpl};
    forward_images(DY, N, gt, Wt, g.C, nullptr, DX, true);
    return;
  }
  // Strided: dcol = w^T @ dy[n] over chunks of output pixels, scattered back (col2im). Chunks run in
  // order and the scatter is split by channel, so every dx element sums in a fixed order.
  const int64_t chunk = std::max<int64_t>(g.Wo, (int64_t(1) << 20) / std::max<int64_t>(CKK, 1) / g.Wo * g.Wo);
  std::vector<float> dcol(size_t(CKK * std::min(chunk, P)));
  std::fill(DX, DX + N * g.C * HW, 0.0f);
  for (int64_t n = 0; n < N; n++) {
    const float* dyn = DY + n * O * P;
    float* dxn = DX + n * g.C * HW;
    for (int64_t p0 = 0; p0 < P; p0 += chunk) {
      const int64_t pc = std::min(chunk, P - p0);
      dbt::cpu::sgemm(true, false, CKK, pc, O, 1.0f, Wt, CKK, dyn + p0, P, 0.0f, dcol.data(), pc);
      parallel_for(g.C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; c++)
          for (int64_t ky = 0; ky < g.KH; ky++)
            for (int64_t kx = 0; kx < g.KW; kx++) {
              const float* src = dcol.data() + ((c * g.KH + ky) * g.KW + kx) * pc;
              // chunks hold whole output rows; per row the valid ox range, then a strided add
              const int64_t ox0 = std::max<int64_t>(0, (g.pl - kx + g.stride - 1) / g.stride);
              const int64_t last = g.W - 1 + g.pl - kx;  // ix <= W-1  <=>  ox * stride <= last
              const int64_t ox1 = last < 0 ? 0 : std::min<int64_t>(g.Wo, last / g.stride + 1);
              for (int64_t oy = p0 / g.Wo; oy < (p0 + pc) / g.Wo; oy++) {
                const int64_t iy = oy * g.stride - g.pt + ky;
                if (iy < 0 || iy >= g.H) continue;
                const float* sr = src + (oy * g.Wo - p0);
                float* dr = dxn + c * HW + iy * g.W - g.pl + kx;
                for (int64_t ox = ox0; ox < ox1; ox++) dr[ox * g.stride] += sr[ox];
              }
            }
      });
    }
  }
}

}  // namespace dbt::ops::cpu
