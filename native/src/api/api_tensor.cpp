// Tensor objects for JS: create, read, write, view, dispose; argument helpers and error conversion.
#include <cstring>

#include "api/api.h"
#include "core/allocator.h"
#include "ops/tensor_ops.h"

namespace dbt::api {

namespace {
struct AddonData {
  Napi::FunctionReference tensor_ctor;
};
AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Napi::Error make_error(Napi::Env env, const std::string& msg, const char* code) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}
}  // namespace

// ---- errors ----

Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const OpError& e) {
    Napi::Error err = make_error(env, e.what(), "DBT_OP_ERROR");
    err.Set("op", Napi::String::New(env, e.op()));
    throw err;
  } catch (const OutOfMemoryError& e) {
    Napi::Error err = make_error(env, e.what(), "DBT_OOM");
    err.Set("requested", Napi::Number::New(env, double(e.requested())));
    throw err;
  } catch (const std::bad_alloc&) {
    throw make_error(env, "out of memory", "DBT_OOM");
  } catch (const std::exception& e) {
    throw make_error(env, e.what(), "DBT_ERROR");
  }
}

void set_function(Napi::Env env, Napi::Object exports, const char* name,
                  Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

// ---- argument readers ----

static std::string argpos(size_t i) { return "argument " + std::to_string(i + 1); }

Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !JsTensor::Is(info[i])) throw Error(argpos(i) + " must be a tensor");
  return JsTensor::Unwrap(info[i].As<Napi::Object>())->tensor(info.Env());
}

Tensor* arg_opt_tensor(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return &arg_tensor(info, i);
}

double arg_number(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Error(argpos(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

double arg_number_or(const Napi::CallbackInfo& info, size_t i, double dflt) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return dflt;
  return arg_number(info, i);
}

bool arg_bool_or(const Napi::CallbackInfo& info, size_t i, bool dflt) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return dflt;
  if (!info[i].IsBoolean()) throw Error(argpos(i) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw Error(argpos(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

dbt::Shape arg_shape(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw Error(argpos(i) + " must be a shape (array of sizes)");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> dims;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d == double(int64_t(d)) && d < 9.007199254740992e15))
      throw Error(argpos(i) + ": shape entries must be non-negative integers");
    dims.push_back(int64_t(d));
  }
  return dbt::Shape(dims);
}

dbt::DType parse_dtype(const std::string& s) {
  for (int k = 0; k < kNumDTypes; k++)
    if (s == dtype_name(dbt::DType(k))) return dbt::DType(k);
  throw Error("unknown dtype '" + s + "' (expected f32, f16, bf16, i32, u8 or f64)");
}

dbt::Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) return Device::cuda;
  throw Error("unknown device '" + s + "' (expected cpu or cuda)");
}

// ---- JsTensor ----

Napi::Function JsTensor::Define(Napi::Env env) {
  return DefineClass(env, "NativeTensor",
                     {InstanceAccessor<&JsTensor::Shape>("shape"), InstanceAccessor<&JsTensor::DType>("dtype"),
                      InstanceAccessor<&JsTensor::Device>("device"), InstanceAccessor<&JsTensor::Bytes>("nbytes"),
                      InstanceAccessor<&JsTensor::Disposed>("disposed"),
                      InstanceMethod<&JsTensor::Dispose>("dispose"), InstanceMethod<&JsTensor::Read>("read"),
                      InstanceMethod<&JsTensor::Write>("write"), InstanceMethod<&JsTensor::View>("view"),
                      InstanceMethod<&JsTensor::Slice>("slice")});
}

Napi::Object JsTensor::Wrap(Napi::Env env, Tensor t) {
  return addon_data(env).tensor_ctor.New({Napi::External<Tensor>::New(env, &t)});
}

bool JsTensor::Is(Napi::Value v) {
  if (!v.IsObject()) return false;
  return v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).tensor_ctor.Value());
}

JsTensor::JsTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTensor>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "NativeTensor is created by the core's tensor functions");
  t_ = *info[0].As<Napi::External<Tensor>>().Data();
  accounted_ = int64_t(t_.nbytes());
  if (accounted_) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), accounted_);
}

JsTensor::~JsTensor() { release(Env()); }

void JsTensor::release(Napi::Env env) {
  t_ = dbt::Tensor();
  if (accounted_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -accounted_);
    accounted_ = 0;
  }
}

Tensor& JsTensor::tensor(Napi::Env env) {
  if (!t_.defined()) throw Error("tensor used after dispose()");
  return t_;
}

Napi::Value JsTensor::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env);
  for (int i = 0; i < t_.shape().ndim(); i++) a.Set(uint32_t(i), Napi::Number::New(env, double(t_.shape()[i])));
  return a;
}
Napi::Value JsTensor::DType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(t_.dtype()));
}
Napi::Value JsTensor::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_name(t_.device()));
}
Napi::Value JsTensor::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(t_.defined() ? t_.nbytes() : 0));
}
Napi::Value JsTensor::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !t_.defined());
}
Napi::Value JsTensor::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

static Napi::TypedArray new_typed_array(Napi::Env env, dbt::DType dt, size_t n, void** data) {
  size_t bytes = n * dtype_size(dt);
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  *data = buf.Data();
  switch (dt) {
    case DType::f32: return Napi::Float32Array::New(env, n, buf, 0);
    case DType::f64: return Napi::Float64Array::New(env, n, buf, 0);
    case DType::i32: return Napi::Int32Array::New(env, n, buf, 0);
    case DType::u8: return Napi::Uint8Array::New(env, n, buf, 0);
    default: return Napi::Uint16Array::New(env, n, buf, 0);  // f16 / bf16 raw bits
  }
}

Napi::Value JsTensor::Read(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    dbt::Tensor& t = tensor(info.Env());
    void* data = nullptr;
    Napi::TypedArray arr = new_typed_array(info.Env(), t.dtype(), size_t(t.numel()), &data);
    if (t.device() == Device::cpu) {
      std::memcpy(data, t.raw(), t.nbytes());
    } else {
      dbt::Tensor host = dbt::Tensor::empty(t.shape(), t.dtype(), Device::cpu);
      ops::copy(t, host);
      std::memcpy(data, host.raw(), host.nbytes());
    }
    return Napi::Value(arr);
  });
}

static napi_typedarray_type expected_array_type(dbt::DType dt) {
  switch (dt) {
    case DType::f32: return napi_float32_array;
    case DType::f64: return napi_float64_array;
    case DType::i32: return napi_int32_array;
    case DType::u8: return napi_uint8_array;
    default: return napi_uint16_array;
  }
}

static const void* typed_array_data(const Napi::CallbackInfo& info, size_t i, dbt::DType dt, int64_t numel) {
  if (i >= info.Length() || !info[i].IsTypedArray()) throw Error(argpos(i) + " must be a typed array");
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  if (a.TypedArrayType() != expected_array_type(dt))
    throw Error(argpos(i) + ": typed array type does not match dtype " + dtype_name(dt) +
                " (f32: Float32Array, f64: Float64Array, i32: Int32Array, u8: Uint8Array, f16/bf16: Uint16Array)");
  if (int64_t(a.ElementLength()) != numel)
    throw Error(argpos(i) + ": typed array has " + std::to_string(a.ElementLength()) + " elements, the shape needs " +
                std::to_string(numel));
  return static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

Napi::Value JsTensor::Write(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    dbt::Tensor& t = tensor(info.Env());
    const void* src = typed_array_data(info, 0, t.dtype(), t.numel());
    if (t.device() == Device::cpu) {
      std::memcpy(t.raw(), src, t.nbytes());
    } else {
      dbt::Tensor host = dbt::Tensor::empty(t.shape(), t.dtype(), Device::cpu);
      std::memcpy(host.raw(), src, host.nbytes());
      ops::copy(host, t);
    }
    return info.Env().Undefined();
  });
}

Napi::Value JsTensor::View(const Napi::CallbackInfo& info) {
  return guarded(info, [&] { return Napi::Value(Wrap(info.Env(), tensor(info.Env()).view(arg_shape(info, 0)))); });
}

Napi::Value JsTensor::Slice(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    double b = arg_number(info, 0), e = arg_number(info, 1);
    return Napi::Value(Wrap(info.Env(), tensor(info.Env()).slice(int64_t(b), int64_t(e))));
  });
}

// ---- creation functions ----

namespace {

Napi::Value EmptyFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    dbt::Shape s = arg_shape(info, 0);
    dbt::DType dt = info.Length() > 1 && info[1].IsString() ? parse_dtype(arg_string(info, 1)) : DType::f32;
    dbt::Device dev = info.Length() > 2 && info[2].IsString() ? parse_device(arg_string(info, 2)) : Device::cpu;
    return Napi::Value(JsTensor::Wrap(info.Env(), Tensor::empty(s, dt, dev)));
  });
}

Napi::Value FromArrayFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    dbt::Shape s = arg_shape(info, 1);
    dbt::DType dt = parse_dtype(arg_string(info, 2));
    dbt::Device dev = info.Length() > 3 && info[3].IsString() ? parse_device(arg_string(info, 3)) : Device::cpu;
    const void* src = typed_array_data(info, 0, dt, s.numel());
    Tensor host = Tensor::empty(s, dt, Device::cpu);
    std::memcpy(host.raw(), src, host.nbytes());
    if (dev == Device::cpu) return Napi::Value(JsTensor::Wrap(info.Env(), host));
    Tensor t = Tensor::empty(s, dt, dev);
    ops::copy(host, t);
    return Napi::Value(JsTensor::Wrap(info.Env(), t));
  });
}

}  // namespace

void RegisterTensor(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function ctor = JsTensor::Define(env);
  data->tensor_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  exports.Set("NativeTensor", ctor);
  set_function(env, exports, "empty", EmptyFn);
  set_function(env, exports, "fromArray", FromArrayFn);
}

}  // namespace dbt::api
