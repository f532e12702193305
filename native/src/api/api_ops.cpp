// Op functions for JS. Each mirrors the C++ op: outputs are tensors the caller allocated (src/core
// computes their shapes), optional operands are null. Op errors surface as JS Errors with `op`.
#include "api/api.h"
#include "ops/ops.h"

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

// A 64-bit key part from JS: a non-negative safe integer or a BigInt (taken modulo 2^64).
uint64_t u64_value(const Napi::Value& v, const std::string& what) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (!v.IsNumber()) throw Error(what + " must be a non-negative integer or a BigInt");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0 && d == double(uint64_t(d))))
    throw Error(what + " must be a non-negative safe integer (or a BigInt), got " + std::to_string(d));
  return uint64_t(d);
}
uint32_t u32_value(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throw Error(what + " must be an integer in [0, 2^32)");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0 && d == double(uint32_t(d)))) throw Error(what + " must be an integer in [0, 2^32)");
  return uint32_t(d);
}
// castStochastic(src, dst, seed, step, stream)
Napi::Value CastStochastic(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 5) throw Error("castStochastic(src, dst, seed, step, stream): 5 arguments");
    SrKey k;
    k.seed = u64_value(info[2], "argument 3 (seed)");
    k.step = u64_value(info[3], "argument 4 (step)");
    k.stream = u32_value(info[4], "argument 5 (stream)");
    ops::cast_stochastic(T(0), T(1), k);
    return info.Env().Undefined();
  });
}

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

// ---- activations, softmax ----
ops::Activation activation(const Napi::CallbackInfo& info, size_t i) {
  std::string n = arg_string(info, i);
  if (n == "silu") return ops::Activation::silu;
  if (n == "gelu") return ops::Activation::gelu;
  if (n == "quick_gelu") return ops::Activation::quick_gelu;
  throw Error("unknown activation '" + n + "' (expected silu, gelu or quick_gelu)");
}
DBT_BIND(ActivationForward, ops::activation_forward(activation(info, 0), T(1), T(2)))
DBT_BIND(ActivationBackward, ops::activation_backward(activation(info, 0), T(1), T(2), T(3)))
DBT_BIND(GegluForward, ops::geglu_forward(T(0), T(1)))
DBT_BIND(GegluBackward, ops::geglu_backward(T(0), T(1), T(2)))
DBT_BIND(SoftmaxForward, ops::softmax_forward(T(0), T(1)))
DBT_BIND(SoftmaxBackward, ops::softmax_backward(T(0), T(1), T(2)))

// ---- norms: groupNormForward(x, gamma, beta, y, mean, rstd, groups, eps, silu) ----
ops::GroupNormParams gn_params(const Napi::CallbackInfo& info, size_t i) {
  return ops::GroupNormParams{int(NUM(i)), float(NUM(i + 1)), BOOL(i + 2, false)};
}
DBT_BIND(GroupNormForward, ops::group_norm_forward(T(0), T(1), T(2), gn_params(info, 6), T(3), OPT(4), OPT(5)))
// groupNormBackward(x, gamma, beta, mean, rstd, dy, dx, dgamma, dbeta, groups, eps, silu)
DBT_BIND(GroupNormBackward,
         ops::group_norm_backward(T(0), T(1), T(2), T(3), T(4), T(5), gn_params(info, 9), OPT(6), OPT(7), OPT(8)))
// layerNormForward(x, gamma, beta, y, mean, rstd, eps); layerNormBackward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta)
DBT_BIND(LayerNormForward, ops::layer_norm_forward(T(0), T(1), T(2), float(NUM(6)), T(3), OPT(4), OPT(5)))
DBT_BIND(LayerNormBackward, ops::layer_norm_backward(T(0), T(1), T(2), T(3), T(4), OPT(5), OPT(6), OPT(7)))

// ---- element-wise ----
ops::BinaryOp binary_op(const Napi::CallbackInfo& info, size_t i) {
  std::string n = arg_string(info, i);
  if (n == "add") return ops::BinaryOp::add;
  if (n == "sub") return ops::BinaryOp::sub;
  if (n == "mul") return ops::BinaryOp::mul;
  throw Error("unknown binary op '" + n + "' (expected add, sub or mul)");
}
DBT_BIND(BinaryForward, ops::binary_forward(binary_op(info, 0), T(1), T(2), T(3)))
DBT_BIND(BinaryBackward, ops::binary_backward(binary_op(info, 0), T(1), T(2), T(3), OPT(4), OPT(5)))
DBT_BIND(Axpby, ops::axpby(float(NUM(0)), T(1), float(NUM(2)), T(3)))
DBT_BIND(SumTo, ops::sum_to(T(0), T(1)))

// ---- attention: attentionForward(q, k, v, out, lse, heads, scale, causal) ----
ops::AttentionParams attn_params(const Napi::CallbackInfo& info, size_t i) {
  return ops::AttentionParams{int(NUM(i)), float(arg_number_or(info, i + 1, 0.0)), BOOL(i + 2, false)};
}
DBT_BIND(AttentionForward, ops::attention_forward(T(0), T(1), T(2), attn_params(info, 5), T(3), OPT(4)))
// attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, heads, scale, causal)
DBT_BIND(AttentionBackward,
         ops::attention_backward(T(0), T(1), T(2), T(3), T(4), T(5), attn_params(info, 9), OPT(6), OPT(7), OPT(8)))

// ---- data movement ----
std::vector<Tensor> tensor_list(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw Error("argument " + std::to_string(i + 1) + " must be an array of tensors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<Tensor> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!JsTensor::Is(v)) throw Error("argument " + std::to_string(i + 1) + ": entry " + std::to_string(k) + " is not a tensor");
    out.push_back(JsTensor::Unwrap(v.As<Napi::Object>())->tensor(info.Env()));
  }
  return out;
}
DBT_BIND(UpsampleForward, ops::upsample_nearest2x_forward(T(0), T(1)))
DBT_BIND(UpsampleBackward, ops::upsample_nearest2x_backward(T(0), T(1)))
DBT_BIND(Concat, ops::concat(tensor_list(info, 0), int(NUM(1)), T(2)))
Napi::Value Split(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::vector<Tensor> parts = tensor_list(info, 2);
    std::vector<Tensor*> ptrs;
    std::vector<int64_t> sizes;
    int d = int(NUM(1));
    Tensor& y = T(0);
    int dd = d < 0 ? d + y.ndim() : d;
    for (Tensor& p : parts) {
      ptrs.push_back(&p);
      sizes.push_back(dd >= 0 && dd < p.ndim() ? p.dim(dd) : 0);
    }
    ops::split(y, d, sizes, ptrs);
    return info.Env().Undefined();
  });
}

// ---- embeddings ----
DBT_BIND(EmbeddingForward, ops::embedding_forward(T(0), T(1), T(2)))
DBT_BIND(EmbeddingBackward, ops::embedding_backward(T(0), T(1), T(2)))
DBT_BIND(TimestepEmbedding, ops::timestep_embedding(T(0), int(NUM(1)), float(NUM(2)), T(3)))

// ---- reductions and loss ----
DBT_BIND(ReduceAll, ops::reduce_all(T(0), BOOL(1, false), T(2)))
DBT_BIND(ReduceAllBackward, ops::reduce_all_backward(T(0), BOOL(1, false), T(2)))
DBT_BIND(MseForward, ops::mse_loss_forward(T(0), T(1), OPT(2), T(3), OPT(4)))
DBT_BIND(MseBackward, ops::mse_loss_backward(T(0), T(1), OPT(2), T(3), T(4)))

// ---- optimizers: hyper-parameters as an object {lr, beta1, beta2, eps, weightDecay, step, gradScale} ----
ops::AdamWParams adam_params(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject()) throw Error("argument " + std::to_string(i + 1) + " must be an options object");
  Napi::Object o = info[i].As<Napi::Object>();
  auto num = [&](const char* k, double d) {
    Napi::Value v = o.Get(k);
    if (v.IsUndefined()) return d;
    if (!v.IsNumber()) throw Error(std::string("option ") + k + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  };
  ops::AdamWParams p;
  p.lr = num("lr", p.lr);
  p.beta1 = num("beta1", p.beta1);
  p.beta2 = num("beta2", p.beta2);
  p.eps = num("eps", p.eps);
  p.weight_decay = num("weightDecay", p.weight_decay);
  p.step = int64_t(num("step", double(p.step)));
  p.grad_scale = num("gradScale", p.grad_scale);
  Napi::Value sr = o.Get("stochasticRounding");
  if (!sr.IsUndefined()) {
    if (!sr.IsBoolean()) throw Error("option stochasticRounding must be a boolean");
    p.stochastic_rounding = sr.As<Napi::Boolean>().Value();
  }
  if (!o.Get("srSeed").IsUndefined()) p.sr_seed = u64_value(o.Get("srSeed"), "option srSeed");
  if (!o.Get("srStream").IsUndefined()) p.sr_stream = u32_value(o.Get("srStream"), "option srStream");
  return p;
}
DBT_BIND(AdamW, ops::adamw_update(T(0), T(1), T(2), T(3), adam_params(info, 4)))
DBT_BIND(AdamW8bitInit, ops::adamw8bit_init(T(0), T(1), T(2), T(3)))
// adamw8bit(param, grad, mQ, mAbsmax, vQ, vAbsmax, block, opts)
DBT_BIND(AdamW8bit, ops::adamw8bit_update(T(0), T(1), T(2), T(3), T(4), T(5), int(NUM(6)), adam_params(info, 7)))
// adamw8bitMulti(params[], grads[], mQ[], mAbsmax[], vQ[], vAbsmax[], block, opts[, srStreams[]]): one call for
// many tensors; srStreams gives each entry's stochastic rounding stream (default: the entry's index)
Napi::Value AdamW8bitMulti(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::vector<Tensor> l[6];
    for (size_t k = 0; k < 6; k++) l[k] = tensor_list(info, k);
    for (size_t k = 1; k < 6; k++)
      if (l[k].size() != l[0].size()) throw Error("adamw8bitMulti: the six lists must have one entry per parameter");
    std::vector<ops::AdamW8bitTensor> ts;
    const bool streams = info.Length() > 8 && !info[8].IsUndefined() && !info[8].IsNull();
    if (streams && (!info[8].IsArray() || info[8].As<Napi::Array>().Length() != l[0].size()))
      throw Error("adamw8bitMulti: srStreams must be an array with one entry per parameter");
    for (size_t i = 0; i < l[0].size(); i++) {
      uint32_t st = streams ? u32_value(info[8].As<Napi::Array>().Get(uint32_t(i)), "srStreams entry") : uint32_t(i);
      ts.push_back({&l[0][i], &l[1][i], &l[2][i], &l[3][i], &l[4][i], &l[5][i], st});
    }
    ops::adamw8bit_update_multi(ts, int(NUM(6)), adam_params(info, 7));
    return info.Env().Undefined();
  });
}
DBT_BIND(GlobalNorm, ops::global_norm(tensor_list(info, 0), T(1)))
Napi::Value ClipByNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::vector<Tensor> ts = tensor_list(info, 0);
    std::vector<Tensor*> ptrs;
    for (Tensor& t : ts) ptrs.push_back(&t);
    ops::clip_by_norm(ptrs, T(1), float(NUM(2)));
    return info.Env().Undefined();
  });
}
DBT_BIND(EmaUpdate, ops::ema_update(T(0), T(1), float(NUM(2))))
DBT_BIND(CheckFinite, ops::check_finite(tensor_list(info, 0), T(1)))

}  // namespace

void RegisterOps(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "fill", Fill);
  set_function(env, exports, "copy", Copy);
  set_function(env, exports, "cast", Cast);
  set_function(env, exports, "castStochastic", CastStochastic);
  set_function(env, exports, "gemm", Gemm);
  set_function(env, exports, "linearForward", LinearForward);
  set_function(env, exports, "linearBackward", LinearBackward);
  set_function(env, exports, "conv2dForward", Conv2dForward);
  set_function(env, exports, "conv2dBackward", Conv2dBackward);
  set_function(env, exports, "activationForward", ActivationForward);
  set_function(env, exports, "activationBackward", ActivationBackward);
  set_function(env, exports, "gegluForward", GegluForward);
  set_function(env, exports, "gegluBackward", GegluBackward);
  set_function(env, exports, "softmaxForward", SoftmaxForward);
  set_function(env, exports, "softmaxBackward", SoftmaxBackward);
  set_function(env, exports, "groupNormForward", GroupNormForward);
  set_function(env, exports, "groupNormBackward", GroupNormBackward);
  set_function(env, exports, "layerNormForward", LayerNormForward);
  set_function(env, exports, "layerNormBackward", LayerNormBackward);
  set_function(env, exports, "binaryForward", BinaryForward);
  set_function(env, exports, "binaryBackward", BinaryBackward);
  set_function(env, exports, "axpby", Axpby);
  set_function(env, exports, "sumTo", SumTo);
  set_function(env, exports, "attentionForward", AttentionForward);
  set_function(env, exports, "attentionBackward", AttentionBackward);
  set_function(env, exports, "upsampleForward", UpsampleForward);
  set_function(env, exports, "upsampleBackward", UpsampleBackward);
  set_function(env, exports, "concat", Concat);
  set_function(env, exports, "split", Split);
  set_function(env, exports, "embeddingForward", EmbeddingForward);
  set_function(env, exports, "embeddingBackward", EmbeddingBackward);
  set_function(env, exports, "timestepEmbedding", TimestepEmbedding);
  set_function(env, exports, "reduceAll", ReduceAll);
  set_function(env, exports, "reduceAllBackward", ReduceAllBackward);
  set_function(env, exports, "mseForward", MseForward);
  set_function(env, exports, "mseBackward", MseBackward);
  set_function(env, exports, "adamw", AdamW);
  set_function(env, exports, "adamw8bitInit", AdamW8bitInit);
  set_function(env, exports, "adamw8bit", AdamW8bit);
  set_function(env, exports, "adamw8bitMulti", AdamW8bitMulti);
  set_function(env, exports, "globalNorm", GlobalNorm);
  set_function(env, exports, "clipByNorm", ClipByNorm);
  set_function(env, exports, "emaUpdate", EmaUpdate);
  set_function(env, exports, "checkFinite", CheckFinite);
}

}  // namespace dbt::api
