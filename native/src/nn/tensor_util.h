// Layout helpers the networks need around the ops: NCHW <-> token sequences (each the other's adjoint, so
// one serves as the other's backward) and channel slices, on any device (ops::transpose, ops::split).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace dbt::nn {

// [N, C, H, W] -> [N, H*W, C]
Tensor to_tokens(const Tensor& x);
// [N, H*W, C] -> [N, C, H, W]
Tensor from_tokens(const Tensor& t, int64_t h, int64_t w);

// Channels [from, to) of x [N, C, H, W] as a new tensor.
Tensor slice_channels(const Tensor& x, int64_t from, int64_t to);

}  // namespace dbt::nn
