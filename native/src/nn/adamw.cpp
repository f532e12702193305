#include "nn/adamw.h"

#include <vector>

#include "ops/tensor_ops.h"

namespace dbt::nn {

AdamW::AdamW(ParamSet& ps, bool eight_bit, int block, DType moment_dtype)
    : ps_(ps), eight_bit_(eight_bit), block_(block) {
  if (eight_bit && block != 2048 && block != 256)
    throw Error("8-bit AdamW: block must be 2048 or 256, got " + std::to_string(block));
  const Device d = ps.device();
  for (Param& p : ps.all()) {
    index_[&p] = states_.size();
    State s;
    const int64_t n = p.value.numel();
    if (eight_bit) {
      const int64_t nb = ops::adamw8bit_blocks(n, block);
      s.m_q = Tensor::empty({n}, DType::u8, d);
      s.v_q = Tensor::empty({n}, DType::u8, d);
      s.m_absmax = Tensor::empty({nb}, DType::f32, d);
      s.v_absmax = Tensor::empty({nb}, DType::f32, d);
      ops::adamw8bit_init(s.m_q, s.m_absmax, s.v_q, s.v_absmax);
    } else {
      s.m = Tensor::empty(p.value.shape(), moment_dtype, d);
      s.v = Tensor::empty(p.value.shape(), moment_dtype, d);
      ops::fill(s.m, 0.0);
      ops::fill(s.v, 0.0);
    }
    states_.push_back(std::move(s));
  }
}

AdamW::~AdamW() {
  if (ps_.hook_owner() == this) ps_.enable_grads(false);
}

size_t AdamW::index(const Param& p) const {
  auto it = index_.find(&p);
  if (it == index_.end()) throw Error("AdamW: " + p.key + " is not a parameter of this optimizer's network");
  return it->second;
}

void AdamW::step(Param& p) {
  const size_t i = index(p);
  if (!p.grad.defined()) throw Error("AdamW: " + p.key + " has no gradient (gradients off?)");
  ops::AdamWParams hp = hp_;
  hp.sr_stream = uint32_t(i);
  State& s = states_[i];
  if (eight_bit_) {
    ops::adamw8bit_update(p.value, p.grad, s.m_q, s.m_absmax, s.v_q, s.v_absmax, block_, hp);
  } else {
    // Otherwise the op refuses the mixed dtypes without saying what to change.
    if (s.m.dtype() != p.value.dtype() && !hp.stochastic_rounding)
      throw Error("AdamW: " + p.key + " is " + dtype_name(p.value.dtype()) + " with " + dtype_name(s.m.dtype()) +
                  " moments, which only stochastic rounding (bf16 parameters) updates; turn it on, or keep the moments "
                  "in the parameters' dtype (momentDtype)");
    ops::adamw_update(p.value, p.grad, s.m, s.v, hp);
  }
}

void AdamW::step_all() {
  if (ps_.grad_mode() != GradMode::full)
    throw Error("AdamW::step_all needs full gradients (enable_grads(true)); fused gradients step in backward");
  auto& ps = ps_.all();
  if (!eight_bit_) {
    for (Param& p : ps) step(p);
    return;
  }
  std::vector<ops::AdamW8bitTensor> list;
  for (size_t i = 0; i < ps.size(); i++) {
    State& s = states_[i];
    list.push_back({&ps[i].value, &ps[i].grad, &s.m_q, &s.m_absmax, &s.v_q, &s.v_absmax, uint32_t(i)});
  }
  ops::adamw8bit_update_multi(list, block_, hp_);
}

void AdamW::fuse() {
  ps_.enable_fused_grads([this](Param& p) { step(p); }, this);
}

}  // namespace dbt::nn
