#pragma once
#include <functional>
#include <string>

#include "core/tensor.h"

namespace dbt::bench {

struct Case {
  std::string name;
  double flops;  // per run
  // Allocates inputs and returns the function to time.
  std::function<std::function<void()>()> setup;
};
struct Registrar {
  explicit Registrar(Case c);
};
Tensor filled(const Shape& s, uint64_t seed);  // deterministic non-zero values in [-1, 1]

}  // namespace dbt::bench
