// Helpers shared by the network-level CUDA tests (test_cuda_network.cpp, test_cuda_vae_train.cpp): norm-wise
// (relative L2) comparison of a device result with a CPU f32 reference, rounding CPU tensors to a device dtype,
// parameter upload, the tiny-arch UNet configuration (src/model/arch.ts TINY_ARCH).
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_util.h"
#include "nn_util.h"
#include "nn/param.h"
#include "nn/unet.h"

namespace dbt::test::cu {

inline double net_rtol(DType dt) { return dt == DType::f32 ? 1e-4 : dt == DType::f16 ? 1e-2 : 4e-2; }

struct Norms {
  double err2 = 0, ref2 = 0;
  int64_t n = 0;
};
inline Norms diff(const Tensor& got_dev, const Tensor& want_cpu) {
  Tensor g = download(got_dev);
  Norms r;
  r.n = want_cpu.numel();
  for (int64_t i = 0; i < r.n; i++) {
    const double w = get(want_cpu, i), d = get(g, i) - w;
    if (!std::isfinite(get(g, i))) r.err2 = INFINITY;
    r.err2 += d * d;
    r.ref2 += w * w;
  }
  return r;
}
inline void expect_rel(const Norms& d, double tol, double floor2, const std::string& what) {
  const double err = std::sqrt(d.err2), bound = tol * std::sqrt(d.ref2 + floor2);
  if (!(err <= bound))
    throw TestFailure(what + ": relative L2 error " + std::to_string(err / std::sqrt(std::max(d.ref2, 1e-300))) +
                      " (|err| " + std::to_string(err) + " > bound " + std::to_string(bound) + ")");
}

// Rounds a CPU f32 tensor in place to dt's precision.
inline void round_to(Tensor& t, DType dt) {
  if (dt == DType::f32) return;
  Tensor h = Tensor::empty(t.shape(), dt);
  ops::cast(t, h);
  ops::cast(h, t);
}

// All parameter gradients together within the network tolerance, each tensor within 3x (rms floor).
inline void expect_grads_close(nn::ParamSet& dev, nn::ParamSet& ref, DType dt, const std::string& what) {
  auto& dp = dev.all();
  auto& rp = ref.all();
  const double tol = net_rtol(dt);
  std::vector<Norms> per(dp.size());
  Norms all;
  for (size_t i = 0; i < dp.size(); i++) {
    per[i] = diff(dp[i].grad, rp[i].grad);
    all.err2 += per[i].err2;
    all.ref2 += per[i].ref2;
    all.n += per[i].n;
  }
  expect_rel(all, tol, 0.0, what + " parameter gradients (all)");
  const double ms = all.ref2 / double(std::max<int64_t>(all.n, 1));  // mean square of all gradients
  for (size_t i = 0; i < dp.size(); i++) expect_rel(per[i], 3 * tol, ms * double(per[i].n), what + " d " + dp[i].key);
}

// Same weights on the GPU in dt (ref's, already rounded to dt), gradients on.
inline void upload_params(nn::ParamSet& dev, nn::ParamSet& ref, DType dt) {
  auto& dp = dev.all();
  auto& rp = ref.all();
  for (size_t i = 0; i < dp.size(); i++) dp[i].value = upload(rp[i].value, dt);
  dev.enable_grads(true);
}

}  // namespace dbt::test::cu
