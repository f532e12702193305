// Op benchmarks on SD1.5 shapes, without Node: `dbt-bench [--json] [filter...]`.
// Each case reports the median time of several runs after a warm-up, and GFLOP/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "core/backends.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "bench_cases.h"

using namespace dbt;

namespace dbt::bench {

std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}
Registrar::Registrar(Case c) { cases().push_back(std::move(c)); }

Tensor filled(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  float* p = t.data<float>();
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < t.numel(); i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = float(int64_t(x % 2001) - 1000) / 1000.0f + 0.0005f;
  }
  return t;
}

}  // namespace dbt::bench

static double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

int main(int argc, char** argv) {
  using namespace dbt::bench;
  dbt::init_backends();
  bool json = false;
  bool cpu_time = false;  // time = CPU time of this thread (with DBT_NUM_THREADS=1: robust on a busy machine)
  int min_runs = 5;
  double min_seconds = 1.0;
  std::vector<std::string> filters;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--quick")) { min_runs = 2; min_seconds = 0.2; }
    else if (!std::strcmp(argv[i], "--cpu-time")) cpu_time = true;
    else filters.push_back(argv[i]);
  }
  if (!json)
    std::printf("dbt native bench: %d threads, simd %s\n", num_threads(), simd_level_name(simd_level()));
  for (Case& c : cases()) {
    bool match = filters.empty();
    for (auto& f : filters)
      if (c.name.find(f) != std::string::npos) match = true;
    if (!match) continue;
    std::function<void()> run = c.setup();
    run();  // warm-up
    std::vector<double> times;
    auto start = std::chrono::steady_clock::now();
    while (int(times.size()) < min_runs ||
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < min_seconds) {
      auto t0 = std::chrono::steady_clock::now();
      double c0 = thread_cpu_seconds();
      run();
      times.push_back(cpu_time ? thread_cpu_seconds() - c0
                               : std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (times.size() >= 50) break;
    }
    std::sort(times.begin(), times.end());
    // The best run is the figure least disturbed by other processes on a shared machine; the median
    // shows the spread.
    double med = times[times.size() / 2], best = times[0];
    double gflops = c.flops / best / 1e9;
    if (json)
      std::printf("{\"name\":\"%s\",\"best_ms\":%.4f,\"median_ms\":%.4f,\"gflops\":%.2f,\"runs\":%zu}\n",
                  c.name.c_str(), best * 1e3, med * 1e3, gflops, times.size());
    else
      std::printf("%-40s best %9.3f ms %7.1f GFLOP/s  median %9.3f ms  (%zu runs)\n", c.name.c_str(), best * 1e3,
                  gflops, med * 1e3, times.size());
    std::fflush(stdout);
  }
  return 0;
}
