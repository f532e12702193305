// AdamW over a network's parameters: the moments of every parameter (f32-style AdamW or 8-bit blockwise
// AdamW, ops/optim.h) on the parameters' device, and the update of one parameter with its gradient. The
// same per-parameter update serves both gradient modes (nn/param.h): step_all() after a full backward, or
// fuse(), which installs it as the fused mode's gradient-ready hook, so the step runs inside backward.
// Either way a parameter's update reads only its value, its gradient and its own state, and the rounding
// stream of stochastic rounding is the parameter's index: fused and full steps give the same bits.
#pragma once
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "core/tensor.h"
#include "nn/param.h"
#include "ops/optim.h"

namespace dbt::nn {

class AdamW {
 public:
  // 8-bit: u8 codes + f32 absmax per `block` elements (2048 or 256). Otherwise moments in moment_dtype
  // (the parameters' dtype, or f32 for bf16 parameters updated with stochastic rounding).
  // Keeps a reference to ps: the AdamW must not outlive it.
  AdamW(ParamSet& ps, bool eight_bit, int block = 2048, DType moment_dtype = DType::f32);
  // Turns gradients off if the ParamSet is still fused to this optimizer (its hook would dangle).
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // Hyper-parameters of the next update (the caller advances step and the learning rate per step).
  // sr_stream is set per parameter. grad_scale may unscale a loss scale; it cannot clip by global norm in
  // fused mode (no global norm exists before the first parameter is stepped).
  ops::AdamWParams& hparams() { return hp_; }

  // p's update with p.grad (p a parameter of the ParamSet).
  void step(Param& p);
  // Full mode: every parameter (8-bit: in batched calls), in order.
  void step_all();
  // Fused mode on the ParamSet with step() as its hook: each backward then updates every parameter.
  void fuse();

  struct State {
    Tensor m, v;                             // f32-style AdamW
    Tensor m_q, m_absmax, v_q, v_absmax;     // 8-bit
  };
  const State& state(const Param& p) const { return states_[index(p)]; }
  bool eight_bit() const { return eight_bit_; }
  int block() const { return block_; }

 private:
  size_t index(const Param& p) const;

  ParamSet& ps_;
  bool eight_bit_;
  int block_;
  ops::AdamWParams hp_;
  std::deque<State> states_;  // parallel to ps_.all()
  std::unordered_map<const Param*, size_t> index_;
};

}  // namespace dbt::nn
