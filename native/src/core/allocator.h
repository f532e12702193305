// Device allocators with statistics. The CPU allocator is built in; a backend (CUDA) installs its own
// with set_allocator(). Statistics count bytes the tensors hold (a caching allocator reports what it has
// handed out, and its reserved total separately).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace dbt {

struct AllocStats {
  size_t current = 0;      // bytes held by live allocations
  size_t peak = 0;         // max of current since start or reset_peak()
  size_t reserved = 0;     // bytes held from the system: current plus freed blocks kept for reuse
  uint64_t live = 0;       // number of live allocations
  uint64_t allocations = 0;  // total allocations since start
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory aligned to at least 64 bytes, or throws OutOfMemoryError. bytes may be 0.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) noexcept = 0;
  virtual AllocStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Gives cached memory back to the system (no-op for allocators that do not cache).
  virtual void release_cached() {}
};

// Counting helper for allocator implementations.
class AllocCounter {
 public:
  void on_alloc(size_t bytes);
  void on_free(size_t bytes);
  AllocStats stats() const;
  void reset_peak();

 private:
  std::atomic<size_t> current_{0}, peak_{0};
  std::atomic<uint64_t> live_{0}, allocations_{0};
};

Allocator& allocator(Device d);  // throws Error if no allocator is installed for d
// Installs a backend's allocator (not owned; must outlive every tensor on that device).
void set_allocator(Device d, Allocator* a);
bool has_allocator(Device d);

}  // namespace dbt
