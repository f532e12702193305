// Op functions for JS. Each mirrors the C++ op: outputs are tensors the caller allocated (src/core
// computes their shapes), optional operands are null. Op errors surface as JS Errors with `op`.
#include "api/api.h"
#include "ops/conv2d.h"
#include "ops/gemm.h"
#include "ops/tensor_ops.h"

namespace dbt::api {
namespace {

#define DBT_BIND(NAME, ...)                                 \
  Napi::Value NAME(const Napi::CallbackInfo& info) {        \
    return guarded(info, [&]() -> Napi::Value {             \
      __VA_ARGS__;                                          \
      return info.Env().Undefined();                        \
    });                                                     \
  }

#define T(i) arg_tensor(info, i)
#define OPT(i) arg_opt_tensor(info, i)
#define NUM(i) arg_number(info, i)
#define BOOL(i, d) arg_bool_or(info, i, d)

// ---- tensor utilities ----
DBT_BIND(Fill, ops::fill(T(0), NUM(1)))
DBT_BIND(Copy, ops::copy(T(0), T(1)))
DBT_BIND(Cast, ops::cast(T(0), T(1)))

// ---- gemm family ----
// gemm(a, b, c, transA, transB, alpha, beta)
DBT_BIND(Gemm, ops::gemm(T(0), T(1), T(2),
                         ops::GemmParams{BOOL(3, false), BOOL(4, false), float(arg_number_or(info, 5, 1.0)),
                                         float(arg_number_or(info, 6, 0.0))}))
DBT_BIND(LinearForward, ops::linear_forward(T(0), T(1), OPT(2), T(3)))
DBT_BIND(LinearBackward, ops::linear_backward(T(0), T(1), T(2), OPT(3), OPT(4), OPT(5)))

// ---- conv2d: params (stride, padTop, padBottom, padLeft, padRight) ----
ops::Conv2dParams conv_params(const Napi::CallbackInfo& info, size_t i) {
  return ops::Conv2dParams{int(NUM(i)), int(NUM(i + 1)), int(NUM(i + 2)), int(NUM(i + 3)), int(NUM(i + 4))};
}
DBT_BIND(Conv2dForward, ops::conv2d_forward(T(0), T(1), OPT(2), conv_params(info, 4), T(3)))
DBT_BIND(Conv2dBackward, ops::conv2d_backward(T(0), T(1), T(2), conv_params(info, 6), OPT(3), OPT(4), OPT(5)))

}  // namespace

void RegisterOps(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "fill", Fill);
  set_function(env, exports, "copy", Copy);
  set_function(env, exports, "cast", Cast);
  set_function(env, exports, "gemm", Gemm);
  set_function(env, exports, "linearForward", LinearForward);
  set_function(env, exports, "linearBackward", LinearBackward);
  set_function(env, exports, "conv2dForward", Conv2dForward);
  set_function(env, exports, "conv2dBackward", Conv2dBackward);
}

}  // namespace dbt::api
