// The CUDA caching allocator: device memory is taken from cudaMalloc once and kept in size-class pools,
// so a training step reuses the blocks of the previous one without calling the driver.
//
// - Size classes: multiples of 512 B up to 1 MiB; above, 8 classes per power of two (waste <= 12.5 %).
//   A freed block returns to its class's pool and serves the next request of that class.
// - Reuse is safe without events because all work runs on the engine stream (see runtime.h).
// - When cudaMalloc fails, every cached block is released and the allocation retried once; if it fails
//   again, OutOfMemoryError reports the request, dbt's usage and peak, the device's free memory and advice.
// - Statistics: current/peak count bytes held by tensors (requested sizes), reserved counts what dbt
//   holds from the driver (live + cached blocks, rounded sizes).
#pragma once
#include <cstddef>

namespace dbt::cuda {

// Installs the allocator for Device::cuda (called by register_backend).
void install_allocator();

// Size class of a request: multiples of 512 B up to 1 MiB, then 8 classes per power of two. Inline (plain
// arithmetic) so the CPU test runner checks it without a GPU (test/test_cuda_plan.cpp).
inline size_t allocation_class(size_t bytes) {
  constexpr size_t kSmallStep = 512, kSmallMax = size_t(1) << 20;
  if (bytes <= kSmallMax) return bytes == 0 ? kSmallStep : (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  size_t octave = kSmallMax;  // largest power of two <= bytes
  while (octave <= bytes / 2) octave *= 2;
  size_t step = octave / 8;
  return (bytes + step - 1) / step * step;
}

}  // namespace dbt::cuda
