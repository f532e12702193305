// cuemu: the subset of the CUDA runtime API and device language that dbt's CUDA backend uses, emulated on
// the CPU so the backend's own kernel source runs (and its tests run) on machines without a GPU.
// Not NVIDIA's header: it is found instead of the toolkit's by cuemu/nvcc (see cuemu/README.md).
//
// Model: a launch runs its blocks one after another on the calling thread; the threads of a block are
// fibers scheduled cooperatively, switching only at __syncthreads / warp collectives (so data races do not
// show, but missing barriers before reads of other threads' shared-memory writes usually do: the writer
// has not run yet). Threads that have exited count as arrived at __syncthreads (as on Volta and later).
// Warp collectives (shuffles, __syncwarp, WMMA) wait for every live lane of the warp and fail the launch
// when lanes named in the mask have exited or sit at a different collective; a block whose threads all
// wait at barriers that cannot complete fails as a deadlock.
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- language qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Block-shared arrays: blocks run one at a time, so a function-local static is exactly one block's copy.
#define __shared__ static
#define __constant__

// ---- vector types ----
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct uint3 {
  unsigned x, y, z;
};
#define CUEMU_VEC2(T, N, A)                                    \
  struct __attribute__((aligned(A))) N##2 { T x, y; };         \
  inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }
#define CUEMU_VEC4(T, N, A)                                            \
  struct __attribute__((aligned(A))) N##4 { T x, y, z, w; };           \
  inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
CUEMU_VEC2(int, int, 8)
CUEMU_VEC2(unsigned, uint, 8)
CUEMU_VEC2(float, float, 8)
CUEMU_VEC2(double, double, 16)
CUEMU_VEC4(int, int, 16)
CUEMU_VEC4(unsigned, uint, 16)
CUEMU_VEC4(float, float, 16)
#undef CUEMU_VEC2
#undef CUEMU_VEC4

// ---- runtime API types ----
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorLaunchFailure = 4,
  cudaErrorLaunchTimeout = 6,
  cudaErrorLaunchOutOfResources = 7,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidPc = 718,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorECCUncorrectable = 214,
  cudaErrorIllegalAddress = 700,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorAssert = 710,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
constexpr unsigned cudaStreamNonBlocking = 1;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int major, minor;
  int multiProcessorCount;
  int maxThreadsPerBlock;
  int warpSize;
};

// ---- runtime API (cuemu.cpp) ----
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T> cudaError_t cudaMalloc(T** p, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(p), bytes); }
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int v, size_t n);
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

namespace cuemu {
cudaError_t func_set_attribute(const void* func, cudaFuncAttribute attr, int value);
cudaError_t memcpy_to_symbol(void* symbol, size_t symbol_bytes, const void* src, size_t n, size_t offset);
}  // namespace cuemu

template <class F> cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return cuemu::func_set_attribute(reinterpret_cast<const void*>(func), attr, value);
}
template <class S>
cudaError_t cudaMemcpyToSymbolAsync(S& symbol, const void* src, size_t n, size_t offset = 0,
                                    cudaMemcpyKind = cudaMemcpyHostToDevice, cudaStream_t = nullptr) {
  return cuemu::memcpy_to_symbol(static_cast<void*>(&symbol), sizeof(S), src, n, offset);
}

// ---- execution (cuemu.cpp) ----
namespace cuemu {

struct ThreadState {
  dim3 thread_idx, block_idx, block_dim, grid_dim;
};
extern thread_local ThreadState* t_thread;  // the running fiber's indices

void syncthreads();
int syncthreads_or(int pred);
// A warp collective: every live lane in `mask` arrives with `bytes` (<= kExchangeBytes) of its own; when all
// have arrived, each gets the 32 lanes' contributions, lane l's at result + l * kExchangeBytes (absent
// lanes' poisoned with 0xff), valid until the lane's next collective.
constexpr size_t kExchangeBytes = 64;
const unsigned char* warp_exchange(unsigned mask, int kind, const void* mine, size_t bytes);
[[noreturn]] void trap(const char* what);
void* dynamic_smem();
// Called (by cuemu/nvcc.mjs's rewrite) after every static __shared__ declaration: the block's first thread
// to get there fills the array with 0xff bytes.
void poison_shared(void* p, size_t bytes);
template <class A> inline void poison_shared(A& a) { poison_shared(static_cast<void*>(&a), sizeof(A)); }
int lane_id();

struct LaunchConfig {
  dim3 grid, block;
  size_t smem = 0;
  cudaStream_t stream = nullptr;
  const void* func = nullptr;
};
// Runs body once per thread of every block (see the model at the top); errors go to cudaGetLastError().
void launch(const LaunchConfig& cfg, void (*body)(void*), void* ctx);

template <class... P> struct Launcher {
  void (*kernel)(P...);
  LaunchConfig cfg;
  template <class... A> void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    struct Ctx {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> args;
    } ctx{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...)};
    launch(cfg, [](void* c) {
      auto* x = static_cast<Ctx*>(c);
      std::apply(x->kernel, x->args);  // each thread gets its own copies of the by-value parameters
    }, &ctx);
  }
};
// cuemu/nvcc rewrites `kernel<<<grid, block, smem, stream>>>(args)` to `cuemu::launcher(kernel, grid, block,
// smem, stream)(args)`.
template <class... P>
Launcher<P...> launcher(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t s = nullptr) {
  return Launcher<P...>{kernel, LaunchConfig{grid, block, smem, s, reinterpret_cast<const void*>(kernel)}};
}

template <class T> inline T shfl(unsigned mask, T v, int src_of_lane_xor, bool is_xor, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a 1-8 byte value");
  const unsigned char* all = warp_exchange(mask, 1, &v, sizeof(T));
  const int lane = lane_id();
  const int base = lane & ~(width - 1);
  int src = is_xor ? (lane ^ src_of_lane_xor) : src_of_lane_xor;
  if (is_xor && (src & ~(width - 1)) != base) src = lane;
  T r;
  std::memcpy(&r, all + size_t(src) * kExchangeBytes, sizeof(T));
  return r;
}

}  // namespace cuemu

#define threadIdx (::cuemu::t_thread->thread_idx)
#define blockIdx (::cuemu::t_thread->block_idx)
#define blockDim (::cuemu::t_thread->block_dim)
#define gridDim (::cuemu::t_thread->grid_dim)
constexpr int warpSize = 32;

// ---- device intrinsics ----
inline void __syncthreads() { cuemu::syncthreads(); }
inline int __syncthreads_or(int pred) { return cuemu::syncthreads_or(pred); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { cuemu::warp_exchange(mask, 2, nullptr, 0); }
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return cuemu::shfl(mask, v, lane_mask, true, width);
}
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return cuemu::shfl(mask, v, (cuemu::lane_id() & ~(width - 1)) + (src & (width - 1)), false, width);
}
[[noreturn]] inline void __trap() { cuemu::trap("__trap()"); }

// Fibers never run at the same time: atomics are plain read-modify-writes.
template <class T> inline T atomicMin(T* p, T v) {
  T old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T> inline T atomicMax(T* p, T v) {
  T old = *p;
  if (v > old) *p = v;
  return old;
}
template <class T> inline T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __expf(float a) { return expf(a); }
inline float __logf(float a) { return logf(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline int __float_as_int(float f) { return int(__float_as_uint(f)); }
inline float __int_as_float(int i) { return __uint_as_float(unsigned(i)); }
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((uint64_t(a) * b) >> 32); }
template <class T> inline T __ldg(const T* p) { return *p; }

// CUDA's global min/max overloads for mixed integer and float arguments.
template <class A, class B, class = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return C(b) < C(a) ? C(b) : C(a);
}
template <class A, class B, class = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return C(a) < C(b) ? C(b) : C(a);
}
