#include "nn/tensor_util.h"

#include <string>

#include "ops/shape_ops.h"

namespace dbt::nn {

Tensor to_tokens(const Tensor& x) {
  if (x.ndim() != 4) throw Error("to_tokens: expected [N, C, H, W], got " + x.desc());
  const int64_t N = x.dim(0), C = x.dim(1), S = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty({N, S, C}, x.dtype(), x.device());
  ops::transpose(x.view({N, C, S}), y);
  return y;
}

Tensor from_tokens(const Tensor& t, int64_t h, int64_t w) {
  if (t.ndim() != 3 || t.dim(1) != h * w)
    throw Error("from_tokens: " + t.desc() + " is not [N, " + std::to_string(h) + "x" + std::to_string(w) + ", C]");
  const int64_t N = t.dim(0), C = t.dim(2);
  Tensor y = Tensor::empty({N, C, h * w}, t.dtype(), t.device());
  ops::transpose(t, y);
  return y.view({N, C, h, w});
}

Tensor slice_channels(const Tensor& x, int64_t from, int64_t to) {
  Tensor y = Tensor::empty({x.dim(0), to - from, x.dim(2), x.dim(3)}, x.dtype(), x.device());
  ops::split(x, 1, {from, to - from, x.dim(1) - to}, {nullptr, &y, nullptr});
  return y;
}

}  // namespace dbt::nn
