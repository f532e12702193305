// Array kernels for the element-wise parts of the fast ops, compiled once per SIMD level (AVX-512, AVX2,
// baseline) with GCC/Clang target_clones; the loader picks the best for the CPU. Element-wise results are
// the same formula in every clone (no reassociation); lane-summing helpers use 16 fixed lanes.
#pragma once
#include <cstdint>

namespace dbt::cpu {

void vexp_shifted(float* x, int64_t n, float shift);  // x = exp(x - shift)
float vexp_shifted_sum(float* x, int64_t n, float shift);  // x = exp(x - shift), returns vrow_sum(x)
float vrow_max(const float* x, int64_t n);
float vrow_sum(const float* x, int64_t n);
float vrow_dot(const float* a, const float* b, int64_t n);

void vsilu(const float* x, float* y, int64_t n);
void vsilu_grad(const float* x, const float* dy, float* dx, int64_t n);  // dx = dy * silu'(x)
void vgelu(const float* x, float* y, int64_t n);
void vgelu_grad(const float* x, const float* dy, float* dx, int64_t n);
void vquick_gelu(const float* x, float* y, int64_t n);
void vquick_gelu_grad(const float* x, const float* dy, float* dx, int64_t n);
// y = h * gelu(g); dh = dy * gelu(g), dg = dy * h * gelu'(g)  (dh/dg may alias h/g)
void vgeglu(const float* h, const float* g, float* y, int64_t n);
void vgeglu_grad(const float* h, const float* g, const float* dy, float* dh, float* dg, int64_t n);
// y = x * scale + shift, then SiLU when silu
void vscale_shift(const float* x, float* y, int64_t n, float scale, float shift, bool silu);
// dz = dy * silu'(x * scale + shift)
void vscale_shift_silu_grad(const float* x, const float* dy, float* dz, int64_t n, float scale, float shift);

}  // namespace dbt::cpu
