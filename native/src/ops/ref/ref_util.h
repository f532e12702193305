// Helpers for the plain references: they run in f32 or f64 (chosen by the operands' dtype) and
// accumulate in double, so they serve as the oracle for fast kernels and for finite differences.
#pragma once
#include "core/error.h"
#include "core/tensor.h"

namespace dbt::ops::ref {

// Runs body with `T` bound to float or double according to dtype.
#define DBT_REF_FLOAT_SWITCH(dtype, OPNAME, ...)                                                \
  do {                                                                                          \
    if ((dtype) == ::dbt::DType::f32) {                                                         \
      using T = float;                                                                          \
      __VA_ARGS__;                                                                              \
    } else if ((dtype) == ::dbt::DType::f64) {                                                  \
      using T = double;                                                                         \
      __VA_ARGS__;                                                                              \
    } else {                                                                                    \
      throw ::dbt::OpError(OPNAME, std::string("reference runs in f32 or f64, got ") +         \
                                       ::dbt::dtype_name(dtype), "");                           \
    }                                                                                           \
  } while (0)

template <class T> inline const T* cptr(const Tensor* t) { return t ? t->data<T>() : nullptr; }
template <class T> inline T* mptr(Tensor* t) { return t ? t->data<T>() : nullptr; }

}  // namespace dbt::ops::ref
