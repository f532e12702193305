#include "cuda_util.h"

#include <cmath>

#include "runtime.h"

namespace dbt::test::cu {

double rtol_for(DType dt) {
  switch (dt) {
    case DType::f32: return 1e-5;
    case DType::f16: return 2e-3;
    case DType::bf16: return 1e-2;
    default: return 0;
  }
}

const std::vector<DType>& mma_types() {
  static const std::vector<DType> t = cuda::device().cc() >= 80
                                          ? std::vector<DType>{DType::f32, DType::bf16, DType::f16}
                                          : std::vector<DType>{DType::f32, DType::f16};
  return t;
}
DType half_mma_type() { return cuda::device().cc() >= 80 ? DType::bf16 : DType::f16; }

std::string tag(DType dt) { return std::string("[") + dtype_name(dt) + "] "; }

Tensor upload(const Tensor& cpu, DType dt) {
  Tensor src = cpu;
  if (cpu.dtype() != dt) {
    src = Tensor::empty(cpu.shape(), dt);
    if (cpu.dtype() == DType::f64 && (dt == DType::f16 || dt == DType::bf16)) {
      Tensor f = Tensor::empty(cpu.shape(), DType::f32);
      ops::cast(cpu, f);
      ops::cast(f, src);
    } else {
      ops::cast(cpu, src);
    }
  }
  Tensor dev = Tensor::empty(cpu.shape(), dt, Device::cuda);
  ops::copy(src, dev);
  return dev;
}

Tensor download_raw(const Tensor& dev) {
  Tensor host = Tensor::empty(dev.shape(), dev.dtype());
  ops::copy(dev, host);
  return host;
}

Tensor download(const Tensor& dev) {
  Tensor host = download_raw(dev);
  Tensor out = Tensor::empty(dev.shape(), DType::f64);
  for (int64_t i = 0; i < host.numel(); i++) set(out, i, get(host, i));
  return out;
}

Tensor rounded64(const Tensor& t, DType dt) {
  Tensor out = Tensor::empty(t.shape(), DType::f64);
  for (int64_t i = 0; i < t.numel(); i++) {
    double v = get(t, i);
    switch (dt) {
      case DType::f16: v = f16_to_f32(f32_to_f16(float(v))); break;
      case DType::bf16: v = bf16_to_f32(f32_to_bf16(float(v))); break;
      case DType::f32: v = double(float(v)); break;
      default: break;
    }
    set(out, i, v);
  }
  return out;
}

Tensor poisoned(const Shape& s, DType dt) {
  Tensor t = Tensor::empty(s, dt, Device::cuda);
  ops::fill(t, std::nan(""));
  return t;
}

void expect_close_dev(const Tensor& dev, const Tensor& want64, DType dt, const std::string& what, double slack) {
  Tensor got = download(dev);
  double ss = 0;
  for (int64_t i = 0; i < want64.numel(); i++) ss += get(want64, i) * get(want64, i);
  double rms = want64.numel() ? std::sqrt(ss / double(want64.numel())) : 0.0;
  double rtol = rtol_for(dt) * slack;
  // f16 results below 2^-14 are subnormal: spaced 2^-24 apart whatever the relative tolerance says (e.g. a
  // mean's gradient 1/n for n ~ 10^6), so one subnormal step is the absolute floor there.
  const double subnormal_step = dt == DType::f16 ? std::ldexp(1.0, -24) : 0.0;
  expect_close(got, want64, rtol * rms + subnormal_step + 1e-30, rtol, tag(dt) + what);
}

}  // namespace dbt::test::cu
