// CUDA benchmarks: SD1.5 op shapes (and, once the networks land, the UNet train/sample step), timed with
// CUDA events on the engine stream, with the allocator's peak. Every case carries a JSON spec of its
// inputs so scripts/torch_ref/bench_torch.py can run the same shapes through PyTorch for comparison.
#pragma once
#include <functional>
#include <string>

#include "core/tensor.h"
#include "nn/param.h"

namespace dbt::bench::cuda {

struct Case {
  std::string name;
  std::string spec;  // JSON object: {"kind": "...", ...shape fields...} (read by the PyTorch side)
  double flops;      // per run (0: not a FLOP-bound case)
  // Allocates inputs (on the GPU) and returns the function to time.
  std::function<std::function<void()>()> setup;
  double bytes = 0;  // DRAM traffic per run, at least (memory-bound cases: reported as GB/s; 0: not reported)
};
struct Registrar {
  explicit Registrar(Case c);
};

// Device tensor of shape s and dtype dt with deterministic values in [-scale, scale].
Tensor device_random(const Shape& s, DType dt, uint64_t seed, float scale = 1.0f);

// Random network weights in dtype dt on the GPU, seeds from `seed` up: matrices and kernels uniform in
// +-sqrt(3 / fan_in), 1-d `.weight`s (norm gains) 1, other vectors (biases) in +-0.1.
void randomize_params(nn::ParamSet& params, DType dt, uint64_t seed);

}  // namespace dbt::bench::cuda
