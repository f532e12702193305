// cuemu: WMMA 16x16x16 fragments (f16/bf16 inputs, f32 accumulators), see cuda_runtime.h.
// As on the GPU, a fragment is spread over the warp: lane l holds elements 8l..8l+7 of the 16x16 tile in
// row-major order (the hardware's mapping is unspecified and differs; code may only use x[] element-wise).
// load/store/fill touch only the lane's own elements; mma_sync is a warp collective that gathers A and B.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
inline float to_f(float v) { return v; }
inline float to_f(__half v) { return __half2float(v); }
inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> inline T from_f(float v);
template <> inline float from_f<float>(float v) { return v; }
template <> inline __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> inline __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
constexpr int kPerLane = 8;
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "cuemu emulates the 16x16x16 WMMA shape only");
  static constexpr int num_elements = detail::kPerLane;
  T x[num_elements];
};

template <class Use, class T, class L> inline void fill_fragment(fragment<Use, 16, 16, 16, T, L>& f, float v) {
  for (int i = 0; i < detail::kPerLane; i++) f.x[i] = detail::from_f<T>(v);
}

// matrix_a is M x K (row m, col k); matrix_b is K x N (row k, col n); element e = 16 * row + col.
template <class Use, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulators load with a layout_t");
  const int lane = cuemu::lane_id();
  for (int i = 0; i < detail::kPerLane; i++) {
    const int e = lane * detail::kPerLane + i, r = e / 16, c = e % 16;
    f.x[i] = std::is_same<L, row_major>::value ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
  }
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l) {
  const int lane = cuemu::lane_id();
  for (int i = 0; i < detail::kPerLane; i++) {
    const int e = lane * detail::kPerLane + i, r = e / 16, c = e % 16;
    f.x[i] = l == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
  }
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  const int lane = cuemu::lane_id();
  for (int i = 0; i < detail::kPerLane; i++) {
    const int e = lane * detail::kPerLane + i, r = e / 16, c = e % 16;
    (l == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r]) = f.x[i];
  }
}

// d = a * b + c with f32 products and accumulation (exact products for 16-bit inputs).
template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
  static_assert(cuemu::kExchangeBytes == 2 * detail::kPerLane * sizeof(float), "a lane sends its A and B elements");
  float mine[2 * detail::kPerLane];
  for (int i = 0; i < detail::kPerLane; i++) {
    mine[i] = detail::to_f(a.x[i]);
    mine[detail::kPerLane + i] = detail::to_f(b.x[i]);
  }
  // Lane l's block: A elements 8l..8l+7, then B elements 8l..8l+7 (element e = 16 * row + col).
  const float* all = reinterpret_cast<const float*>(cuemu::warp_exchange(0xffffffffu, 3, mine, sizeof mine));
  auto A = [all](int e) { return all[(e >> 3) * 16 + (e & 7)]; };
  auto B = [all](int e) { return all[(e >> 3) * 16 + 8 + (e & 7)]; };
  const int lane = cuemu::lane_id();
  float out[detail::kPerLane];
  for (int i = 0; i < detail::kPerLane; i++) {
    const int e = lane * detail::kPerLane + i, m = e / 16, n = e % 16;
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += A(m * 16 + k) * B(k * 16 + n);
    out[i] = s + c.x[i];
  }
  for (int i = 0; i < detail::kPerLane; i++) d.x[i] = out[i];
}

}  // namespace nvcuda::wmma
