// The SD1.x networks for JS: `new NativeNet(kind, config, dtype, device)` with kind 'unet' | 'text' | 'vae'
// and config in the field names of src/model/arch.ts. Parameters are addressed by LDM checkpoint keys.
// Weights and the network's inputs live on its device in its dtype (f32 or f64 on the CPU; f32, f16 or bf16
// on CUDA); outputs are returned there too.
#include <memory>

#include "api/api.h"
#include "nn/adamw.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "ops/tensor_ops.h"

namespace dbt::api {
namespace {

double num(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber()) throw Error(std::string("network config: '") + k + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<int> ints(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsArray()) throw Error(std::string("network config: '") + k + "' must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  return out;
}

class JsNet : public Napi::ObjectWrap<JsNet> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeNet",
                       {InstanceMethod<&JsNet::ParamSpecs>("paramSpecs"), InstanceMethod<&JsNet::SetParam>("setParam"),
                        InstanceMethod<&JsNet::GetParam>("getParam"), InstanceMethod<&JsNet::GetGrad>("getGrad"),
                        InstanceMethod<&JsNet::EnableGrads>("enableGrads"), InstanceMethod<&JsNet::ZeroGrads>("zeroGrads"),
                        InstanceMethod<&JsNet::SetCheckpointing>("setCheckpointing"),
                        InstanceMethod<&JsNet::SetOptimizer>("setOptimizer"),
                        InstanceMethod<&JsNet::SetOptimizerParams>("setOptimizerParams"),
                        InstanceMethod<&JsNet::OptimizerStep>("optimizerStep"),
                        InstanceMethod<&JsNet::UnetForward>("unetForward"),
                        InstanceMethod<&JsNet::UnetBackward>("unetBackward"),
                        InstanceMethod<&JsNet::TextForward>("textForward"),
                        InstanceMethod<&JsNet::TextBackward>("textBackward"),
                        InstanceMethod<&JsNet::VaeEncode>("vaeEncode"), InstanceMethod<&JsNet::VaeDecode>("vaeDecode"),
                        InstanceMethod<&JsNet::Dispose>("dispose")});
  }

  explicit JsNet(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsNet>(info) {
    guarded(info, [&] {
      const std::string kind = arg_string(info, 0);
      if (info.Length() < 2 || !info[1].IsObject()) throw Error("NativeNet: argument 2 must be a config object");
      Napi::Object c = info[1].As<Napi::Object>();
      DType dt = info.Length() > 2 && info[2].IsString() ? parse_dtype(arg_string(info, 2)) : DType::f32;
      const Device dev = info.Length() > 3 && info[3].IsString() ? parse_device(arg_string(info, 3)) : Device::cpu;
      if (dev == Device::cpu && dt != DType::f32 && dt != DType::f64)
        throw Error("NativeNet: weights on the CPU are f32 (or f64 for tests), not " + std::string(dtype_name(dt)));
      if (dev != Device::cpu && dt != DType::f32 && dt != DType::f16 && dt != DType::bf16)
        throw Error("NativeNet: weights on CUDA are f32, f16 or bf16, not " + std::string(dtype_name(dt)));
      if (kind == "unet") {
        nn::UNetConfig u;
        u.in_channels = int64_t(num(c, "in_channels"));
        u.out_channels = int64_t(num(c, "out_channels"));
        u.model_channels = int64_t(num(c, "model_channels"));
        u.channel_mult = ints(c, "channel_mult");
        u.num_res_blocks = int(num(c, "num_res_blocks"));
        u.attention_resolutions = ints(c, "attention_resolutions");
        u.num_heads = int(num(c, "num_heads"));
        u.transformer_depth = int(num(c, "transformer_depth"));
        u.context_dim = int64_t(num(c, "context_dim"));
        u.num_groups = int(num(c, "num_groups"));
        unet_ = std::make_unique<nn::UNet>(u, dt, dev);
      } else if (kind == "text") {
        nn::ClipTextConfig t;
        t.vocab_size = int64_t(num(c, "vocab_size"));
        t.hidden_size = int64_t(num(c, "hidden_size"));
        t.num_layers = int(num(c, "num_layers"));
        t.num_heads = int(num(c, "num_heads"));
        t.intermediate_size = int64_t(num(c, "intermediate_size"));
        t.max_positions = int64_t(num(c, "max_position_embeddings"));
        t.layer_norm_eps = float(num(c, "layer_norm_eps"));
        text_ = std::make_unique<nn::ClipTextEncoder>(t, dt, dev);
      } else if (kind == "vae") {
        nn::VaeConfig v;
        v.in_channels = int64_t(num(c, "in_channels"));
        v.out_ch = int64_t(num(c, "out_ch"));
        v.ch = int64_t(num(c, "ch"));
        v.ch_mult = ints(c, "ch_mult");
        v.num_res_blocks = int(num(c, "num_res_blocks"));
        v.z_channels = int64_t(num(c, "z_channels"));
        v.embed_dim = int64_t(num(c, "embed_dim"));
        v.double_z = c.Get("double_z").ToBoolean();
        v.num_groups = int(num(c, "num_groups"));
        vae_ = std::make_unique<nn::Vae>(v, dt, dev);
      } else {
        throw Error("NativeNet: unknown network kind '" + kind + "' (unet, text or vae)");
      }
      return info.Env().Undefined();
    });
  }

 private:
  nn::ParamSet& params() {
    if (unet_) return unet_->params();
    if (text_) return text_->params();
    if (vae_) return vae_->params();
    throw Error("NativeNet: disposed");
  }
  nn::UNet& unet() {
    if (!unet_) throw Error("NativeNet: not a UNet (or disposed)");
    return *unet_;
  }
  nn::ClipTextEncoder& text() {
    if (!text_) throw Error("NativeNet: not a text encoder (or disposed)");
    return *text_;
  }
  nn::Vae& vae() {
    if (!vae_) throw Error("NativeNet: not a VAE (or disposed)");
    return *vae_;
  }

  Napi::Value ParamSpecs(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      Napi::Env env = info.Env();
      Napi::Array out = Napi::Array::New(env);
      uint32_t i = 0;
      for (const nn::Param& p : params().all()) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("key", p.key);
        Napi::Array s = Napi::Array::New(env);
        for (int d = 0; d < p.value.ndim(); d++) s.Set(uint32_t(d), Napi::Number::New(env, double(p.value.dim(d))));
        o.Set("shape", s);
        out.Set(i++, o);
      }
      return Napi::Value(out);
    });
  }

  // setParam(key, tensor): copies (converting f16/bf16/f32/f64) into the parameter; shapes must match. A
  // tensor on another device (host weights for a CUDA network) is converted there, then transferred.
  Napi::Value SetParam(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      nn::Param& p = params().at(arg_string(info, 0));
      Tensor& src = arg_tensor(info, 1);
      if (src.shape() != p.value.shape())
        throw Error(p.key + ": the file holds shape " + src.shape().str() + ", the network expects " + p.value.shape().str());
      if (src.dtype() == p.value.dtype()) {
        ops::copy(src, p.value);
      } else if (src.device() == p.value.device()) {
        ops::cast(src, p.value);
      } else {
        Tensor conv = Tensor::empty(src.shape(), p.value.dtype(), src.device());
        ops::cast(src, conv);
        ops::copy(conv, p.value);
      }
      return info.Env().Undefined();
    });
  }
  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    return guarded(info, [&] { return Napi::Value(JsTensor::Wrap(info.Env(), params().at(arg_string(info, 0)).value)); });
  }
  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      nn::Param& p = params().at(arg_string(info, 0));
      if (!p.grad.defined()) return info.Env().Null();
      return JsTensor::Wrap(info.Env(), p.grad);
    });
  }
  Napi::Value EnableGrads(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      params().enable_grads(arg_bool_or(info, 0, true));
      return info.Env().Undefined();
    });
  }
  Napi::Value ZeroGrads(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      params().zero_grads();
      return info.Env().Undefined();
    });
  }
  Napi::Value SetCheckpointing(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      const bool on = arg_bool_or(info, 0, true);
      if (unet_) unet_->set_checkpointing(on);
      else text().set_checkpointing(on);
      return info.Env().Undefined();
    });
  }
  // setOptimizer({eightBit, block, fused, momentDtype} | null): AdamW state (zero moments) for every parameter
  // on the network's device. fused: the step runs inside each backward (nn/param.h: no accumulation over
  // micro-batches, no global-norm clipping, no dynamic loss scaling); otherwise full gradients are enabled
  // and optimizerStep() applies them. null frees the state and turns gradients off.
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      nn::ParamSet& ps = params();
      opt_.reset();
      if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) {
        ps.enable_grads(false);
        return info.Env().Undefined();
      }
      if (!info[0].IsObject()) throw Error("setOptimizer: argument 1 must be an options object or null");
      Napi::Object o = info[0].As<Napi::Object>();
      const int block = o.Get("block").IsUndefined() ? 2048 : int(num(o, "block"));
      const DType md = o.Get("momentDtype").IsString() ? parse_dtype(o.Get("momentDtype").As<Napi::String>()) : DType::f32;
      opt_ = std::make_unique<nn::AdamW>(ps, o.Get("eightBit").ToBoolean(), block, md);
      if (o.Get("fused").ToBoolean()) opt_->fuse();
      else ps.enable_grads(true);
      return info.Env().Undefined();
    });
  }
  // setOptimizerParams({lr, beta1, beta2, eps, weightDecay, step, gradScale, stochasticRounding, srSeed}):
  // the fields given replace the current hyper-parameters (read by the next update).
  Napi::Value SetOptimizerParams(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      if (!opt_) throw Error("setOptimizerParams: no optimizer (setOptimizer first)");
      if (info.Length() < 1 || !info[0].IsObject()) throw Error("setOptimizerParams: argument 1 must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      ops::AdamWParams& hp = opt_->hparams();
      auto set = [&](const char* k, double& field) {
        if (!o.Get(k).IsUndefined()) field = num(o, k);
      };
      set("lr", hp.lr);
      set("beta1", hp.beta1);
      set("beta2", hp.beta2);
      set("eps", hp.eps);
      set("weightDecay", hp.weight_decay);
      set("gradScale", hp.grad_scale);
      if (!o.Get("step").IsUndefined()) hp.step = int64_t(num(o, "step"));
      if (!o.Get("srSeed").IsUndefined()) hp.sr_seed = uint64_t(num(o, "srSeed"));
      if (!o.Get("stochasticRounding").IsUndefined()) hp.stochastic_rounding = o.Get("stochasticRounding").ToBoolean();
      return info.Env().Undefined();
    });
  }
  // optimizerStep(): with full gradients, updates every parameter (fused optimizers step inside backward).
  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      if (!opt_) throw Error("optimizerStep: no optimizer (setOptimizer first)");
      opt_->step_all();
      return info.Env().Undefined();
    });
  }
  // unetForward(x, t, context, save) -> eps
  Napi::Value UnetForward(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      return Napi::Value(JsTensor::Wrap(
          info.Env(), unet().forward(arg_tensor(info, 0), arg_tensor(info, 1), arg_tensor(info, 2), arg_bool_or(info, 3, false))));
    });
  }
  // unetBackward(dy, dcontext | null)
  Napi::Value UnetBackward(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      unet().backward(arg_tensor(info, 0), arg_opt_tensor(info, 1));
      return info.Env().Undefined();
    });
  }
  // textForward(ids i32 [B, S], clipSkip, save) -> [B, S, hidden]
  Napi::Value TextForward(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      return Napi::Value(JsTensor::Wrap(
          info.Env(), text().forward(arg_tensor(info, 0), int(arg_number_or(info, 1, 1)), arg_bool_or(info, 2, false))));
    });
  }
  Napi::Value TextBackward(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      text().backward(arg_tensor(info, 0));
      return info.Env().Undefined();
    });
  }
  // vaeEncode(img) -> [mean, logvar]
  Napi::Value VaeEncode(const Napi::CallbackInfo& info) {
    return guarded(info, [&] {
      Tensor mean, logvar;
      vae().encode(arg_tensor(info, 0), mean, logvar);
      Napi::Array out = Napi::Array::New(info.Env(), 2);
      out.Set(0u, JsTensor::Wrap(info.Env(), mean));
      out.Set(1u, JsTensor::Wrap(info.Env(), logvar));
      return Napi::Value(out);
    });
  }
  Napi::Value VaeDecode(const Napi::CallbackInfo& info) {
    return guarded(info, [&] { return Napi::Value(JsTensor::Wrap(info.Env(), vae().decode(arg_tensor(info, 0)))); });
  }
  // Frees the weights now (tensors handed out by getParam keep their storage alive until disposed).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    opt_.reset();
    unet_.reset();
    text_.reset();
    vae_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<nn::UNet> unet_;
  std::unique_ptr<nn::ClipTextEncoder> text_;
  std::unique_ptr<nn::Vae> vae_;
  std::unique_ptr<nn::AdamW> opt_;  // after the networks: destroyed first (it refers to their parameters)
};

}  // namespace

void RegisterNN(Napi::Env env, Napi::Object exports) { exports.Set("NativeNet", JsNet::Define(env)); }

}  // namespace dbt::api
