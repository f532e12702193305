// 2-D convolution (cross-correlation, PyTorch semantics), NCHW, with per-side zero padding:
// 3x3 stride 1/2 padding 1 (UNet), the VAE downsample's (top 0, bottom 1, left 0, right 1) padding with
// stride 2, and 1x1 (proj_in/proj_out, skip connections, quant convs).
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace dbt::ops {

struct Conv2dParams {
  int stride = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  // Same padding on every side.
  static Conv2dParams make(int stride, int pad) { return Conv2dParams{stride, pad, pad, pad, pad}; }
};

// [N, O, Ho, Wo] for x [N, C, H, W] and w [O, C, kh, kw]; throws OpError when the output would be empty.
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);

// y[N, O, Ho, Wo] = conv(x[N, C, H, W], w[O, C, kh, kw]) + b[O]   (b optional)
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y);
// dx written; dw += ; db += . Each of dx, dw, db may be null.
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db);

using Conv2dForwardFn = void (*)(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p,
                                 Tensor& y);
using Conv2dBackwardFn = void (*)(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p,
                                  Tensor* dx, Tensor* dw, Tensor* db);
OpTable<Conv2dForwardFn>& conv2d_forward_table();
OpTable<Conv2dBackwardFn>& conv2d_backward_table();

namespace ref {
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y);
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db);
}  // namespace ref
namespace cpu {
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y);
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db);
}  // namespace cpu

}  // namespace dbt::ops
