// dbt-bench-cuda [--json] [--quick] [filter...]: each case runs a warm-up, then is timed with CUDA events
// (median of at least 5 runs / 0.5 s); reports ms, TFLOP/s (or GB/s for memory-bound cases) and the CUDA
// allocator's peak during the case.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bench_cuda.h"
#include "core/allocator.h"
#include "core/backends.h"
#include "ops/tensor_ops.h"
#include "runtime.h"

namespace dbt::bench::cuda {

std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}
Registrar::Registrar(Case c) { cases().push_back(std::move(c)); }

Tensor device_random(const Shape& s, DType dt, uint64_t seed, float scale) {
  Tensor h = Tensor::empty(s);
  float* p = h.data<float>();
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < h.numel(); i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = scale * (float(int64_t(x % 2001) - 1000) / 1000.0f + 0.0005f);
  }
  Tensor hc = h;
  if (dt != DType::f32) {
    hc = Tensor::empty(s, dt);
    ops::cast(h, hc);
  }
  Tensor d = Tensor::empty(s, dt, Device::cuda);
  ops::copy(hc, d);
  return d;
}

void randomize_params(nn::ParamSet& params, DType dt, uint64_t seed) {
  for (nn::Param& p : params.all()) {
    const Shape& s = p.value.shape();
    if (s.ndim() >= 2) {
      p.value = device_random(s, dt, seed++, float(std::sqrt(3.0 / double(s.prod(1, s.ndim())))));
    } else if (p.key.size() >= 7 && p.key.compare(p.key.size() - 7, 7, ".weight") == 0) {
      ops::fill(p.value, 1.0);
    } else {
      p.value = device_random(s, dt, seed++, 0.1f);
    }
  }
}

}  // namespace dbt::bench::cuda

int main(int argc, char** argv) {
  using namespace dbt;
  using namespace dbt::bench::cuda;
  CudaStatus st = cuda_status();
  if (!st.available) {
    std::printf("dbt-bench-cuda: CUDA is unavailable: %s\n", st.reason.c_str());
    return 2;
  }
  bool json = false;
  int min_runs = 5;
  double min_seconds = 0.5;
  std::vector<std::string> filters;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--quick")) min_runs = 3, min_seconds = 0.1;
    else filters.push_back(argv[i]);
  }
  const dbt::cuda::DeviceProps& dev = dbt::cuda::device();
  if (!json) std::printf("dbt-bench-cuda on cuda:%d %s (sm_%d, %d SMs)\n", dev.index, dev.name.c_str(), dev.cc(), dev.sms);
  Allocator& alloc = allocator(Device::cuda);
  cudaStream_t s = dbt::cuda::stream();
  cudaEvent_t e0, e1;
  dbt::cuda::check(cudaEventCreate(&e0), "cudaEventCreate");
  dbt::cuda::check(cudaEventCreate(&e1), "cudaEventCreate");
  int failures = 0;
  for (Case& c : cases()) {
    bool match = filters.empty();
    for (auto& f : filters)
      if (c.name.find(f) != std::string::npos) match = true;
    if (!match) continue;
    try {
      dbt::cuda::synchronize("bench");
      alloc.reset_peak();
      std::function<void()> run = c.setup();
      run();  // warm-up (and first-use allocations)
      dbt::cuda::synchronize(c.name.c_str());
      std::vector<double> ms;
      double total = 0;
      while (int(ms.size()) < min_runs || (total < min_seconds * 1e3 && ms.size() < 200)) {
        dbt::cuda::check(cudaEventRecord(e0, s), "cudaEventRecord");
        run();
        dbt::cuda::check(cudaEventRecord(e1, s), "cudaEventRecord");
        dbt::cuda::check(cudaEventSynchronize(e1), c.name.c_str());
        float t = 0;
        dbt::cuda::check(cudaEventElapsedTime(&t, e0, e1), "cudaEventElapsedTime");
        ms.push_back(t);
        total += t;
      }
      std::sort(ms.begin(), ms.end());
      double med = ms[ms.size() / 2];
      double tflops = c.flops > 0 ? c.flops / (med * 1e-3) / 1e12 : 0.0;
      double gbps = c.bytes > 0 ? c.bytes / (med * 1e-3) / 1e9 : 0.0;
      double peak_mib = double(alloc.stats().peak) / (1 << 20);
      if (json)
        std::printf("{\"name\":\"%s\",\"spec\":%s,\"ms\":%.4f,\"tflops\":%.3f,\"gbps\":%.1f,\"peak_mib\":%.1f,"
                    "\"runs\":%zu}\n",
                    c.name.c_str(), c.spec.c_str(), med, tflops, gbps, peak_mib, ms.size());
      else if (c.bytes > 0)
        std::printf("%-48s %9.3f ms %8.1f GB/s    %9.1f MiB peak (%zu runs)\n", c.name.c_str(), med, gbps, peak_mib,
                    ms.size());
      else
        std::printf("%-48s %9.3f ms %8.1f TFLOP/s %9.1f MiB peak (%zu runs)\n", c.name.c_str(), med, tflops, peak_mib,
                    ms.size());
    } catch (const std::exception& ex) {
      failures++;
      if (json) std::printf("{\"name\":\"%s\",\"spec\":%s,\"error\":\"%s\"}\n", c.name.c_str(), c.spec.c_str(), "failed");
      std::fprintf(stderr, "bench %s failed: %s\n", c.name.c_str(), ex.what());
    }
    std::fflush(stdout);
    alloc.release_cached();
  }
  return failures ? 1 : 0;
}
