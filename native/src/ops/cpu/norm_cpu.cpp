// Norms, fast CPU version: one task per (image, group) or per block of rows; statistics with 16
// independent lanes (vectorisable, fixed order); parameter gradients from per-task partials summed in a
// fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/vec_kernels.h"
#include "ops/norm.h"

namespace dbt::ops::cpu {
namespace {

constexpr int kLanes = 16;

double lane_sum(const float* x, int64_t n) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; j++) acc[j] += double(x[i + j]);
  for (; i < n; i++) acc[0] += double(x[i]);
  double s = 0;
  for (int j = 0; j < kLanes; j++) s += acc[j];
  return s;
}

double lane_sq_dev(const float* x, int64_t n, float m) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; j++) {
      float d = x[i + j] - m;
      acc[j] += d * d;
    }
  double s = 0;
  for (; i < n; i++) s += double((x[i] - m) * (x[i] - m));
  for (int j = 0; j < kLanes; j++) s += double(acc[j]);
  return s;
}

// mean and rstd of n values (two passes: mean, then squared deviations).
void stats(const float* x, int64_t n, float eps, float& mean, float& rstd) {
  double m = lane_sum(x, n) / double(n);
  double v = lane_sq_dev(x, n, float(m)) / double(n);
  mean = float(m);
  rstd = float(1.0 / std::sqrt(v + double(eps)));
}

}  // namespace

void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const GroupNormParams& p,
                        Tensor& y, Tensor* mean, Tensor* rstd) {
  const int64_t N = x.dim(0), C = x.dim(1), S = x.numel() / std::max<int64_t>(N * C, 1), G = p.groups, CG = C / G;
  const float* X = x.data<float>();
  const float* Ga = gamma.data<float>();
  const float* Be = beta.data<float>();
  float* Y = y.data<float>();
  float* M = mean ? mean->data<float>() : nullptr;
  float* R = rstd ? rstd->data<float>() : nullptr;
  parallel_for(N * G, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t n = t / G, g = t % G, base = (n * C + g * CG) * S;
      float m, rs;
      stats(X + base, CG * S, p.eps, m, rs);
      if (M) M[t] = m;
      if (R) R[t] = rs;
      for (int64_t cc = 0; cc < CG; cc++) {
        const int64_t c = g * CG + cc;
        const float scale = rs * Ga[c], shift = Be[c] - m * scale;
        const float* xr = X + base + cc * S;
        float* yr = Y + base + cc * S;
        dbt::cpu::vscale_shift(xr, yr, S, scale, shift, p.silu);
      }
    }
  });
}

void group_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const GroupNormParams& p, Tensor* dx, Tensor* dgamma,
                         Tensor* dbeta) {
  const int64_t N = x.dim(0), C = x.dim(1), S = x.numel() / std::max<int64_t>(N * C, 1), G = p.groups, CG = C / G;
  const float* X = x.data<float>();
  const float* Ga = gamma.data<float>();
  const float* Be = beta.data<float>();
  const float* DY = dy.data<float>();
  const float* M = mean.data<float>();
  const float* R = rstd.data<float>();
  float* DX = dx ? dx->data<float>() : nullptr;
  // per (n, c) partial sums of dz*xhat and dz, reduced over n afterwards
  std::vector<double> pg(size_t(N * C)), pb(size_t(N * C));
  parallel_for(N * G, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> dz(size_t(p.silu ? S : 0));
    for (int64_t t = t0; t < t1; t++) {
      const int64_t n = t / G, g = t % G, base = (n * C + g * CG) * S;
      const float m = M[t], rs = R[t];
      double s1 = 0, s2 = 0;  // sums of dxhat and dxhat*xhat over the group
      for (int64_t cc = 0; cc < CG; cc++) {
        const int64_t c = g * CG + cc;
        const float* xr = X + base + cc * S;
        const float* dr = DY + base + cc * S;
        if (p.silu) {
          const float scale = rs * Ga[c], shift = Be[c] - m * scale;
          dbt::cpu::vscale_shift_silu_grad(xr, dr, dz.data(), S, scale, shift);
          dr = dz.data();
        }
        float a_dz[kLanes] = {}, a_dzx[kLanes] = {};
        int64_t i = 0;
        for (; i + kLanes <= S; i += kLanes)
          for (int j = 0; j < kLanes; j++) {
            float xh = (xr[i + j] - m) * rs;
            a_dz[j] += dr[i + j];
            a_dzx[j] += dr[i + j] * xh;
          }
        double sdz = 0, sdzx = 0;
        for (; i < S; i++) {
          sdz += double(dr[i]);
          sdzx += double(dr[i]) * double((xr[i] - m) * rs);
        }
        for (int j = 0; j < kLanes; j++) {
          sdz += double(a_dz[j]);
          sdzx += double(a_dzx[j]);
        }
        pg[size_t(n * C + c)] = sdzx;
        pb[size_t(n * C + c)] = sdz;
        s1 += sdz * double(Ga[c]);
        s2 += sdzx * double(Ga[c]);
      }
      if (!DX) continue;
      const float inv = 1.0f / float(CG * S);
      const float k1 = float(s1) * inv, k2 = float(s2) * inv;
      for (int64_t cc = 0; cc < CG; cc++) {
        const int64_t c = g * CG + cc;
        const float* xr = X + base + cc * S;
        const float* dr = DY + base + cc * S;
        if (p.silu) {  // recompute dz for this channel
          const float scale = rs * Ga[c], shift = Be[c] - m * scale;
          dbt::cpu::vscale_shift_silu_grad(xr, dr, dz.data(), S, scale, shift);
          dr = dz.data();
        }
        float* o = DX + base + cc * S;
        const float ga = Ga[c];
        for (int64_t i = 0; i < S; i++) {
          float xh = (xr[i] - m) * rs;
          o[i] = rs * (dr[i] * ga - k1 - xh * k2);
        }
      }
    }
  });
  if (dgamma || dbeta) {
    float* DG = dgamma ? dgamma->data<float>() : nullptr;
    float* DB = dbeta ? dbeta->data<float>() : nullptr;
    for (int64_t c = 0; c < C; c++) {
      double sg = 0, sb = 0;
      for (int64_t n = 0; n < N; n++) {
        sg += pg[size_t(n * C + c)];
        sb += pb[size_t(n * C + c)];
      }
      if (DG) DG[c] += float(sg);
      if (DB) DB[c] += float(sb);
    }
  }
}

namespace {
constexpr int64_t kRowBlock = 32;  // rows per task in layer norm backward (fixed: partials are per block)
}

void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, Tensor& y,
                        Tensor* mean, Tensor* rstd) {
  const int64_t C = x.dim(-1), R = x.numel() / std::max<int64_t>(C, 1);
  const float* X = x.data<float>();
  const float* Ga = gamma.data<float>();
  const float* Be = beta.data<float>();
  float* Y = y.data<float>();
  float* M = mean ? mean->data<float>() : nullptr;
  float* RS = rstd ? rstd->data<float>() : nullptr;
  parallel_for(R, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      float m, rs;
      stats(X + r * C, C, eps, m, rs);
      if (M) M[r] = m;
      if (RS) RS[r] = rs;
      const float* xr = X + r * C;
      float* yr = Y + r * C;
      for (int64_t i = 0; i < C; i++) yr[i] = (xr[i] - m) * rs * Ga[i] + Be[i];
    }
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dy, Tensor* dx, Tensor* dgamma, Tensor* dbeta) {
  const int64_t C = x.dim(-1), R = x.numel() / std::max<int64_t>(C, 1);
  const int64_t blocks = (R + kRowBlock - 1) / kRowBlock;
  const float* X = x.data<float>();
  const float* Ga = gamma.data<float>();
  const float* DY = dy.data<float>();
  const float* M = mean.data<float>();
  const float* RS = rstd.data<float>();
  float* DX = dx ? dx->data<float>() : nullptr;
  const bool params = dgamma || dbeta;
  std::vector<float> pg(params ? size_t(blocks * C) : 0), pb(params ? size_t(blocks * C) : 0);
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      float* g = params ? pg.data() + b * C : nullptr;
      float* bb = params ? pb.data() + b * C : nullptr;
      for (int64_t r = b * kRowBlock; r < std::min(R, (b + 1) * kRowBlock); r++) {
        const float* xr = X + r * C;
        const float* dr = DY + r * C;
        const float m = M[r], rs = RS[r];
        float a1[kLanes] = {}, a2[kLanes] = {};
        int64_t i = 0;
        for (; i + kLanes <= C; i += kLanes)
          for (int j = 0; j < kLanes; j++) {
            float xh = (xr[i + j] - m) * rs, d = dr[i + j] * Ga[i + j];
            a1[j] += d;
            a2[j] += d * xh;
          }
        double s1 = 0, s2 = 0;
        for (; i < C; i++) {
          float xh = (xr[i] - m) * rs, d = dr[i] * Ga[i];
          s1 += double(d);
          s2 += double(d * xh);
        }
        for (int j = 0; j < kLanes; j++) {
          s1 += double(a1[j]);
          s2 += double(a2[j]);
        }
        if (params)
          for (int64_t k = 0; k < C; k++) {
            float xh = (xr[k] - m) * rs;
            g[k] += dr[k] * xh;
            bb[k] += dr[k];
          }
        if (DX) {
          const float k1 = float(s1 / double(C)), k2 = float(s2 / double(C));
          float* o = DX + r * C;
          for (int64_t k = 0; k < C; k++) o[k] = rs * (dr[k] * Ga[k] - k1 - (xr[k] - m) * rs * k2);
        }
      }
    }
  });
  if (params) {
    float* DG = dgamma ? dgamma->data<float>() : nullptr;
    float* DB = dbeta ? dbeta->data<float>() : nullptr;
    parallel_for(C, 64, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c++) {
        double sg = 0, sb = 0;
        for (int64_t b = 0; b < blocks; b++) {
          sg += double(pg[size_t(b * C + c)]);
          sb += double(pb[size_t(b * C + c)]);
        }
        if (DG) DG[c] += float(sg);
        if (DB) DB[c] += float(sb);
      }
    });
  }
}

}  // namespace dbt::ops::cpu
