// Argument validation shared by the op front functions. Every failure is an OpError naming the op and
// describing all operands, e.g. "linear_forward: w must be [out, in] with in = 5 (x [2,5] f32, w [3,4] f32)".
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/tensor.h"

namespace dbt::ops {

class Checker {
 public:
  Checker(const char* op, std::initializer_list<Operand> operands) : op_(op), operands_(operands) {}

  [[noreturn]] void fail(const std::string& what) const;
  void require(bool cond, const std::string& what) const {
    if (!cond) fail(what);
  }
  // Every listed operand is defined (non-null and with storage).
  void defined() const;
  // All defined float operands share one dtype; returns it. Integer operands are skipped.
  DType same_float_dtype() const;
  // The named operand has this dtype.
  void dtype(const Tensor& t, const char* name, DType want) const;
  void shape(const Tensor& t, const char* name, const Shape& want) const;
  void ndim(const Tensor& t, const char* name, int lo, int hi) const;
  void same_shape(const Tensor& a, const char* an, const Tensor& b, const char* bn) const;
  // All operands on one device; returns it.
  Device device() const;
  const char* op() const { return op_; }

 private:
  const char* op_;
  std::vector<Operand> operands_;
};

}  // namespace dbt::ops
