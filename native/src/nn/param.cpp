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
  params_.push_back(Param{key, zeros_on(shape, dtype_, device_), Tensor(), this, false});
  if (mode_ == GradMode::full) params_.back().grad = zeros_on(shape, dtype_, device_);
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
  mode_ = on ? GradMode::full : GradMode::off;
  hook_ = nullptr;
  owner_ = nullptr;
  for (Param& p : params_) {
    if (on && !p.grad.defined()) p.grad = zeros_on(p.value.shape(), dtype_, device_);
    if (!on) p.grad = Tensor();
    p.ready = false;
  }
}

void ParamSet::enable_fused_grads(GradReadyFn hook, const void* owner) {
  if (!hook) throw Error("fused gradients need a gradient-ready hook (the optimizer step)");
  mode_ = GradMode::fused;
  hook_ = std::move(hook);
  owner_ = owner;
  signals_ = 0;
  for (Param& p : params_) {
    p.grad = Tensor();
    p.ready = false;
  }
}

Tensor* ParamSet::lazy_grad(Param& p) {
  if (mode_ != GradMode::fused) return nullptr;
  if (p.ready)
    throw Error("fused gradients: " + p.key + " is accumulated after its optimizer step in this backward (a parameter " +
                "used by a second module, or a backward without begin_backward)");
  p.grad = zeros_on(p.value.shape(), dtype_, device_);
  return &p.grad;
}

void ParamSet::grad_ready(Param& p) {
  if (mode_ != GradMode::fused) return;
  if (p.ready)
    throw Error("fused gradients: " + p.key + " signalled ready twice in one backward (a parameter used by two " +
                "modules cannot be stepped in backward)");
  p.ready = true;
  signals_++;
  if (!p.grad.defined()) p.grad = zeros_on(p.value.shape(), dtype_, device_);
  try {
    hook_(p);
  } catch (...) {
    p.grad = Tensor();
    throw;
  }
  p.grad = Tensor();
}

void ParamSet::begin_backward() {
  if (mode_ != GradMode::fused) return;
  for (Param& p : params_) {
    p.grad = Tensor();
    p.ready = false;
  }
}

void ParamSet::end_backward() {
  if (mode_ != GradMode::fused) return;
  for (Param& p : params_)
    if (!p.ready) grad_ready(p);
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
