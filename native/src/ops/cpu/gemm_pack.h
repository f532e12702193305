// Panel packing for the packed GEMM and its implicit-GEMM users. A panel of width w holds kc rows of w
// floats: dst[k * w + j]. Columns j >= cols are zero. Vectorised for AVX-512 (16x16 transposes) and AVX2
// (8x8); the level follows simd_level(). Every path computes alpha * src exactly once per element, so the
// packed values are identical whichever path ran.
#pragma once
#include <cstdint>

namespace dbt::cpu {

// dst[k * w + j] = alpha * src[j * ld + k]: panel columns are rows of src (A rows, rows of B^T).
void pack_panel_t(const float* src, int64_t ld, int cols, int64_t kc, int w, float alpha, float* dst);
// dst[k * w + j] = alpha * src[k * ld + j]: panel rows are rows of src (A^T, B).
void pack_panel_n(const float* src, int64_t ld, int cols, int64_t kc, int w, float alpha, float* dst);

// pack_panel_t over a segmented row: column k of row j is src[j * ld + q * seg_stride + r] with
// (q, r) = divmod(k0 + k, seg_len) (e.g. the taps of a conv weight w[o][c][tap] for fixed c, o = q).
void pack_panel_t_seg(const float* src, int64_t ld, int64_t seg_len, int64_t seg_stride, int cols, int64_t k0,
                      int64_t kc, int w, float* dst);

}  // namespace dbt::cpu
