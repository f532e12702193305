// fill, copy (device<->device and host<->device transfers), dtype casts and the stochastic f32 -> bf16 cast. Conversions follow the CPU
// reference exactly: round to nearest even between float types (f64 -> f16/bf16 through f32), float -> int
// truncates toward zero with saturation (NaN -> 0), u8 saturates to [0, 255].
#include <cstring>
#include <type_traits>

#include "common.cuh"
#include "ops/tensor_ops.h"

namespace dbt::ops::ref {
void store_from_double(Tensor& t, int64_t i, double v);  // tensor_ops_ref.cpp: the conversion rule
}

namespace dbt::cuda {
namespace {

// ---- kernels ----
template <class U> __global__ void fill_kernel(U* p, U v, int64_t n) {
  DBT_GRID_STRIDE(i, n) p[i] = v;
}

// Float types convert through f32 (what the reference does for f16/bf16); anything with f64 or an
// integer type goes through double.
template <class S> __device__ __forceinline__ double load_d(const S* p, int64_t i) { return double(to_float(p[i])); }
template <> __device__ __forceinline__ double load_d<double>(const double* p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ double load_d<int32_t>(const int32_t* p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ double load_d<uint8_t>(const uint8_t* p, int64_t i) { return p[i]; }

template <class D> __device__ __forceinline__ void store_d(D* p, int64_t i, double v) { p[i] = from_float<D>(float(v)); }
template <> __device__ __forceinline__ void store_d<double>(double* p, int64_t i, double v) { p[i] = v; }
template <> __device__ __forceinline__ void store_d<int32_t>(int32_t* p, int64_t i, double v) {
  p[i] = isnan(v) ? 0 : v >= 2147483647.0 ? 2147483647 : v <= -2147483648.0 ? INT32_MIN : int32_t(v);
}
template <> __device__ __forceinline__ void store_d<uint8_t>(uint8_t* p, int64_t i, double v) {
  p[i] = (isnan(v) || v <= 0) ? uint8_t(0) : v >= 255.0 ? uint8_t(255) : uint8_t(v);
}

template <class S> constexpr bool is_small_float =
    std::is_same_v<S, float> || std::is_same_v<S, __half> || std::is_same_v<S, __nv_bfloat16>;

template <class S, class D> __global__ void cast_kernel(const S* __restrict__ s, D* __restrict__ d, int64_t n) {
  if constexpr (is_small_float<S> && is_small_float<D>) {
    DBT_GRID_STRIDE(i, n) d[i] = from_float<D>(to_float(s[i]));
  } else {
    DBT_GRID_STRIDE(i, n) store_d<D>(d, i, load_d<S>(s, i));
  }
}

// ---- launchers ----
template <class U> void launch_fill(Tensor& t, const void* bits) {
  int64_t n = t.numel();
  if (n == 0) return;
  U v;
  std::memcpy(&v, bits, sizeof(U));
  fill_kernel<U><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<U*>(t.raw()), v, n);
  check_launch("fill", {{"t", &t}});
}

void fill(Tensor& t, double value) {
  Tensor one = Tensor::empty(Shape{1}, t.dtype());  // the value in t's dtype, by the reference's rule
  ops::ref::store_from_double(one, 0, value);
  switch (dtype_size(t.dtype())) {
    case 1: return launch_fill<uint8_t>(t, one.raw());
    case 2: return launch_fill<uint16_t>(t, one.raw());
    case 4: return launch_fill<uint32_t>(t, one.raw());
    case 8: return launch_fill<uint64_t>(t, one.raw());
  }
  throw OpError("fill", "unsupported dtype", describe_operands({{"t", &t}}));
}

void copy(const Tensor& src, Tensor& dst) {
  size_t bytes = src.nbytes();
  if (bytes == 0) return;
  const void* s = src.raw();
  void* d = dst.raw();
  cudaStream_t st = stream();
  auto ctx = [&] { return describe_operands({{"src", &src}, {"dst", &dst}}); };
  if (src.device() == Device::cuda && dst.device() == Device::cuda) {
    if (s == d) return;
    check(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, st), "copy", ctx());
  } else if (dst.device() == Device::cuda) {
    // From pageable host memory the call returns once the source has been staged: src may change after.
    check(cudaMemcpyAsync(d, s, bytes, cudaMemcpyHostToDevice, st), "copy", ctx());
  } else {
    check(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToHost, st), "copy", ctx());
    check(cudaStreamSynchronize(st), "copy", ctx());  // the host reads dst next
  }
}

template <class S> void cast_from(const Tensor& src, Tensor& dst) {
  int64_t n = src.numel();
  const S* s = static_cast<const S*>(src.raw());
  unsigned g = grid_for(n);
  cudaStream_t st = stream();
  switch (dst.dtype()) {
    case DType::f32: cast_kernel<S, float><<<g, kThreads, 0, st>>>(s, dptr<float>(dst), n); break;
    case DType::f16: cast_kernel<S, __half><<<g, kThreads, 0, st>>>(s, dptr<__half>(dst), n); break;
    case DType::bf16: cast_kernel<S, __nv_bfloat16><<<g, kThreads, 0, st>>>(s, dptr<__nv_bfloat16>(dst), n); break;
    case DType::f64: cast_kernel<S, double><<<g, kThreads, 0, st>>>(s, dptr<double>(dst), n); break;
    case DType::i32: cast_kernel<S, int32_t><<<g, kThreads, 0, st>>>(s, dptr<int32_t>(dst), n); break;
    case DType::u8: cast_kernel<S, uint8_t><<<g, kThreads, 0, st>>>(s, dptr<uint8_t>(dst), n); break;
  }
  check_launch("cast", {{"src", &src}, {"dst", &dst}});
}

void cast(const Tensor& src, Tensor& dst) {
  if (src.numel() == 0) return;
  if (src.dtype() == dst.dtype()) return copy(src, dst);
  switch (src.dtype()) {
    case DType::f32: return cast_from<float>(src, dst);
    case DType::f16: return cast_from<__half>(src, dst);
    case DType::bf16: return cast_from<__nv_bfloat16>(src, dst);
    case DType::f64: return cast_from<double>(src, dst);
    case DType::i32: return cast_from<int32_t>(src, dst);
    case DType::u8: return cast_from<uint8_t>(src, dst);
  }
}

// One thread per 4 elements (one Philox block), as the CPU groups them.
__global__ void cast_sr_kernel(const uint32_t* __restrict__ s, uint16_t* __restrict__ d, SrKey key, int64_t n) {
  DBT_GRID_STRIDE(b, (n + 3) / 4) {
    const Philox4 r = sr_block(key, b);
#pragma unroll
    for (int j = 0; j < 4; j++)
      if (b * 4 + j < n) d[b * 4 + j] = f32_bits_to_bf16_sr(s[b * 4 + j], r.v[j]);
  }
}

void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key) {
  const int64_t n = src.numel();
  if (n == 0) return;
  cast_sr_kernel<<<grid_for((n + 3) / 4), kThreads, 0, stream()>>>(static_cast<const uint32_t*>(src.raw()),
                                                                  static_cast<uint16_t*>(dst.raw()), key, n);
  check_launch("cast_stochastic", {{"src", &src}, {"dst", &dst}});
}

}  // namespace

void register_tensor_ops() {
  ops::fill_table().set(Device::cuda, &fill);
  ops::copy_table().set(Device::cuda, &copy);
  ops::cast_table().set(Device::cuda, &cast);
  ops::cast_stochastic_table().set(Device::cuda, &cast_stochastic);
}

}  // namespace dbt::cuda
