#include "ops/tensor_ops.h"

#include "ops/check.h"

namespace dbt::ops {

OpTable<FillFn>& fill_table() {
  static OpTable<FillFn> t("fill", &ref::fill, &cpu::fill);
  return t;
}
OpTable<CopyFn>& copy_table() {
  static OpTable<CopyFn> t("copy", &ref::copy, &cpu::copy);
  return t;
}
OpTable<CastFn>& cast_table() {
  static OpTable<CastFn> t("cast", &ref::cast, &cpu::cast);
  return t;
}
OpTable<CastStochasticFn>& cast_stochastic_table() {
  static OpTable<CastStochasticFn> t("cast_stochastic", &ref::cast_stochastic, &cpu::cast_stochastic);
  return t;
}

void fill(Tensor& t, double value) {
  Checker ck("fill", {{"t", &t}});
  ck.defined();
  fill_table().get(t.device())(t, value);
}

void copy(const Tensor& src, Tensor& dst) {
  Checker ck("copy", {{"src", &src}, {"dst", &dst}});
  ck.defined();
  ck.require(src.dtype() == dst.dtype(), "src and dst must have the same dtype (use cast to convert)");
  ck.require(src.numel() == dst.numel(), "src and dst must have the same number of elements");
  // A transfer is performed by the backend of the non-CPU side.
  Device d = src.device() != Device::cpu ? src.device() : dst.device();
  copy_table().get(d)(src, dst);
}

void cast(const Tensor& src, Tensor& dst) {
  Checker ck("cast", {{"src", &src}, {"dst", &dst}});
  ck.defined();
  ck.same_shape(src, "src", dst, "dst");
  cast_table().get(ck.device())(src, dst);
}

void cast_stochastic(const Tensor& src, Tensor& dst, const SrKey& key) {
  Checker ck("cast_stochastic", {{"src", &src}, {"dst", &dst}});
  ck.defined();
  ck.dtype(src, "src", DType::f32);
  ck.dtype(dst, "dst", DType::bf16);
  ck.same_shape(src, "src", dst, "dst");
  ck.require(src.numel() <= kSrMaxElements, "at most 2^34 elements (the Philox counter of an element)");
  cast_stochastic_table().get(ck.device())(src, dst, key);
}

}  // namespace dbt::ops
