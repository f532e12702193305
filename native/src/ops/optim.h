// Optimizer updates and the training-step utilities around them: AdamW (f32 moments), 8-bit blockwise
// AdamW, global gradient norm and clipping, EMA of weights, and the loss-scale overflow check.
#pragma once
#include <vector>

#include "core/dispatch.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace dbt::ops {

// PyTorch AdamW (decoupled weight decay), step t >= 1:
//   g = grad * grad_scale;  p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// grad_scale folds in loss-scale unscaling and gradient clipping without another pass.
// Hyper-parameters are doubles (as in PyTorch, where 1 - beta is formed in double and then rounded).
struct AdamWParams {
  double lr = 1e-6;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  int64_t step = 1;
  double grad_scale = 1.0;
  // bf16 parameters without an f32 master copy: param and grad are bf16, the update runs in f32 (the CPU
  // fast version's arithmetic) and the new parameter is stored by cast_stochastic with key
  // {sr_seed, step, sr_stream} (adamw8bit_update_multi: the entry's sr_stream). Moments stay f32 / 8-bit.
  // The result equals: widen param to f32, run the f32 update, cast_stochastic the f32 parameter.
  bool stochastic_rounding = false;
  uint64_t sr_seed = 0;
  uint32_t sr_stream = 0;
};
// The rounding key of a stochastically rounded update of tensor `stream`.
inline SrKey adamw_sr_key(const AdamWParams& p, uint32_t stream) {
  SrKey k;
  k.seed = p.sr_seed;
  k.step = uint64_t(p.step);
  k.stream = stream;
  return k;
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p);

// 8-bit AdamW state (bitsandbytes-style blockwise dynamic quantisation, documented in docs/native.md):
//   m_q, v_q: u8 [numel], one code per element; m_absmax, v_absmax: f32 [blocks], blocks = ceil(numel / block).
//   m[i] = kSignedMap[m_q[i]] * m_absmax[i / block];  v[i] = kUnsignedMap[v_q[i]] * v_absmax[i / block].
// Each update dequantises a block, runs the AdamW step above in f32, takes the block's new absmax and
// stores each moment as the nearest code. block is 2048 or 256.
int64_t adamw8bit_blocks(int64_t numel, int block);
// Sets a state to all-zero moments.
void adamw8bit_init(Tensor& m_q, Tensor& m_absmax, Tensor& v_q, Tensor& v_absmax);
void adamw8bit_update(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q,
                      Tensor& v_absmax, int block, const AdamWParams& p);
// Many tensors' 8-bit AdamW updates in one call (on CUDA: one launch over all of them), the same as
// adamw8bit_update on each entry in turn. All entries share the device and the parameter dtype.
struct AdamW8bitTensor {
  Tensor* param;
  const Tensor* grad;
  Tensor* m_q;
  Tensor* m_absmax;
  Tensor* v_q;
  Tensor* v_absmax;
  uint32_t sr_stream = 0;  // with AdamWParams::stochastic_rounding: this entry's rounding stream
};
void adamw8bit_update_multi(const std::vector<AdamW8bitTensor>& tensors, int block, const AdamWParams& p);
// The 256-entry code books, ascending: signed (first moment, in [-1, 1]) and unsigned (second, in [0, 1]).
// Both contain 0 and 1; they are bitsandbytes' create_dynamic_map(signed) values (computed in double).
const float* dynamic_map(bool is_signed);
// Blockwise quantisation helpers (state conversion, tests): q u8 [numel], absmax f32 [blocks].
void quantize_blockwise(const Tensor& x, bool is_signed, int block, Tensor& q, Tensor& absmax);
void dequantize_blockwise(const Tensor& q, const Tensor& absmax, bool is_signed, int block, Tensor& x);

// out (one f32 element) = sqrt(sum over every tensor of sum(x^2)), in fixed blocks (deterministic).
void global_norm(const std::vector<Tensor>& tensors, Tensor& out);
// Scales every tensor by min(1, max_norm / (norm + 1e-6)), norm read from a one-element tensor.
void clip_by_norm(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm);
// ema -= (1 - decay) * (ema - param)   (LDM's LitEma update)
void ema_update(Tensor& ema, const Tensor& param, float decay);
// found (one f32 element) = 1 if any element of any tensor is inf or NaN, else 0.
void check_finite(const std::vector<Tensor>& tensors, Tensor& found);

using AdamWFn = void (*)(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p);
using AdamW8bitFn = void (*)(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q,
                             Tensor& v_absmax, int block, const AdamWParams& p);
using AdamW8bitMultiFn = void (*)(const std::vector<AdamW8bitTensor>& tensors, int block, const AdamWParams& p);
using GlobalNormFn = void (*)(const std::vector<Tensor>& tensors, Tensor& out);
using ClipByNormFn = void (*)(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm);
using EmaFn = void (*)(Tensor& ema, const Tensor& param, float decay);
using CheckFiniteFn = void (*)(const std::vector<Tensor>& tensors, Tensor& found);
OpTable<AdamWFn>& adamw_update_table();
OpTable<AdamW8bitFn>& adamw8bit_update_table();
OpTable<AdamW8bitMultiFn>& adamw8bit_update_multi_table();
OpTable<GlobalNormFn>& global_norm_table();
OpTable<ClipByNormFn>& clip_by_norm_table();
OpTable<EmaFn>& ema_update_table();
OpTable<CheckFiniteFn>& check_finite_table();

#define DBT_OPTIM_DECLS                                                                                     \
  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p);         \
  void adamw8bit_update(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q,      \
                        Tensor& v_absmax, int block, const AdamWParams& p);                                 \
  void adamw8bit_update_multi(const std::vector<AdamW8bitTensor>& tensors, int block, const AdamWParams& p);   \
  void global_norm(const std::vector<Tensor>& tensors, Tensor& out);                                        \
  void clip_by_norm(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm);               \
  void ema_update(Tensor& ema, const Tensor& param, float decay);                                           \
  void check_finite(const std::vector<Tensor>& tensors, Tensor& found);
namespace ref {
DBT_OPTIM_DECLS
}
namespace cpu {
DBT_OPTIM_DECLS
}
#undef DBT_OPTIM_DECLS

}  // namespace dbt::ops
