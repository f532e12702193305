// Parameters of a network, addressed by their key in an original SD1.x (LDM) checkpoint
// (`model.diffusion_model.input_blocks.1.1.proj_in.weight`, …). Modules hold Param pointers, which stay
// valid for the ParamSet's lifetime (deque storage).
//
// Gradient modes:
//   off   — no gradients (inference, frozen networks).
//   full  — enable_grads(true): a zero gradient per parameter, allocated up front and kept; backward passes
//           accumulate into them (micro-batch accumulation, global-norm clipping, then an optimizer step).
//   fused — enable_fused_grads(hook): the optimizer step runs inside backward. A gradient is allocated
//           (zeroed) when a module first accumulates into it; when that module's backward has finished,
//           the module signals grad_ready(p), the hook runs (e.g. an AdamW step on p.value with p.grad)
//           and the gradient is freed, so only about one layer's gradients are alive at a time.
//           Restrictions: every backward is a step (no accumulation over micro-batches), no global
//           gradient-norm clipping and no dynamic loss scaling (both need every gradient before any step:
//           the norm, or the inf/NaN check that skips the step); use the full mode there (f16 training
//           with a dynamic loss scale; a static scale can be unscaled through AdamWParams::grad_scale).
// Invariant the fused mode relies on: each parameter belongs to exactly one module, whose backward runs
// once per network backward and reads the parameter's value (and accumulates its gradient) only before it
// signals ready. The network backward brackets the pass with begin_backward()/end_backward(); a second
// signal or an accumulation after the signal throws, and end_backward signals every parameter that got no
// gradient in this pass (CLIP layers past clip_skip) with a zero gradient, as the full mode would step it
// with its zeroed gradient; so every parameter gets exactly one signal per backward.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "core/device.h"
#include "core/tensor.h"

namespace dbt::nn {

class ParamSet;

struct Param {
  std::string key;
  Tensor value;
  Tensor grad;  // undefined while gradients are off (fused mode: except between first accumulation and ready)
  ParamSet* set = nullptr;
  bool ready = false;  // fused mode: signalled in the current backward
};

enum class GradMode { off, full, fused };

// Runs on a parameter whose gradient of this backward is complete (fused mode); the gradient is freed after.
using GradReadyFn = std::function<void(Param&)>;

class ParamSet {
 public:
  explicit ParamSet(DType dtype = DType::f32, Device device = Device::cpu) : dtype_(dtype), device_(device) {}
  ParamSet(const ParamSet&) = delete;
  ParamSet& operator=(const ParamSet&) = delete;

  // Registers a zero-initialised parameter; throws Error on a duplicate key.
  Param* add(const std::string& key, const Shape& shape);
  Param* find(const std::string& key);
  // Throws Error naming the key when it is not a parameter of this network.
  Param& at(const std::string& key);
  std::deque<Param>& all() { return params_; }
  const std::deque<Param>& all() const { return params_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int64_t numel() const;
  // Moves every value (and gradient) to device d; later parameters and gradients are allocated there.
  void to(Device d);

  // On: full mode, zero gradients for every parameter (kept if already there). Off: frees them.
  void enable_grads(bool on);
  // Fused mode with this hook (frees the full mode's gradients). enable_grads(false) turns it off. owner:
  // whoever the hook refers to (hook_owner() lets it turn the mode off before it goes away).
  void enable_fused_grads(GradReadyFn hook, const void* owner = nullptr);
  GradMode grad_mode() const { return mode_; }
  const void* hook_owner() const { return mode_ == GradMode::fused ? owner_ : nullptr; }
  bool grads_enabled() const { return mode_ != GradMode::off; }
  void zero_grads();

  // Fused mode: the gradient to accumulate into, allocated zeroed on first use (null in the other modes,
  // whose gradients grad_of finds directly). Throws if p was already signalled in this backward.
  Tensor* lazy_grad(Param& p);
  // p's gradient is final for this backward: in fused mode runs the hook and frees the gradient (throws on a
  // second signal); otherwise nothing.
  void grad_ready(Param& p);
  // Network backward passes call these around their work (no-ops unless fused). begin drops gradients left
  // by an interrupted pass and clears the signals; end signals every parameter not yet signalled.
  void begin_backward();
  void end_backward();
  // Fused mode: signals since enable_fused_grads (tests check one per parameter per backward).
  uint64_t ready_signals() const { return signals_; }

 private:
  DType dtype_;
  Device device_ = Device::cpu;
  std::deque<Param> params_;
  std::unordered_map<std::string, size_t> index_;
  GradMode mode_ = GradMode::off;
  GradReadyFn hook_;
  const void* owner_ = nullptr;
  uint64_t signals_ = 0;
};

// The gradient to accumulate into, or null when gradients are off.
inline Tensor* grad_of(Param* p) {
  if (p == nullptr) return nullptr;
  if (p->grad.defined()) return &p->grad;
  return p->set != nullptr ? p->set->lazy_grad(*p) : nullptr;
}

// Signals that the calling module has finished accumulating p's gradient in this backward (null: nothing).
inline void grad_ready(Param* p) {
  if (p != nullptr && p->set != nullptr) p->set->grad_ready(*p);
}

}  // namespace dbt::nn
