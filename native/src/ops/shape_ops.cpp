#include "ops/shape_ops.h"

#include "ops/check.h"

namespace dbt::ops {

#define DBT_TABLE(NAME, FN)                              \
  OpTable<FN>& NAME##_table() {                          \
    static OpTable<FN> t(#NAME, &ref::NAME, &cpu::NAME); \
    return t;                                            \
  }
DBT_TABLE(upsample_nearest2x_forward, UpsampleForwardFn)
DBT_TABLE(upsample_nearest2x_backward, UpsampleBackwardFn)
DBT_TABLE(concat, ConcatFn)
DBT_TABLE(split, SplitFn)
DBT_TABLE(transpose, TransposeFn)
#undef DBT_TABLE

void upsample_nearest2x_forward(const Tensor& x, Tensor& y) {
  Checker ck("upsample_nearest2x_forward", {{"x", &x}, {"y", &y}});
  ck.defined();
  ck.ndim(x, "x", 4, 4);
  ck.require(x.dtype() == y.dtype(), "x and y must share a dtype");
  ck.shape(y, "y", Shape{x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)});
  upsample_nearest2x_forward_table().get(ck.device(), x.dtype())(x, y);
}

void upsample_nearest2x_backward(const Tensor& dy, Tensor& dx) {
  Checker ck("upsample_nearest2x_backward", {{"dy", &dy}, {"dx", &dx}});
  ck.defined();
  ck.ndim(dx, "dx", 4, 4);
  DType dt = ck.same_float_dtype();
  ck.shape(dy, "dy", Shape{dx.dim(0), dx.dim(1), 2 * dx.dim(2), 2 * dx.dim(3)});
  upsample_nearest2x_backward_table().get(ck.device(), dt)(dy, dx);
}

namespace {
int norm_dim(const Checker& ck, const Tensor& t, int dim) {
  int d = dim < 0 ? dim + t.ndim() : dim;
  ck.require(d >= 0 && d < t.ndim(), "dim " + std::to_string(dim) + " out of range");
  return d;
}
std::string part_name(size_t i) { return "part " + std::to_string(i); }
}  // namespace

void concat(const std::vector<Tensor>& xs, int dim, Tensor& y) {
  Checker ck("concat", {{"y", &y}});
  ck.defined();
  ck.require(!xs.empty(), "needs at least one input");
  int d = norm_dim(ck, y, dim);
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); i++) {
    const Tensor& x = xs[i];
    Checker cx("concat", {{"y", &y}, {"x", &x}});
    cx.require(x.defined(), "input " + std::to_string(i) + " is undefined");
    cx.require(x.dtype() == y.dtype() && x.device() == y.device(), "input " + std::to_string(i) + " differs from y in dtype or device");
    bool ok = x.ndim() == y.ndim();
    for (int k = 0; ok && k < y.ndim(); k++) ok = k == d || x.dim(k) == y.dim(k);
    cx.require(ok, "input " + std::to_string(i) + " must match y except along dim " + std::to_string(d));
    total += x.dim(d);
  }
  ck.require(total == y.dim(d), "input sizes along dim " + std::to_string(d) + " add up to " + std::to_string(total));
  concat_table().get(ck.device())(xs, d, y);
}

void split(const Tensor& y, int dim, const std::vector<int64_t>& sizes, const std::vector<Tensor*>& parts) {
  Checker ck("split", {{"y", &y}});
  ck.defined();
  ck.require(sizes.size() == parts.size() && !sizes.empty(), "needs one size per part");
  int d = norm_dim(ck, y, dim);
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); i++) {
    ck.require(sizes[i] >= 0, "negative size");
    total += sizes[i];
    Tensor* p = parts[i];
    if (!p || !p->defined()) continue;
    Shape want = y.shape();
    want[d] = sizes[i];
    Checker cp("split", {{"y", &y}, {part_name(i).c_str(), p}});
    cp.require(p->dtype() == y.dtype() && p->device() == y.device(), "part differs from y in dtype or device");
    cp.shape(*p, "part", want);
  }
  ck.require(total == y.dim(d), "sizes along dim " + std::to_string(d) + " add up to " + std::to_string(total));
  std::vector<Tensor*> defined_parts(parts);
  for (auto& p : defined_parts)
    if (p && !p->defined()) p = nullptr;
  split_table().get(ck.device())(y, d, sizes, defined_parts);
}

void transpose(const Tensor& x, Tensor& y) {
  Checker ck("transpose", {{"x", &x}, {"y", &y}});
  ck.defined();
  ck.ndim(x, "x", 3, 3);
  ck.require(x.dtype() == y.dtype(), "x and y must share a dtype");
  ck.shape(y, "y", Shape{x.dim(0), x.dim(2), x.dim(1)});
  transpose_table().get(ck.device())(x, y);
}

}  // namespace dbt::ops
