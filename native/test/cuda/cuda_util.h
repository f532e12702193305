// Helpers for the CUDA tests: moving tensors between host and device in any float dtype, poisoned
// outputs, and the per-dtype tolerance every CUDA op is held to against the CPU reference:
//   |got - want| <= rtol * (rms(want) + |want|)   with rtol f32 1e-5, f16 2e-3, bf16 1e-2
// (inputs are rounded to the dtype before the reference sees them, so only the kernel's own arithmetic
// and its final rounding count). The rms term is the absolute floor for outputs that cancel to ~0; f16
// adds one subnormal step (2^-24), the spacing of its results below 2^-14.
#pragma once
#include <string>
#include <vector>

#include "harness.h"
#include "ops/ops.h"

namespace dbt::test::cu {

inline const std::vector<DType>& float_types() {
  static const std::vector<DType> t = {DType::f32, DType::bf16, DType::f16};
  return t;
}
// The float dtypes of matrix products on this device (GEMM, convolution, attention, and the networks built
// on them): bf16 needs compute capability 8.0; Turing refuses it by name (cuda_bf16_matrix_products_...).
const std::vector<DType>& mma_types();
// The 16-bit matrix-product dtype of this device: bf16 from sm_80, else f16.
DType half_mma_type();
double rtol_for(DType dt);

// Device copy of a CPU tensor (any dtype), converted to dt on the CPU first.
Tensor upload(const Tensor& cpu, DType dt);
// CPU copy of a device tensor, same dtype.
Tensor download_raw(const Tensor& dev);
// CPU f64 copy of a device float tensor.
Tensor download(const Tensor& dev);
// f64 tensor holding t's values rounded to dt (exactly what the device computes with).
Tensor rounded64(const Tensor& t, DType dt);
// Device tensor filled with NaN (for outputs that must be written, never read).
Tensor poisoned(const Shape& s, DType dt);
// Random f32 CPU tensor in [lo, hi), no zeros.
inline Tensor rnd(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) { return rand_tensor(s, seed, lo, hi); }

// Compares a device result with an f64 reference at dt's tolerance (scaled by `slack` for ops whose
// rounding error legitimately grows, e.g. long f32 sums).
void expect_close_dev(const Tensor& dev, const Tensor& want64, DType dt, const std::string& what, double slack = 1.0);

std::string tag(DType dt);  // "[bf16] "

}  // namespace dbt::test::cu
