// Module entry: tensors, allocator statistics, runtime info, and the op functions.
#include "api/api.h"
#include "core/allocator.h"
#include "core/backends.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"

namespace dbt::api {
namespace {

Napi::Object stats_object(Napi::Env env, const AllocStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("current", Napi::Number::New(env, double(s.current)));
  o.Set("peak", Napi::Number::New(env, double(s.peak)));
  o.Set("reserved", Napi::Number::New(env, double(s.reserved)));
  o.Set("live", Napi::Number::New(env, double(s.live)));
  o.Set("allocations", Napi::Number::New(env, double(s.allocations)));
  return o;
}

Napi::Value AllocStatsFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    Device d = info.Length() > 0 && info[0].IsString() ? parse_device(arg_string(info, 0)) : Device::cpu;
    return Napi::Value(stats_object(info.Env(), allocator(d).stats()));
  });
}

Napi::Value ResetPeakFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    Device d = info.Length() > 0 && info[0].IsString() ? parse_device(arg_string(info, 0)) : Device::cpu;
    allocator(d).reset_peak();
    return info.Env().Undefined();
  });
}

Napi::Value InfoFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", Napi::String::New(env, simd_level_name(simd_level())));
  o.Set("threads", Napi::Number::New(env, num_threads()));
  Napi::Array devices = Napi::Array::New(env);
  uint32_t n = 0;
  devices.Set(n++, Napi::String::New(env, "cpu"));
  if (has_allocator(Device::cuda)) devices.Set(n++, Napi::String::New(env, "cuda"));
  o.Set("devices", devices);
  return o;
}

Napi::Value SetNumThreadsFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    double n = arg_number(info, 0);
    if (!(n >= 1 && n <= 1024)) throw Error("setNumThreads: expected a thread count from 1 to 1024");
    set_num_threads(int(n));
    return info.Env().Undefined();
  });
}

}  // namespace
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  init_backends();
  RegisterTensor(env, exports);
  RegisterOps(env, exports);
  RegisterNN(env, exports);
  RegisterDevice(env, exports);
  RegisterFs(env, exports);
  set_function(env, exports, "allocStats", AllocStatsFn);
  set_function(env, exports, "resetPeak", ResetPeakFn);
  set_function(env, exports, "info", InfoFn);
  set_function(env, exports, "setNumThreads", SetNumThreadsFn);
  return exports;
}
}  // namespace dbt::api

static Napi::Object InitDbtNative(Napi::Env env, Napi::Object exports) { return dbt::api::Init(env, exports); }
NODE_API_MODULE(dbt_native, InitDbtNative)
