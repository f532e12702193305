#include "nn/param.h"

#include "ops/tensor_ops.h"

namespace dbt::nn {

Param* ParamSet::add(const std::string& key, const Shape& shape) {
  if (index_.count(key)) throw Error("parameter " + key + " registered twice");
  index_[key] = params_.size();
  params_.push_back(Param{key, Tensor::zeros(shape, dtype_), Tensor()});
  if (grads_) params_.back().grad = Tensor::zeros(shape, dtype_);
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
    if (on && !p.grad.defined()) p.grad = Tensor::zeros(p.value.shape(), dtype_);
    if (!on) p.grad = Tensor();
  }
}

void ParamSet::zero_grads() {
  for (Param& p : params_)
    if (p.grad.defined()) ops::fill(p.grad, 0.0);
}

}  // namespace dbt::nn
