#include "ops/check.h"

namespace dbt::ops {

void Checker::fail(const std::string& what) const {
  std::string ops;
  for (const Operand& o : operands_) {
    if (!ops.empty()) ops += ", ";
    ops += o.name;
    ops += " ";
    ops += o.t ? o.t->desc() : "absent";
  }
  throw OpError(op_, what, ops);
}

void Checker::defined() const {
  for (const Operand& o : operands_)
    if (!o.t || !o.t->defined()) fail(std::string(o.name) + " is required");
}

DType Checker::same_float_dtype() const {
  bool found = false;
  DType d = DType::f32;
  for (const Operand& o : operands_) {
    if (!o.t || !o.t->defined() || !dtype_is_float(o.t->dtype())) continue;
    if (!found) {
      d = o.t->dtype();
      found = true;
    } else if (o.t->dtype() != d) {
      fail("floating-point operands must share one dtype");
    }
  }
  if (!found) fail("needs floating-point operands");
  return d;
}

void Checker::dtype(const Tensor& t, const char* name, DType want) const {
  if (t.dtype() != want) fail(std::string(name) + " must be " + dtype_name(want));
}

void Checker::shape(const Tensor& t, const char* name, const Shape& want) const {
  if (t.shape() != want) fail(std::string(name) + " must have shape " + want.str());
}

void Checker::ndim(const Tensor& t, const char* name, int lo, int hi) const {
  if (t.ndim() < lo || t.ndim() > hi)
    fail(std::string(name) + " must have " +
         (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) + " dimensions");
}

void Checker::same_shape(const Tensor& a, const char* an, const Tensor& b, const char* bn) const {
  if (a.shape() != b.shape()) fail(std::string(an) + " and " + bn + " must have the same shape");
}

Device Checker::device() const {
  bool found = false;
  Device d = Device::cpu;
  for (const Operand& o : operands_) {
    if (!o.t || !o.t->defined()) continue;
    if (!found) {
      d = o.t->device();
      found = true;
    } else if (o.t->device() != d) {
      fail("operands are on different devices");
    }
  }
  return d;
}

}  // namespace dbt::ops
