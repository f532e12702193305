#include "ops/conv2d.h"

#include "ops/check.h"

namespace dbt::ops {

OpTable<Conv2dForwardFn>& conv2d_forward_table() {
  static OpTable<Conv2dForwardFn> t("conv2d_forward", &ref::conv2d_forward, &cpu::conv2d_forward);
  return t;
}
OpTable<Conv2dBackwardFn>& conv2d_backward_table() {
  static OpTable<Conv2dBackwardFn> t("conv2d_backward", &ref::conv2d_backward, &cpu::conv2d_backward);
  return t;
}

namespace {
std::string params_str(const Conv2dParams& p) {
  return "stride " + std::to_string(p.stride) + ", padding (top " + std::to_string(p.pad_top) + ", bottom " +
         std::to_string(p.pad_bottom) + ", left " + std::to_string(p.pad_left) + ", right " +
         std::to_string(p.pad_right) + ")";
}

Shape out_shape(const Checker& ck, const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  ck.ndim(x, "x", 4, 4);
  ck.ndim(w, "w", 4, 4);
  ck.require(w.dim(1) == x.dim(1), "w must be [out, in, kh, kw] with in = x's channels");
  ck.require(p.stride >= 1 && p.pad_top >= 0 && p.pad_bottom >= 0 && p.pad_left >= 0 && p.pad_right >= 0,
             "invalid " + params_str(p));
  int64_t hp = x.dim(2) + p.pad_top + p.pad_bottom, wp = x.dim(3) + p.pad_left + p.pad_right;
  ck.require(hp >= w.dim(2) && wp >= w.dim(3), "kernel larger than the padded input (" + params_str(p) + ")");
  return Shape{x.dim(0), w.dim(0), (hp - w.dim(2)) / p.stride + 1, (wp - w.dim(3)) / p.stride + 1};
}
}  // namespace

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  Checker ck("conv2d_output_shape", {});
  ck.require(x.ndim() == 4 && w.ndim() == 4 && w[1] == x[1], "x must be [N, C, H, W] and w [O, C, kh, kw], got x " +
                                                                 x.str() + ", w " + w.str());
  int64_t hp = x[2] + p.pad_top + p.pad_bottom, wp = x[3] + p.pad_left + p.pad_right;
  ck.require(p.stride >= 1 && hp >= w[2] && wp >= w[3], "kernel larger than the padded input or bad stride");
  return Shape{x[0], w[0], (hp - w[2]) / p.stride + 1, (wp - w[3]) / p.stride + 1};
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Conv2dParams& p, Tensor& y) {
  Checker ck("conv2d_forward", {{"x", &x}, {"w", &w}, {"b", b}, {"y", &y}});
  ck.require(x.defined() && w.defined() && y.defined(), "x, w and y are required");
  DType dt = ck.same_float_dtype();
  Shape ys = out_shape(ck, x, w, p);
  ck.shape(y, "y", ys);
  if (b && b->defined()) ck.shape(*b, "b", Shape{w.dim(0)}); else b = nullptr;
  conv2d_forward_table().get(ck.device(), dt)(x, w, b, p, y);
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p, Tensor* dx,
                     Tensor* dw, Tensor* db) {
  Checker ck("conv2d_backward", {{"x", &x}, {"w", &w}, {"dy", &dy}, {"dx", dx}, {"dw", dw}, {"db", db}});
  ck.require(x.defined() && w.defined() && dy.defined(), "x, w and dy are required");
  DType dt = ck.same_float_dtype();
  Shape ys = out_shape(ck, x, w, p);
  ck.shape(dy, "dy", ys);
  if (dx && dx->defined()) ck.shape(*dx, "dx", x.shape()); else dx = nullptr;
  if (dw && dw->defined()) ck.shape(*dw, "dw", w.shape()); else dw = nullptr;
  if (db && db->defined()) ck.shape(*db, "db", Shape{w.dim(0)}); else db = nullptr;
  conv2d_backward_table().get(ck.device(), dt)(x, w, dy, p, dx, dw, db);
}

}  // namespace dbt::ops
