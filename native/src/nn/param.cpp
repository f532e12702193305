#include "nn/param.h"

#include "ops/tensor_ops.h"

namespace dbt::nn {
namespace {
Tensor zeros_on(const Shape& s, DType dt, Device d) {
  if (d == Device::cpu) return Tensor::zeros(s, dt);
  Tensor t = Tensor::empty(s, dt, d);
  ops::fill(t, 0.0);
  return t;
}
Tensor copy_to(const Tensor& t, Device d) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), d);
  ops::copy(t, out);
  return out;
}
}  // namespace

Param* ParamSet::add(const std::string& key, const Shape& shape) {
  if (index_.count(key)) throw Error("parameter " + key + " registered twice");
  index_[key] = params_.size();
  params_.push_back(Param{key, zeros_on(shape, dtype_, device_), Tensor()});
  if (grads_) params_.back().grad = zeros_on(shape, dtype_, device_);
  return &params_.back();
}

Param* ParamSet::find(const std::string& key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &params_[it->second];
}

Param& ParamSet::at(const std::string& key) {
  Param* p = find(key);
  if (p == nullptr) throw Error("unknown parameter key " + key);
  return *p;
}

int64_t ParamSet::numel() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.value.numel();
  return n;
}

void ParamSet::enable_grads(bool on) {
  grads_ = on;
  for (Param& p : params_) {
    if (on && !p.grad.defined()) p.grad = zeros_on(p.value.shape(), dtype_, device_);
    if (!on) p.grad = Tensor();
  }
}

void ParamSet::zero_grads() {
  for (Param& p : params_)
    if (p.grad.defined()) ops::fill(p.grad, 0.0);
}

void ParamSet::to(Device d) {
  if (d == device_) return;
  for (Param& p : params_) {
    p.value = copy_to(p.value, d);
    if (p.grad.defined()) p.grad = copy_to(p.grad, d);
  }
  device_ = d;
}

}  // namespace dbt::nn
