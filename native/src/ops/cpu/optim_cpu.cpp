// Optimizer updates, fast CPU version: element loops split over threads; 8-bit AdamW one block per task
// (code lookup by binary search); norms over fixed 16K-element blocks in double, combined in order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "ops/optim.h"

namespace dbt::ops::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

uint8_t nearest_code(const float* map, float x) {
  const float* hi = std::lower_bound(map, map + 256, x);
  if (hi == map) return 0;
  if (hi == map + 256) return 255;
  const float* lo = hi - 1;
  return uint8_t((x - *lo <= *hi - x ? lo : hi) - map);
}

// Parameter storage: f32, or bf16 written by stochastic rounding with the Philox block of the element
// (recomputed at each 4-element boundary and at the start of a range).
struct F32Param {
  float* p;
  float load(int64_t i) const { return p[i]; }
  void store(int64_t i, float x) { p[i] = x; }
};
struct SrParam {
  bf16_t* p;
  SrKey key;
  Philox4 r{};
  int64_t block = -1;
  float load(int64_t i) const { return bf16_to_f32(p[i]); }
  void store(int64_t i, float x) {
    if ((i >> 2) != block) {
      block = i >> 2;
      r = sr_block(key, block);
    }
    p[i] = bf16_t{f32_bits_to_bf16_sr(f32_bits(x), r.v[i & 3])};
  }
};
struct F32Grad {
  const float* g;
  float operator[](int64_t i) const { return g[i]; }
};
struct Bf16Grad {
  const bf16_t* g;
  float operator[](int64_t i) const { return bf16_to_f32(g[i]); }
};

template <class PS, class GS>
void adamw_impl(PS P, GS G, Tensor& m, Tensor& v, const AdamWParams& p, int64_t n) {
  float* M = m.data<float>();
  float* V = v.data<float>();
  const float b1 = float(p.beta1), b2 = float(p.beta2), gs = float(p.grad_scale), eps = float(p.eps);
  const float omb1 = float(1.0 - p.beta1), omb2 = float(1.0 - p.beta2);
  const float decay = float(1.0 - p.lr * p.weight_decay);
  const float step = float(double(p.lr) / (1.0 - std::pow(double(p.beta1), double(p.step))));
  const float inv_bc2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(double(p.beta2), double(p.step))));
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
    PS Pl = P;
    for (int64_t i = i0; i < i1; i++) {
      const float g = G[i] * gs;
      const float mi = b1 * M[i] + omb1 * g;
      const float vi = b2 * V[i] + omb2 * g * g;
      M[i] = mi;
      V[i] = vi;
      Pl.store(i, Pl.load(i) * decay - step * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps));
    }
  });
}

}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) {
  if (p.stochastic_rounding)
    return adamw_impl(SrParam{param.data<bf16_t>(), adamw_sr_key(p, p.sr_stream)}, Bf16Grad{grad.data<bf16_t>()}, m,
                      v, p, param.numel());
  adamw_impl(F32Param{param.data<float>()}, F32Grad{grad.data<float>()}, m, v, p, param.numel());
}

namespace {
template <class PS, class GS>
void adam8_impl(PS P, GS G, int64_t n, Tensor& m_q, Tensor& m_absmax, Tensor& v_q, Tensor& v_absmax, int block,
                const AdamWParams& p) {
  const float* sm = dynamic_map(true);
  const float* um = dynamic_map(false);
  const int64_t blocks = adamw8bit_blocks(n, block);
  uint8_t* MQ = m_q.data<uint8_t>();
  uint8_t* VQ = v_q.data<uint8_t>();
  float* MA = m_absmax.data<float>();
  float* VA = v_absmax.data<float>();
  const float b1 = float(p.beta1), b2 = float(p.beta2), gs = float(p.grad_scale), eps = float(p.eps);
  const float omb1 = float(1.0 - p.beta1), omb2 = float(1.0 - p.beta2);
  const float decay = float(1.0 - p.lr * p.weight_decay);
  const float step = float(double(p.lr) / (1.0 - std::pow(p.beta1, double(p.step))));
  const float inv_bc2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(p.beta2, double(p.step))));
  parallel_for(blocks, 1, [&](int64_t first, int64_t last) {
    std::vector<float> mb(static_cast<size_t>(block)), vb(static_cast<size_t>(block));
    PS Pl = P;
    for (int64_t b = first; b < last; b++) {
      const int64_t i0 = b * block, len = std::min<int64_t>(n - i0, block);
      const float ma = MA[b], va = VA[b];
      float am = 0.0f, av = 0.0f;
      for (int64_t k = 0; k < len; k++) {
        const int64_t i = i0 + k;
        const float g = G[i] * gs;
        float mi = sm[MQ[i]] * ma, vi = um[VQ[i]] * va;
        mi = b1 * mi + omb1 * g;
        vi = b2 * vi + omb2 * g * g;
        Pl.store(i, Pl.load(i) * decay - step * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps));
        mb[size_t(k)] = mi;
        vb[size_t(k)] = vi;
        am = std::max(am, std::fabs(mi));
        av = std::max(av, vi);
      }
      MA[b] = am;
      VA[b] = av;
      for (int64_t k = 0; k < len; k++) {
        MQ[i0 + k] = nearest_code(sm, am > 0 ? mb[size_t(k)] / am : 0.0f);
        VQ[i0 + k] = nearest_code(um, av > 0 ? vb[size_t(k)] / av : 0.0f);
      }
    }
  });
}

}  // namespace

void adamw8bit_update(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q,
                      Tensor& v_absmax, int block, const AdamWParams& p) {
  if (p.stochastic_rounding)
    return adam8_impl(SrParam{param.data<bf16_t>(), adamw_sr_key(p, p.sr_stream)}, Bf16Grad{grad.data<bf16_t>()},
                      param.numel(), m_q, m_absmax, v_q, v_absmax, block, p);
  adam8_impl(F32Param{param.data<float>()}, F32Grad{grad.data<float>()}, param.numel(), m_q, m_absmax, v_q, v_absmax,
             block, p);
}

void adamw8bit_update_multi(const std::vector<AdamW8bitTensor>& tensors, int block, const AdamWParams& p) {
  for (const AdamW8bitTensor& t : tensors) {
    AdamWParams pt = p;
    pt.sr_stream = t.sr_stream;
    cpu::adamw8bit_update(*t.param, *t.grad, *t.m_q, *t.m_absmax, *t.v_q, *t.v_absmax, block, pt);
  }
}

void global_norm(const std::vector<Tensor>& tensors, Tensor& out) {
  double total = 0;
  for (const Tensor& t : tensors) {
    const float* X = t.data<float>();
    const int64_t n = t.numel(), blocks = (n + kGrain - 1) / kGrain;
    std::vector<double> part(size_t(std::max<int64_t>(blocks, 1)), 0.0);
    parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) {
        double lane[8] = {};
        const int64_t e = std::min(n, (b + 1) * kGrain);
        int64_t i = b * kGrain;
        for (; i + 8 <= e; i += 8)
          for (int j = 0; j < 8; j++) lane[j] += double(X[i + j]) * double(X[i + j]);
        for (; i < e; i++) lane[0] += double(X[i]) * double(X[i]);
        double s = 0;
        for (double l : lane) s += l;
        part[size_t(b)] = s;
      }
    });
    for (double s : part) total += s;
  }
  out.data<float>()[0] = float(std::sqrt(total));
}

void clip_by_norm(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm) {
  const float c = float(std::min(1.0, double(max_norm) / (double(norm.data<float>()[0]) + 1e-6)));
  if (c >= 1.0f) return;
  for (Tensor* t : tensors) {
    float* X = t->data<float>();
    parallel_for(t->numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) X[i] *= c;
    });
  }
}

void ema_update(Tensor& ema, const Tensor& param, float decay) {
  float* E = ema.data<float>();
  const float* P = param.data<float>();
  const float k = 1.0f - decay;
  parallel_for(ema.numel(), kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) E[i] -= k * (E[i] - P[i]);
  });
}

void check_finite(const std::vector<Tensor>& tensors, Tensor& found) {
  bool bad = false;
  for (const Tensor& t : tensors) {
    if (t.dtype() != DType::f32) return ref::check_finite(tensors, found);
    const float* X = t.data<float>();
    const int64_t n = t.numel(), blocks = (n + kGrain - 1) / kGrain;
    std::vector<uint8_t> hit(size_t(std::max<int64_t>(blocks, 1)), 0);
    parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) {
        uint32_t any = 0;  // exponent all ones = inf or NaN
        for (int64_t i = b * kGrain; i < std::min(n, (b + 1) * kGrain); i++) {
          uint32_t u;
          std::memcpy(&u, X + i, 4);
          any |= uint32_t((u & 0x7f800000u) == 0x7f800000u);
        }
        hit[size_t(b)] = uint8_t(any);
      }
    });
    for (uint8_t h : hit) bad = bad || h;
  }
  found.data<float>()[0] = bad ? 1.0f : 0.0f;
}

}  // namespace dbt::ops::cpu
