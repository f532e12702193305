// Data movement: nearest 2x upsampling, concatenation and its inverse (split), batched transpose.
#pragma once
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

// y [N, C, 2H, 2W] = nearest-neighbour 2x upsampling of x [N, C, H, W].
void upsample_nearest2x_forward(const Tensor& x, Tensor& y);
// dx [N, C, H, W] = sum of each 2x2 block of dy.
void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx);

// y = cat(xs, dim): every x has y's shape except along dim, whose sizes add up to y's (UNet skips: cat([h, skip], 1)).
void concat(const std::vector<Tensor>& xs, int dim, Tensor& y);
// The inverse (and the backward of concat): parts[i] = y's slice along dim. A null or undefined part is skipped;
// sizes come from `sizes` (one per part).
void split(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts);
// y [B, C, R] = x [B, R, C] transposed per batch (any dtype). Image <-> token layouts: [N, C, H*W] <-> [N, H*W, C].
void transpose(const Tensor& x, Tensor& y);

using UpsampleForwardFn = void (*)(const Tensor& x, Tensor& y);
using UpsampleBackwardFn = void (*)(const Tensor& dy, Tensor& dx);
using ConcatFn = void (*)(const std::vector<Tensor>& xs, int dim, Tensor& y);
using SplitFn = void (*)(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts);
using TransposeFn = void (*)(const Tensor& x, Tensor& y);
OpTable<UpsampleForwardFn>& upsample_nearest2x_forward_table();
OpTable<UpsampleBackwardFn>& upsample_nearest2x_backward_table();
OpTable<ConcatFn>& concat_table();
OpTable<SplitFn>& split_table();
OpTable<TransposeFn>& transpose_table();

#define DBT_SHAPE_OPS_DECLS                                                    \
  void upsample_nearest2x_forward(const Tensor& x, Tensor& y);                 \
  void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx);              \
  void concat(const std::vector<Tensor>& xs, int dim, Tensor& y);              \
  void split(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts); \
  void transpose(const Tensor& x, Tensor& y);
namespace ref {
DBT_SHAPE_OPS_DECLS
}
namespace cpu {
DBT_SHAPE_OPS_DECLS
}
#undef DBT_SHAPE_OPS_DECLS

}  // namespace dbt::ops
