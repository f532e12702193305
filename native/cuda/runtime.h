// The CUDA backend's host side: device selection, the engine stream, error checking.
// Plain C++ against the CUDA runtime API (no device code), included by every kernel file.
//
// Invariants:
// - All work runs on one stream (stream()); the caching allocator relies on it: a block freed by a tensor
//   is only reused by work queued later on the same stream, so no event is needed between them.
// - Host and device meet only in copy() (device->host waits for the stream) and synchronize().
// - Registration never creates a CUDA context (a machine with a driver but no need for the GPU pays
//   nothing); the context is created by the first allocation or launch.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <initializer_list>
#include <string>

#include "core/backends.h"
#include "core/error.h"
#include "core/tensor.h"

namespace dbt::cuda {

struct DeviceProps {
  int index = 0;
  int major = 0, minor = 0;
  int sms = 0;
  size_t smem_per_block_optin = 0;  // bytes of shared memory one block may opt in to
  size_t total_memory = 0;
  std::string name;
  int cc() const { return major * 10 + minor; }
};

// A CUDA runtime failure: "<op>: CUDA error cudaErrorX: text (operands)".
class CudaError : public Error {
 public:
  CudaError(const std::string& msg, int code) : Error(msg), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// The selected device (throws Error when CUDA is unavailable).
const DeviceProps& device();
// The engine stream on the selected device. Creates the context on first use (per host thread it also
// makes the device current). Throws when an earlier error left the context unusable.
cudaStream_t stream();

// Throws CudaError when e is not cudaSuccess. A sticky error (illegal address, launch failure, ...)
// marks the backend unusable: later calls fail with a message naming the first error.
void check(cudaError_t e, const char* op, const std::string& context = "");
// After a kernel launch: checks the launch configuration; with DBT_CUDA_SYNC=1 also waits for the kernel
// and checks its execution (for finding the op behind an asynchronous error).
void check_launch(const char* op, std::initializer_list<Operand> operands);
// Waits for all queued work; errors from earlier kernels surface here.
void synchronize(const char* op);

// Device index chosen at start (DBT_CUDA_DEVICE, default 0). select_device() changes it, only before
// the first CUDA allocation or launch.
void select_device(int index);

// Kernel registration per op family (each file registers its kernels into the op tables).
void register_tensor_ops();
void register_elementwise();
void register_gemm();
void register_conv2d();
void register_norm();
void register_activation();
void register_shape_ops();
void register_embedding();
void register_loss();
void register_attention();
void register_optim();
void register_transpose();

}  // namespace dbt::cuda
