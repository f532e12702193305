// Per-op dispatch on the device of the operands. Each op has one OpTable holding, for the same
// function signature: the CPU reference, the CPU fast version, and one slot per other device that a
// backend fills at start-up (native/cuda registers its kernels with `table.set(Device::cuda, fn)`).
// The public op function validates its arguments (shapes, dtypes, devices) once, then calls the table,
// so kernels receive checked arguments.
#pragma once
#include <initializer_list>
#include <string>

#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"

namespace dbt {

// When true (DBT_REFERENCE=1 in the environment, or set_use_reference), CPU ops run their plain
// reference instead of the fast version — for debugging a suspected fast-kernel bug.
bool use_reference();
void set_use_reference(bool on);

template <class Fn>
class OpTable {
 public:
  OpTable(const char* name, Fn reference, Fn cpu_fast) : name_(name), reference_(reference) {
    impl_[int(Device::cpu)] = cpu_fast;
  }
  void set(Device d, Fn fn) { impl_[int(d)] = fn; }
  Fn reference() const { return reference_; }
  // For float ops: on the CPU, f64 operands always run the reference (tests use it for finite
  // differences) and f16/bf16 are refused (the CPU computes in f32: cast first).
  Fn get(Device d, DType compute) const {
    if (d == Device::cpu) {
      if (compute == DType::f64) return reference_;
      if (compute != DType::f32)
        throw OpError(name_, std::string("the CPU computes in f32 (or f64 for references), got ") +
                                 dtype_name(compute) + "; cast to f32 first", "");
    }
    return get(d);
  }
  Fn get(Device d) const {
    if (d == Device::cpu && use_reference()) return reference_;
    Fn fn = impl_[int(d)];
    if (!fn)
      throw OpError(name_, std::string("no implementation for device ") + device_name(d) + " in this build", "");
    return fn;
  }
  const char* name() const { return name_; }

 private:
  const char* name_;
  Fn reference_;
  Fn impl_[kNumDevices] = {};
};

// The device all defined operands share; throws OpError naming the operands if they differ.
Device common_device(const char* op, std::initializer_list<Operand> operands);

}  // namespace dbt
