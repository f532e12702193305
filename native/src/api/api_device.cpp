// Device availability for JS: what the CUDA backend found, and the choice of cuda:N.
#include "api/api.h"
#include "core/backends.h"

namespace dbt::api {
namespace {

Napi::Value CudaStatusFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    Napi::Env env = info.Env();
    CudaStatus s = cuda_status();
    Napi::Object o = Napi::Object::New(env);
    o.Set("built", Napi::Boolean::New(env, s.built));
    o.Set("available", Napi::Boolean::New(env, s.available));
    o.Set("reason", Napi::String::New(env, s.reason));
    o.Set("archs", Napi::String::New(env, s.archs));
    o.Set("device", Napi::Number::New(env, s.device));
    o.Set("runtimeVersion", Napi::Number::New(env, s.runtime_version));
    o.Set("driverVersion", Napi::Number::New(env, s.driver_version));
    Napi::Array devices = Napi::Array::New(env, s.devices.size());
    for (size_t i = 0; i < s.devices.size(); i++) {
      const CudaDeviceInfo& d = s.devices[i];
      Napi::Object od = Napi::Object::New(env);
      od.Set("index", Napi::Number::New(env, d.index));
      od.Set("name", Napi::String::New(env, d.name));
      od.Set("computeCapability", Napi::String::New(env, std::to_string(d.major) + "." + std::to_string(d.minor)));
      od.Set("multiprocessors", Napi::Number::New(env, d.multiprocessors));
      od.Set("totalMemory", Napi::Number::New(env, double(d.total_memory)));
      devices.Set(uint32_t(i), od);
    }
    o.Set("devices", devices);
    return Napi::Value(o);
  });
}

Napi::Value CudaSelectDeviceFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    double n = arg_number(info, 0);
    if (!(n >= 0 && n < 1024 && n == double(int(n)))) throw Error("cudaSelectDevice: expected a device index");
    cuda_select_device(int(n));
    return info.Env().Undefined();
  });
}

}  // namespace

void RegisterDevice(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "cudaStatus", CudaStatusFn);
  set_function(env, exports, "cudaSelectDevice", CudaSelectDeviceFn);
}

}  // namespace dbt::api
