#include "ops/optim.h"
#include "ops/tensor_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/check.h"

namespace dbt::ops {

#define DBT_TABLE(NAME, FN)                              \
  OpTable<FN>& NAME##_table() {                          \
    static OpTable<FN> t(#NAME, &ref::NAME, &cpu::NAME); \
    return t;                                            \
  }
DBT_TABLE(adamw_update, AdamWFn)
DBT_TABLE(adamw8bit_update, AdamW8bitFn)
DBT_TABLE(adamw8bit_update_multi, AdamW8bitMultiFn)
DBT_TABLE(global_norm, GlobalNormFn)
DBT_TABLE(clip_by_norm, ClipByNormFn)
DBT_TABLE(ema_update, EmaFn)
DBT_TABLE(check_finite, CheckFiniteFn)
#undef DBT_TABLE

namespace {

// bitsandbytes create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): for exponent i in 0..6,
// the midpoints of linspace(0.1, 1, k+1) scaled by 10^(i-6), k = 2^i (signed, both signs) or 2^(i+1)
// (unsigned); plus 0 and 1; 256 values, sorted.
std::vector<float> make_map(bool is_signed) {
  std::vector<double> d;
  for (int i = 0; i < 7; i++) {
    int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
    double scale = std::pow(10.0, double(i - 6));
    for (int k = 0; k + 1 < items; k++) {
      double lo = 0.1 + 0.9 * double(k) / double(items - 1), hi = 0.1 + 0.9 * double(k + 1) / double(items - 1);
      double mean = (lo + hi) / 2.0;
      d.push_back(scale * mean);
      if (is_signed) d.push_back(-scale * mean);
    }
  }
  d.push_back(0.0);
  d.push_back(1.0);
  std::sort(d.begin(), d.end());
  std::vector<float> f(d.size());
  for (size_t i = 0; i < d.size(); i++) f[i] = float(d[i]);
  return f;
}

}  // namespace

const float* dynamic_map(bool is_signed) {
  static const std::vector<float> s = make_map(true), u = make_map(false);
  return is_signed ? s.data() : u.data();
}

int64_t adamw8bit_blocks(int64_t numel, int block) { return (numel + block - 1) / block; }

namespace {
uint8_t zero_code(bool is_signed) {
  const float* m = dynamic_map(is_signed);
  for (int i = 0; i < 256; i++)
    if (m[i] == 0.0f) return uint8_t(i);
  return 0;
}

void check_state(const Checker& ck, const Tensor& param, const Tensor& m_q, const Tensor& m_absmax,
                 const Tensor& v_q, const Tensor& v_absmax, int block) {
  ck.require(block == 2048 || block == 256, "block must be 2048 or 256");
  ck.dtype(m_q, "m_q", DType::u8);
  ck.dtype(v_q, "v_q", DType::u8);
  ck.dtype(m_absmax, "m_absmax", DType::f32);
  ck.dtype(v_absmax, "v_absmax", DType::f32);
  ck.require(m_q.numel() == param.numel() && v_q.numel() == param.numel(), "m_q and v_q need one code per parameter");
  int64_t blocks = adamw8bit_blocks(param.numel(), block);
  ck.require(m_absmax.numel() == blocks && v_absmax.numel() == blocks,
             "m_absmax and v_absmax need one entry per block (" + std::to_string(blocks) + ")");
}

void check_adam_params(const Checker& ck, const AdamWParams& p) {
  ck.require(p.step >= 1, "step must be >= 1");
  ck.require(p.beta1 >= 0 && p.beta1 < 1 && p.beta2 >= 0 && p.beta2 < 1, "betas must be in [0, 1)");
  ck.require(p.eps > 0 && p.lr >= 0, "eps must be positive and lr non-negative");
}

// With stochastic rounding the kernels compute in f32 whatever the (bf16) parameter storage.
DType adam_compute_dtype(const AdamWParams& p, DType param) { return p.stochastic_rounding ? DType::f32 : param; }

void check_sr_param(const Checker& ck, const Tensor& param, const AdamWParams& p) {
  if (!p.stochastic_rounding) return;
  ck.require(param.dtype() == DType::bf16, "stochastic_rounding updates bf16 parameters (param and grad bf16)");
  ck.require(param.numel() <= kSrMaxElements, "stochastic_rounding: at most 2^34 elements per tensor");
}

// Validates one 8-bit AdamW tensor and its state; returns the device.
Device check_adam8(const char* op, const Tensor& param, const Tensor& grad, const Tensor& m_q, const Tensor& m_absmax,
                   const Tensor& v_q, const Tensor& v_absmax, int block, const AdamWParams& p) {
  Checker ck(op, {{"param", &param}, {"grad", &grad}, {"m_q", &m_q}, {"m_absmax", &m_absmax}, {"v_q", &v_q},
                  {"v_absmax", &v_absmax}});
  ck.defined();
  ck.require(param.dtype() == grad.dtype() && dtype_is_float(param.dtype()), "param and grad must share a float dtype");
  ck.same_shape(param, "param", grad, "grad");
  check_state(ck, param, m_q, m_absmax, v_q, v_absmax, block);
  check_adam_params(ck, p);
  check_sr_param(ck, param, p);
  return ck.device();
}
}  // namespace

void adamw8bit_init(Tensor& m_q, Tensor& m_absmax, Tensor& v_q, Tensor& v_absmax) {
  Checker ck("adamw8bit_init", {{"m_q", &m_q}, {"m_absmax", &m_absmax}, {"v_q", &v_q}, {"v_absmax", &v_absmax}});
  ck.defined();
  ck.dtype(m_q, "m_q", DType::u8);
  ck.dtype(v_q, "v_q", DType::u8);
  fill(m_q, zero_code(true));
  fill(v_q, zero_code(false));
  fill(m_absmax, 0.0);
  fill(v_absmax, 0.0);
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) {
  Checker ck("adamw_update", {{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
  ck.defined();
  DType dt;
  if (p.stochastic_rounding) {
    check_sr_param(ck, param, p);
    ck.dtype(grad, "grad", DType::bf16);
    ck.dtype(m, "m", DType::f32);
    ck.dtype(v, "v", DType::f32);
    dt = DType::f32;
  } else {
    dt = ck.same_float_dtype();
  }
  ck.same_shape(param, "param", grad, "grad");
  ck.same_shape(param, "param", m, "m");
  ck.same_shape(param, "param", v, "v");
  check_adam_params(ck, p);
  adamw_update_table().get(ck.device(), dt)(param, grad, m, v, p);
}

void adamw8bit_update(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q,
                      Tensor& v_absmax, int block, const AdamWParams& p) {
  Device d = check_adam8("adamw8bit_update", param, grad, m_q, m_absmax, v_q, v_absmax, block, p);
  adamw8bit_update_table().get(d, adam_compute_dtype(p, param.dtype()))(param, grad, m_q, m_absmax, v_q, v_absmax, block, p);
}

void adamw8bit_update_multi(const std::vector<AdamW8bitTensor>& tensors, int block, const AdamWParams& p) {
  if (tensors.empty()) return;
  Device d = Device::cpu;
  for (size_t i = 0; i < tensors.size(); i++) {
    const AdamW8bitTensor& t = tensors[i];
    std::string op = "adamw8bit_update_multi (entry " + std::to_string(i) + ")";
    if (!t.param || !t.grad || !t.m_q || !t.m_absmax || !t.v_q || !t.v_absmax)
      throw OpError(op.c_str(), "every entry needs param, grad, m_q, m_absmax, v_q and v_absmax", "");
    Device di = check_adam8(op.c_str(), *t.param, *t.grad, *t.m_q, *t.m_absmax, *t.v_q, *t.v_absmax, block, p);
    if (i == 0) d = di;
    if (di != d || t.param->dtype() != tensors[0].param->dtype())
      throw OpError(op.c_str(), "all entries must share the device and the parameter dtype of entry 0",
                    describe_operands({{"param", t.param}, {"param 0", tensors[0].param}}));
  }
  adamw8bit_update_multi_table().get(d, adam_compute_dtype(p, tensors[0].param->dtype()))(tensors, block, p);
}

namespace {
Device list_device(const char* op, const std::vector<Tensor>& ts, DType& dt) {
  if (ts.empty()) throw OpError(op, "needs at least one tensor", "");
  for (size_t i = 0; i < ts.size(); i++) {
    if (!ts[i].defined()) throw OpError(op, "tensor " + std::to_string(i) + " is undefined", "");
    if (ts[i].device() != ts[0].device() || ts[i].dtype() != ts[0].dtype() || !dtype_is_float(ts[i].dtype()))
      throw OpError(op, "tensor " + std::to_string(i) + " (" + ts[i].desc() + ") differs in device or dtype from " +
                            ts[0].desc() + " or is not floating point", "");
  }
  dt = ts[0].dtype();
  return ts[0].device();
}
}  // namespace

void global_norm(const std::vector<Tensor>& tensors, Tensor& out) {
  DType dt;
  Device d = list_device("global_norm", tensors, dt);
  Checker ck("global_norm", {{"out", &out}});
  ck.defined();
  ck.require(out.numel() == 1 && out.dtype() == dt && out.device() == d, "out must be one element like the tensors");
  global_norm_table().get(d, dt)(tensors, out);
}

void clip_by_norm(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm) {
  std::vector<Tensor> handles;
  for (Tensor* t : tensors) handles.push_back(t ? *t : Tensor());
  DType dt;
  Device d = list_device("clip_by_norm", handles, dt);
  Checker ck("clip_by_norm", {{"norm", &norm}});
  ck.defined();
  ck.require(norm.numel() == 1 && norm.dtype() == dt && norm.device() == d, "norm must be one element like the tensors");
  ck.require(max_norm > 0, "max_norm must be positive");
  clip_by_norm_table().get(d, dt)(tensors, norm, max_norm);
}

void ema_update(Tensor& ema, const Tensor& param, float decay) {
  Checker ck("ema_update", {{"ema", &ema}, {"param", &param}});
  ck.defined();
  DType dt = ck.same_float_dtype();
  ck.same_shape(ema, "ema", param, "param");
  ck.require(decay >= 0 && decay <= 1, "decay must be in [0, 1]");
  ema_update_table().get(ck.device(), dt)(ema, param, decay);
}

void check_finite(const std::vector<Tensor>& tensors, Tensor& found) {
  DType dt;
  Device d = list_device("check_finite", tensors, dt);
  Checker ck("check_finite", {{"found", &found}});
  ck.defined();
  ck.require(found.numel() == 1 && found.dtype() == DType::f32 && found.device() == d, "found must be one f32 element");
  check_finite_table().get(d)(tensors, found);
}

// ---- blockwise quantisation helpers (CPU tensors) ----

namespace {
uint8_t nearest_code(const float* map, float x) {
  const float* hi = std::lower_bound(map, map + 256, x);
  if (hi == map) return 0;
  if (hi == map + 256) return 255;
  const float* lo = hi - 1;
  return uint8_t((x - *lo <= *hi - x ? lo : hi) - map);
}
}  // namespace

void quantize_blockwise(const Tensor& x, bool is_signed, int block, Tensor& q, Tensor& absmax) {
  Checker ck("quantize_blockwise", {{"x", &x}, {"q", &q}, {"absmax", &absmax}});
  ck.defined();
  ck.dtype(x, "x", DType::f32);
  ck.dtype(q, "q", DType::u8);
  ck.dtype(absmax, "absmax", DType::f32);
  ck.require(x.is_cpu() && q.is_cpu() && absmax.is_cpu(), "runs on CPU tensors");
  ck.require(block >= 1 && q.numel() == x.numel() && absmax.numel() == adamw8bit_blocks(x.numel(), block),
             "q needs one code per element and absmax one entry per block");
  const float* map = dynamic_map(is_signed);
  const float* X = x.data<float>();
  for (int64_t b = 0; b < absmax.numel(); b++) {
    int64_t i0 = b * block, i1 = std::min<int64_t>(x.numel(), i0 + block);
    float am = 0.0f;
    for (int64_t i = i0; i < i1; i++) am = std::max(am, std::fabs(X[i]));
    absmax.data<float>()[b] = am;
    for (int64_t i = i0; i < i1; i++) q.data<uint8_t>()[i] = nearest_code(map, am > 0 ? X[i] / am : 0.0f);
  }
}

void dequantize_blockwise(const Tensor& q, const Tensor& absmax, bool is_signed, int block, Tensor& x) {
  Checker ck("dequantize_blockwise", {{"q", &q}, {"absmax", &absmax}, {"x", &x}});
  ck.defined();
  ck.dtype(x, "x", DType::f32);
  ck.dtype(q, "q", DType::u8);
  ck.require(x.is_cpu() && q.is_cpu() && absmax.is_cpu(), "runs on CPU tensors");
  ck.require(block >= 1 && q.numel() == x.numel() && absmax.numel() == adamw8bit_blocks(x.numel(), block),
             "q needs one code per element and absmax one entry per block");
  const float* map = dynamic_map(is_signed);
  for (int64_t i = 0; i < x.numel(); i++)
    x.data<float>()[i] = map[q.data<uint8_t>()[i]] * absmax.data<float>()[i / block];
}

}  // namespace dbt::ops
