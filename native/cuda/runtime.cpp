// Device discovery, registration into the op tables, the engine stream and error handling.
#include "runtime.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <vector>

#include "allocator.h"
#include "core/allocator.h"

namespace dbt::cuda {
namespace {

std::mutex g_mu;
CudaStatus g_status;           // filled by register_backend
std::vector<DeviceProps> g_props;
int g_selected = -1;
cudaStream_t g_stream = nullptr;
std::atomic<bool> g_context_started{false};
std::string g_broken;          // first sticky error; non-empty = unusable
std::atomic<bool> g_is_broken{false};
thread_local int t_current_device = -1;

bool sync_after_launch() {
  static const bool on = [] {
    const char* s = std::getenv("DBT_CUDA_SYNC");
    return s && *s && std::strcmp(s, "0") != 0;
  }();
  return on;
}

bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void throw_broken() {
  std::lock_guard<std::mutex> lk(g_mu);
  throw CudaError("the CUDA device is unusable after an earlier error (" + g_broken +
                      "); the process must be restarted to use the GPU again",
                  int(cudaErrorUnknown));
}

// Compiled architectures, e.g. "75 80 86 89 90", from the build (cuda.mk).
std::vector<int> compiled_archs() {
  std::vector<int> v;
  std::istringstream in(DBT_CUDA_ARCHS);
  int a;
  while (in >> a) v.push_back(a);
  return v;
}

// A cubin for sm_XY runs on X.Y' with Y' >= Y; PTX for compute_XY is JIT-compiled for any newer device.
bool arch_runs_on(int cc) {
  for (int a : compiled_archs())
    if (a / 10 == cc / 10 && a % 10 <= cc % 10) return true;
  return DBT_CUDA_PTX_ARCH <= cc;
}

std::string archs_text() {
  return std::string(DBT_CUDA_ARCHS) + " (+PTX " + std::to_string(DBT_CUDA_PTX_ARCH) + ")";
}

}  // namespace

bool register_backend() {
  std::lock_guard<std::mutex> lk(g_mu);
  g_status = CudaStatus();
  g_status.built = true;
  g_status.archs = archs_text();
  cudaDriverGetVersion(&g_status.driver_version);
  cudaRuntimeGetVersion(&g_status.runtime_version);
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (g_status.driver_version == 0)
      g_status.reason = "no NVIDIA driver found (CUDA needs the NVIDIA driver and a GPU)";
    else if (e != cudaSuccess)
      g_status.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) +
                        ", driver " + std::to_string(g_status.driver_version) + ", runtime " +
                        std::to_string(g_status.runtime_version) + ")";
    else
      g_status.reason = "no CUDA device found";
    cudaGetLastError();  // clear
    return false;
  }
  for (int i = 0; i < n; i++) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceProps d;
    d.index = i;
    d.major = p.major;
    d.minor = p.minor;
    d.sms = p.multiProcessorCount;
    d.smem_per_block_optin = p.sharedMemPerBlockOptin;
    d.total_memory = p.totalGlobalMem;
    d.name = p.name;
    g_props.push_back(d);
    g_status.devices.push_back(CudaDeviceInfo{i, d.name, d.major, d.minor, d.sms, d.total_memory});
  }
  if (g_props.empty()) {
    g_status.reason = "CUDA reports devices but none could be queried";
    return false;
  }
  int want = 0;
  if (const char* s = std::getenv("DBT_CUDA_DEVICE"); s && *s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (*end || v < 0 || v >= long(g_props.size())) {
      g_status.reason = std::string("DBT_CUDA_DEVICE=") + s + " is not a device index (0 to " +
                        std::to_string(g_props.size() - 1) + ")";
      return false;
    }
    want = int(v);
  }
  const DeviceProps& d = g_props[size_t(want)];
  if (d.cc() < 75) {
    g_status.reason = "device " + std::to_string(want) + " (" + d.name + ") has compute capability " +
                      std::to_string(d.major) + "." + std::to_string(d.minor) + "; dbt needs 7.5 or newer";
    return false;
  }
  if (!arch_runs_on(d.cc())) {
    g_status.reason = "this build has no kernels for device " + std::to_string(want) + " (" + d.name + ", sm_" +
                      std::to_string(d.cc()) + "); it was built for " + archs_text() +
                      ": rebuild with DBT_CUDA_ARCH=" + std::to_string(d.cc()) + " npm rebuild";
    return false;
  }
  g_selected = want;
  g_status.device = want;
  g_status.available = true;
  install_allocator();
  register_tensor_ops();
  register_elementwise();
  register_gemm();
  register_conv2d();
  register_norm();
  register_activation();
  register_shape_ops();
  register_embedding();
  register_loss();
  register_attention();
  register_optim();
  register_transpose();
  return true;
}

CudaStatus status() {
  std::lock_guard<std::mutex> lk(g_mu);
  CudaStatus s = g_status;
  s.device = g_selected;
  if (!g_broken.empty()) {
    s.available = false;
    s.reason = "unusable after an earlier error: " + g_broken;
  }
  return s;
}

const DeviceProps& device() {
  if (g_selected < 0) throw Error("CUDA is unavailable: " + status().reason);
  return g_props[size_t(g_selected)];
}

void select_device(int index) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_status.available) throw Error("CUDA is unavailable: " + g_status.reason);
  if (index < 0 || index >= int(g_props.size()))
    throw Error("cuda:" + std::to_string(index) + " does not exist (this machine has " +
                std::to_string(g_props.size()) + " CUDA device(s))");
  if (index == g_selected) return;
  if (g_context_started)
    throw Error("the CUDA device can only be chosen before the first CUDA operation (cuda:" +
                std::to_string(g_selected) + " is in use)");
  if (!arch_runs_on(g_props[size_t(index)].cc()))
    throw Error("this build has no kernels for cuda:" + std::to_string(index) + " (" + g_props[size_t(index)].name +
                "); it was built for " + archs_text());
  g_selected = index;
}

cudaStream_t stream() {
  if (g_is_broken.load(std::memory_order_relaxed)) throw_broken();
  if (t_current_device != g_selected) {
    const DeviceProps& d = device();
    check(cudaSetDevice(d.index), "cudaSetDevice");
    t_current_device = d.index;
  }
  if (!g_context_started.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!g_stream) {
      cudaError_t e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking);
      if (e != cudaSuccess) {
        cudaGetLastError();
        throw CudaError(std::string("cannot start CUDA on ") + g_props[size_t(g_selected)].name + ": " +
                            cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")",
                        int(e));
      }
      g_context_started.store(true, std::memory_order_release);
    }
  }
  return g_stream;
}

void check(cudaError_t e, const char* op, const std::string& context) {
  if (e == cudaSuccess) return;
  std::string msg = std::string(op) + ": CUDA error " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
  if (!context.empty()) msg += " (" + context + ")";
  if (is_sticky(e)) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (g_broken.empty()) g_broken = msg;
    g_is_broken.store(true);
    msg += "; the CUDA context is now unusable (the failing kernel may be an earlier one: rerun with "
           "DBT_CUDA_SYNC=1 to find it)";
  } else {
    cudaGetLastError();  // non-sticky: clear it so the engine stays usable
  }
  throw CudaError(msg, int(e));
}

void check_launch(const char* op, std::initializer_list<Operand> operands) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync_after_launch()) e = cudaStreamSynchronize(g_stream);
  if (e != cudaSuccess) check(e, op, describe_operands(operands));
}

void synchronize(const char* op) {
  check(cudaStreamSynchronize(stream()), op);
}

}  // namespace dbt::cuda
