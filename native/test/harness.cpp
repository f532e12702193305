#include "harness.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/backends.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace dbt::test {
namespace {
struct Entry {
  const char* name;
  void (*fn)();
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}
}  // namespace

Registrar::Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }

uint64_t Rng::next() {
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double Rng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
double Rng::uniform(double lo, double hi) {
  for (;;) {
    double v = lo + (hi - lo) * uniform();
    if (v != 0.0) return v;
  }
}
int64_t Rng::below(int64_t n) { return int64_t(next() % uint64_t(n)); }

Tensor rand_tensor(const Shape& s, uint64_t seed, double lo, double hi, DType dt) {
  Tensor t = Tensor::empty(s, dt);
  Rng r(seed);
  for (int64_t i = 0; i < t.numel(); i++) set(t, i, dt == DType::i32 ? std::floor(r.uniform(lo, hi)) : r.uniform(lo, hi));
  return t;
}

double get(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>()[i];
    case DType::f64: return t.data<double>()[i];
    case DType::i32: return t.data<int32_t>()[i];
    case DType::u8: return t.data<uint8_t>()[i];
    case DType::f16: return f16_to_f32(t.data<f16_t>()[i]);
    case DType::bf16: return bf16_to_f32(t.data<bf16_t>()[i]);
  }
  return 0;
}

void set(Tensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DType::f32: t.data<float>()[i] = float(v); break;
    case DType::f64: t.data<double>()[i] = v; break;
    case DType::i32: t.data<int32_t>()[i] = int32_t(v); break;
    case DType::u8: t.data<uint8_t>()[i] = uint8_t(v); break;
    case DType::f16: t.data<f16_t>()[i] = f32_to_f16(float(v)); break;
    case DType::bf16: t.data<bf16_t>()[i] = f32_to_bf16(float(v)); break;
  }
}

Tensor to_dtype(const Tensor& t, DType dt) {
  Tensor o = Tensor::empty(t.shape(), dt);
  for (int64_t i = 0; i < t.numel(); i++) set(o, i, get(t, i));
  return o;
}

Tensor clone(const Tensor& t) {
  Tensor o = Tensor::empty(t.shape(), t.dtype());
  std::memcpy(o.raw(), t.raw(), t.nbytes());
  return o;
}

void poison(Tensor& t) {
  for (int64_t i = 0; i < t.numel(); i++) set(t, i, std::nan(""));
}

void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what) {
  if (got.shape() != want.shape())
    throw TestFailure(what + ": shape " + got.shape().str() + " != expected " + want.shape().str());
  int64_t bad = 0, worst = -1;
  double worst_excess = -1;
  for (int64_t i = 0; i < got.numel(); i++) {
    double g = get(got, i), w = get(want, i);
    double lim = atol + rtol * std::fabs(w);
    double err = std::fabs(g - w);
    if (!(err <= lim)) {
      bad++;
      double excess = std::isnan(err) ? 1e300 : err / lim;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  if (bad) {
    char buf[256];
    std::snprintf(buf, sizeof buf, ": %lld of %lld elements off; worst at %lld: got %.9g want %.9g (atol %g rtol %g)",
                  (long long)bad, (long long)got.numel(), (long long)worst, get(got, worst), get(want, worst), atol,
                  rtol);
    throw TestFailure(what + buf);
  }
}

void expect_equal_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype() || std::memcmp(a.raw(), b.raw(), a.nbytes()) != 0)
    throw TestFailure(what + ": results are not bitwise identical");
}

Tensor numeric_grad(const std::function<double()>& loss, Tensor& x, double h) {
  if (x.dtype() != DType::f64) throw TestFailure("numeric_grad needs an f64 tensor");
  Tensor g = Tensor::zeros(x.shape(), DType::f64);
  double* xp = x.data<double>();
  double* gp = g.data<double>();
  for (int64_t i = 0; i < x.numel(); i++) {
    double old = xp[i];
    xp[i] = old + h;
    double lp = loss();
    xp[i] = old - h;
    double lm = loss();
    xp[i] = old;
    gp[i] = (lp - lm) / (2 * h);
  }
  return g;
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); i++) s += get(a, i) * get(b, i);
  return s;
}

std::vector<int> simd_levels() {
  std::vector<int> v;
  for (int l = 0; l <= int(detected_simd_level()); l++) v.push_back(l);
  return v;
}

void for_each_simd(const std::function<void()>& fn) {
  SimdLevel saved = simd_level();
  for (int l : simd_levels()) {
    set_simd_level(SimdLevel(l));
    try {
      fn();
    } catch (const TestFailure& e) {
      set_simd_level(saved);
      throw TestFailure(std::string("[simd ") + simd_level_name(SimdLevel(l)) + "] " + e.what());
    } catch (...) {
      set_simd_level(saved);
      throw;
    }
  }
  set_simd_level(saved);
}

}  // namespace dbt::test

int main(int argc, char** argv) {
  using namespace dbt::test;
  dbt::init_backends();
  int run = 0, failed = 0;
  auto t_all = std::chrono::steady_clock::now();
  for (const Entry& e : registry()) {
    // Arguments are name substrings: a test runs when it contains one of them (or when none is given) and
    // no "-substring" argument excludes it.
    bool any_include = false, match = false, excluded = false;
    for (int i = 1; i < argc; i++) {
      if (argv[i][0] == '-') {
        excluded = excluded || std::strstr(e.name, argv[i] + 1) != nullptr;
      } else {
        any_include = true;
        match = match || std::strstr(e.name, argv[i]) != nullptr;
      }
    }
    if (excluded || (any_include && !match)) continue;
    run++;
    auto t0 = std::chrono::steady_clock::now();
    std::string err;
    try {
      e.fn();
    } catch (const std::exception& ex) {
      err = ex.what();
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (err.empty()) {
      std::printf("ok   %-48s %8.1f ms\n", e.name, ms);
    } else {
      failed++;
      std::printf("FAIL %-48s %8.1f ms\n     %s\n", e.name, ms, err.c_str());
    }
    std::fflush(stdout);
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::printf("%d tests, %d failed (%.1f s, simd %s, %d threads)\n", run, failed, total,
              dbt::simd_level_name(dbt::simd_level()), dbt::num_threads());
  if (run == 0) {
    std::printf("no test matched\n");
    return 1;
  }
  return failed ? 1 : 0;
}
