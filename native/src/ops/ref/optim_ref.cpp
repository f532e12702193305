// Optimizer references: element loops in double; 8-bit codes by linear search of the code book.
#include <cmath>
#include <vector>

#include "ops/optim.h"
#include "ops/ref/ref_util.h"
#include "ops/tensor_ops.h"

namespace dbt::ops::ref {
namespace {

template <class T> void adamw_t(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) {
  const double bc1 = 1.0 - std::pow(p.beta1, double(p.step));
  const double bc2 = 1.0 - std::pow(p.beta2, double(p.step));
  for (int64_t i = 0; i < param.numel(); i++) {
    double g = double(grad.data<T>()[i]) * p.grad_scale;
    double mi = p.beta1 * double(m.data<T>()[i]) + (1.0 - p.beta1) * g;
    double vi = p.beta2 * double(v.data<T>()[i]) + (1.0 - p.beta2) * g * g;
    double w = double(param.data<T>()[i]) * (1.0 - p.lr * p.weight_decay);
    w -= p.lr / bc1 * mi / (std::sqrt(vi) / std::sqrt(bc2) + p.eps);
    m.data<T>()[i] = T(mi);
    v.data<T>()[i] = T(vi);
    param.data<T>()[i] = T(w);
  }
}

uint8_t nearest_linear(const float* map, float x) {
  int best = 0;
  for (int i = 1; i < 256; i++)
    if (std::fabs(x - map[i]) < std::fabs(x - map[best])) best = i;
  return uint8_t(best);
}

Tensor widen(const Tensor& t) {
  Tensor w = Tensor::empty(t.shape(), DType::f32);
  for (int64_t i = 0; i < t.numel(); i++) w.data<float>()[i] = bf16_to_f32(t.data<bf16_t>()[i]);
  return w;
}

// Stochastically rounded bf16 update: the f32 update (the fast version's f32 expression, so the bits agree),
// then cast_stochastic of the new f32 parameter.
void adamw_sr(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) {
  Tensor P = widen(param), G = widen(grad);
  const float b1 = float(p.beta1), b2 = float(p.beta2), gs = float(p.grad_scale), eps = float(p.eps);
  const float omb1 = float(1.0 - p.beta1), omb2 = float(1.0 - p.beta2);
  const float decay = float(1.0 - p.lr * p.weight_decay);
  const float step = float(double(p.lr) / (1.0 - std::pow(p.beta1, double(p.step))));
  const float inv_bc2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(p.beta2, double(p.step))));
  for (int64_t i = 0; i < param.numel(); i++) {
    const float g = G.data<float>()[i] * gs;
    const float mi = b1 * m.data<float>()[i] + omb1 * g;
    const float vi = b2 * v.data<float>()[i] + omb2 * g * g;
    m.data<float>()[i] = mi;
    v.data<float>()[i] = vi;
    float& w = P.data<float>()[i];
    w = w * decay - step * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps);
  }
  ref::cast_stochastic(P, param, adamw_sr_key(p, p.sr_stream));
}

}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) {
  if (p.stochastic_rounding) return adamw_sr(param, grad, m, v, p);
  DBT_REF_FLOAT_SWITCH(param.dtype(), "adamw_update", adamw_t<T>(param, grad, m, v, p));
}

void adamw8bit_update(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q,
                      Tensor& v_absmax, int block, const AdamWParams& p) {
  if (p.stochastic_rounding) {  // the f32 update on widened copies, then the stochastic cast
    Tensor P = widen(param), G = widen(grad);
    AdamWParams p32 = p;
    p32.stochastic_rounding = false;
    ref::adamw8bit_update(P, G, m_q, m_absmax, v_q, v_absmax, block, p32);
    return ref::cast_stochastic(P, param, adamw_sr_key(p, p.sr_stream));
  }
  if (param.dtype() != DType::f32) throw OpError("adamw8bit_update", "reference runs in f32", "");
  const float* sm = dynamic_map(true);
  const float* um = dynamic_map(false);
  const int64_t n = param.numel();
  // Same f32 arithmetic as the fast version (the codes must agree bit for bit); moments in f32 by design.
  const float b1 = float(p.beta1), b2 = float(p.beta2), gs = float(p.grad_scale), eps = float(p.eps);
  const float omb1 = float(1.0 - p.beta1), omb2 = float(1.0 - p.beta2);
  const float decay = float(1.0 - p.lr * p.weight_decay);
  const float step = float(double(p.lr) / (1.0 - std::pow(p.beta1, double(p.step))));
  const float inv_bc2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(p.beta2, double(p.step))));
  for (int64_t b = 0; b * block < n; b++) {
    const int64_t i0 = b * block, i1 = std::min<int64_t>(n, i0 + block);
    std::vector<float> mb, vb;
    for (int64_t i = i0; i < i1; i++) {
      float g = grad.data<float>()[i] * gs;
      float mi = sm[m_q.data<uint8_t>()[i]] * m_absmax.data<float>()[b];
      float vi = um[v_q.data<uint8_t>()[i]] * v_absmax.data<float>()[b];
      mi = b1 * mi + omb1 * g;
      vi = b2 * vi + omb2 * g * g;
      param.data<float>()[i] = param.data<float>()[i] * decay - step * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps);
      mb.push_back(mi);
      vb.push_back(vi);
    }
    float am = 0.0f, av = 0.0f;
    for (size_t k = 0; k < mb.size(); k++) {
      am = std::max(am, std::fabs(mb[k]));
      av = std::max(av, vb[k]);
    }
    m_absmax.data<float>()[b] = am;
    v_absmax.data<float>()[b] = av;
    for (int64_t i = i0; i < i1; i++) {
      m_q.data<uint8_t>()[i] = nearest_linear(sm, am > 0 ? mb[size_t(i - i0)] / am : 0.0f);
      v_q.data<uint8_t>()[i] = nearest_linear(um, av > 0 ? vb[size_t(i - i0)] / av : 0.0f);
    }
  }
}

void adamw8bit_update_multi(const std::vector<AdamW8bitTensor>& tensors, int block, const AdamWParams& p) {
  for (const AdamW8bitTensor& t : tensors) {
    AdamWParams pt = p;
    pt.sr_stream = t.sr_stream;
    ref::adamw8bit_update(*t.param, *t.grad, *t.m_q, *t.m_absmax, *t.v_q, *t.v_absmax, block, pt);
  }
}

void global_norm(const std::vector<Tensor>& tensors, Tensor& out) {
  double s = 0;
  for (const Tensor& t : tensors)
    for (int64_t i = 0; i < t.numel(); i++) {
      double v = t.dtype() == DType::f64 ? t.data<double>()[i] : double(t.data<float>()[i]);
      s += v * v;
    }
  if (out.dtype() == DType::f64) out.data<double>()[0] = std::sqrt(s);
  else out.data<float>()[0] = float(std::sqrt(s));
}

void clip_by_norm(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm) {
  double n = norm.dtype() == DType::f64 ? norm.data<double>()[0] : double(norm.data<float>()[0]);
  double c = std::min(1.0, double(max_norm) / (n + 1e-6));
  for (Tensor* t : tensors)
    for (int64_t i = 0; i < t->numel(); i++) {
      if (t->dtype() == DType::f64) t->data<double>()[i] *= c;
      else t->data<float>()[i] = float(double(t->data<float>()[i]) * c);
    }
}

void ema_update(Tensor& ema, const Tensor& param, float decay) {
  DBT_REF_FLOAT_SWITCH(ema.dtype(), "ema_update", {
    for (int64_t i = 0; i < ema.numel(); i++) {
      double e = double(ema.data<T>()[i]);
      ema.data<T>()[i] = T(e - (1.0 - double(decay)) * (e - double(param.data<T>()[i])));
    }
  });
}

void check_finite(const std::vector<Tensor>& tensors, Tensor& found) {
  float f = 0.0f;
  for (const Tensor& t : tensors)
    for (int64_t i = 0; i < t.numel(); i++) {
      double v = 0;
      switch (t.dtype()) {
        case DType::f32: v = t.data<float>()[i]; break;
        case DType::f64: v = t.data<double>()[i]; break;
        case DType::f16: v = f16_to_f32(t.data<f16_t>()[i]); break;
        case DType::bf16: v = bf16_to_f32(t.data<bf16_t>()[i]); break;
        default: break;
      }
      if (!std::isfinite(v)) f = 1.0f;
    }
  found.data<float>()[0] = f;
}

}  // namespace dbt::ops::ref
