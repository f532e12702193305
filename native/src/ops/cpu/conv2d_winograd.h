// Winograd F(2x2, 3x3) convolution for 3x3 stride-1 layers (most of the UNet's and VAE's convolutions,
// and the input gradient of every one of them): 16 GEMMs of [O, C] x [C, tiles] replace the
// [O, 9C] x [9C, pixels] product, 2.25x fewer multiplications. Input/output transforms in f32.
#pragma once
#include <cstdint>

namespace dbt::cpu {

// Whether winograd_conv3x3 handles this layer (3x3, stride 1, padding <= 2, channels large enough for
// the transforms to pay off; DBT_CONV_WINOGRAD=0 disables it).
bool winograd_applies(int64_t C, int64_t O, int64_t kh, int64_t kw, int stride, int pt, int pl, int64_t Ho,
                      int64_t Wo);

// y[n] = conv(x[n], w) (+ bias) for N images: x [N, C, H, W], w [O, C, 3, 3], y [N, O, Ho, Wo]; bias [O]
// optional. flipped_t: w is [C, O, 3, 3] and the kernel of output o, input c is w[c][o] rotated by 180
// degrees (the input gradient of a forward convolution with weights w).
void winograd_conv3x3(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* w, int64_t O,
                      const float* bias, int pt, int pl, float* y, int64_t Ho, int64_t Wo, bool flipped_t = false);

}  // namespace dbt::cpu
