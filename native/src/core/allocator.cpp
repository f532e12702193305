#include "core/allocator.h"

#include <cstdlib>

#include "core/error.h"

namespace dbt {

void AllocCounter::on_alloc(size_t bytes) {
  size_t cur = current_.fetch_add(bytes) + bytes;
  size_t pk = peak_.load();
  while (cur > pk && !peak_.compare_exchange_weak(pk, cur)) {
  }
  live_.fetch_add(1);
  allocations_.fetch_add(1);
}

void AllocCounter::on_free(size_t bytes) {
  current_.fetch_sub(bytes);
  live_.fetch_sub(1);
}

AllocStats AllocCounter::stats() const {
  AllocStats s;
  s.current = current_.load();
  s.peak = peak_.load();
  s.reserved = s.current;
  s.live = live_.load();
  s.allocations = allocations_.load();
  return s;
}

void AllocCounter::reset_peak() { peak_.store(current_.load()); }

namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    // 64-byte alignment for SIMD; round the size up so aligned_alloc accepts it.
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) {
      AllocStats s = counter_.stats();
      throw OutOfMemoryError("cpu", bytes, s.current, s.peak);
    }
    counter_.on_alloc(bytes);
    return p;
  }
  void deallocate(void* p, size_t bytes) noexcept override {
    if (!p) return;
    std::free(p);
    counter_.on_free(bytes);
  }
  AllocStats stats() const override { return counter_.stats(); }
  void reset_peak() override { counter_.reset_peak(); }

 private:
  AllocCounter counter_;
};

CpuAllocator g_cpu_allocator;
Allocator* g_allocators[kNumDevices] = {&g_cpu_allocator, nullptr};

}  // namespace

Allocator& allocator(Device d) {
  Allocator* a = g_allocators[int(d)];
  if (!a)
    throw Error(std::string("no ") + device_name(d) + " backend in this build (device " + device_name(d) +
                " is unavailable)");
  return *a;
}

void set_allocator(Device d, Allocator* a) { g_allocators[int(d)] = a; }
bool has_allocator(Device d) { return g_allocators[int(d)] != nullptr; }

}  // namespace dbt
