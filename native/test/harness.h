// The C++ test runner's harness: registration, assertions, random tensors, tolerance comparison and
// finite-difference gradients. Tests throw TestFailure; the runner reports and continues.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dbt::test {

struct TestFailure : std::runtime_error {
  explicit TestFailure(const std::string& m) : std::runtime_error(m) {}
};

struct Registrar {
  Registrar(const char* name, void (*fn)());
};

#define DBT_TEST(name)                                          \
  static void test_##name();                                    \
  static ::dbt::test::Registrar reg_##name(#name, test_##name); \
  static void test_##name()

#define EXPECT_TRUE(cond, msg)                                                                   \
  do {                                                                                           \
    if (!(cond))                                                                                 \
      throw ::dbt::test::TestFailure(std::string(__FILE__) + ":" + std::to_string(__LINE__) +   \
                                     ": expected " #cond ": " + std::string(msg));              \
  } while (0)

// Runs fn, expecting an exception of type E whose message contains `needle`.
template <class E>
void expect_throws(const std::function<void()>& fn, const std::string& needle, const std::string& what) {
  try {
    fn();
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) == std::string::npos)
      throw TestFailure(what + ": error message \"" + e.what() + "\" lacks \"" + needle + "\"");
    return;
  }
  throw TestFailure(what + ": expected an exception");
}

// Counter-based generator (splitmix64): same seed, same numbers.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  uint64_t next();
  double uniform();  // [0, 1)
  // Uniform in [lo, hi), never exactly 0.
  double uniform(double lo, double hi);
  int64_t below(int64_t n);

 private:
  uint64_t s_;
};

// Random tensor, uniform in [lo, hi), no zeros. dtype f32 or f64 (or i32 with integer values).
Tensor rand_tensor(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0, DType dt = DType::f32);
Tensor to_dtype(const Tensor& t, DType dt);  // f32 <-> f64 (copies)
Tensor clone(const Tensor& t);
double get(const Tensor& t, int64_t i);      // element i as double (f32/f64/i32)
void set(Tensor& t, int64_t i, double v);
// Fills t with NaN (f32/f64) so a kernel that reads an output it should only write shows up.
void poison(Tensor& t);

// Passes when |got - want| <= atol + rtol * |want| everywhere (NaN fails); otherwise throws with the
// worst element, its index and the number of violations.
void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what);
void expect_equal_bits(const Tensor& a, const Tensor& b, const std::string& what);

// Central finite differences of a scalar loss with respect to every element of x (f64 tensor, mutated
// and restored): g[i] = (loss(x + h e_i) - loss(x - h e_i)) / 2h.
Tensor numeric_grad(const std::function<double()>& loss, Tensor& x, double h = 1e-6);
// sum(a * b) in double.
double dot(const Tensor& a, const Tensor& b);

// The SIMD levels this CPU supports (portable first); tests of fast kernels loop over them.
std::vector<int> simd_levels();
// Runs fn once per SIMD level (restoring the level afterwards), naming the level in failures.
void for_each_simd(const std::function<void()>& fn);

}  // namespace dbt::test
