// Parameters of a network, addressed by their key in an original SD1.x (LDM) checkpoint
// (`model.diffusion_model.input_blocks.1.1.proj_in.weight`, …). Modules hold Param pointers, which stay
// valid for the ParamSet's lifetime (deque storage). Gradients exist only after enable_grads(true) and
// are accumulated by the modules' backward passes.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "core/device.h"
#include "core/tensor.h"

namespace dbt::nn {

struct Param {
  std::string key;
  Tensor value;
  Tensor grad;  // undefined while gradients are off
};

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

  // On: allocates zero gradients for every parameter (kept if already there). Off: frees them.
  void enable_grads(bool on);
  bool grads_enabled() const { return grads_; }
  void zero_grads();

 private:
  DType dtype_;
  Device device_ = Device::cpu;
  std::deque<Param> params_;
  std::unordered_map<std::string, size_t> index_;
  bool grads_ = false;
};

// The gradient to accumulate into, or null when gradients are off.
inline Tensor* grad_of(Param* p) { return p != nullptr && p->grad.defined() ? &p->grad : nullptr; }

}  // namespace dbt::nn
