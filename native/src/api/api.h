// N-API binding helpers. native/src/api/ is the only code that includes napi.h; everything else is
// plain C++ usable without Node. Each api_*.cpp file registers its functions from a Register* function
// called by binding.cpp.
#pragma once
#define NAPI_VERSION 8
#include <napi.h>

#include <functional>
#include <string>

#include "core/tensor.h"

namespace dbt::api {

// JS object owning one dbt::Tensor handle. dispose() drops the handle (memory is freed when no other
// handle, e.g. a view, shares the storage); the finalizer does the same if JS forgot.
class JsTensor : public Napi::ObjectWrap<JsTensor> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, Tensor t);
  static bool Is(Napi::Value v);
  explicit JsTensor(const Napi::CallbackInfo& info);
  ~JsTensor() override;

  Tensor& tensor(Napi::Env env);  // throws a JS Error if disposed

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DType(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Slice(const Napi::CallbackInfo& info);
  void release(Napi::Env env);

  Tensor t_;
  int64_t accounted_ = 0;  // bytes reported to V8 as external memory
};

// Wraps a binding body: C++ exceptions become JS Errors (code DBT_OP_ERROR with `op`, DBT_OOM, DBT_ERROR).
Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body);
void set_function(Napi::Env env, Napi::Object exports, const char* name,
                  Napi::Value (*fn)(const Napi::CallbackInfo&));

// Argument readers; each throws dbt::Error with the argument position on bad input.
Tensor& arg_tensor(const Napi::CallbackInfo& info, size_t i);
Tensor* arg_opt_tensor(const Napi::CallbackInfo& info, size_t i);  // null/undefined -> nullptr
double arg_number(const Napi::CallbackInfo& info, size_t i);
double arg_number_or(const Napi::CallbackInfo& info, size_t i, double dflt);
bool arg_bool_or(const Napi::CallbackInfo& info, size_t i, bool dflt);
std::string arg_string(const Napi::CallbackInfo& info, size_t i);
dbt::Shape arg_shape(const Napi::CallbackInfo& info, size_t i);
dbt::DType parse_dtype(const std::string& s);
dbt::Device parse_device(const std::string& s);

void RegisterTensor(Napi::Env env, Napi::Object exports);
void RegisterOps(Napi::Env env, Napi::Object exports);
void RegisterNN(Napi::Env env, Napi::Object exports);  // api_nn.cpp: the SD1.x networks
void RegisterDevice(Napi::Env env, Napi::Object exports);
void RegisterFs(Napi::Env env, Napi::Object exports);  // api_fs.cpp: file copying for the model writers

}  // namespace dbt::api
