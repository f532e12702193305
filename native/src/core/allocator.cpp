#include "core/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>

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

// Large blocks are cached by exact (page-rounded) size when freed: training steps allocate the same shapes
// every step, and fresh large allocations cost page faults (the kernel zeroes every page). The cache holds
// at most kCacheCap bytes (DBT_CPU_CACHE_MB overrides; 0 disables); release_cached() empties it.
class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() {
    if (const char* s = std::getenv("DBT_CPU_CACHE_MB")) cap_ = size_t(std::max(0L, std::atol(s))) << 20;
  }
  ~CpuAllocator() override { release_cached(); }

  void* allocate(size_t bytes) override {
    const size_t rounded = round(bytes);
    void* p = nullptr;
    if (rounded >= kCacheMin) {
      std::lock_guard<std::mutex> lk(m_);
      auto it = cache_.find(rounded);
      if (it != cache_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= rounded;
      }
    }
    if (!p) p = fresh(rounded);
    if (!p) {
      release_cached();
      p = std::aligned_alloc(64, rounded);
    }
    if (!p) {
      AllocStats s = counter_.stats();
      throw OutOfMemoryError("cpu", bytes, s.current, s.peak);
    }
    counter_.on_alloc(bytes);
    return p;
  }
  void deallocate(void* p, size_t bytes) noexcept override {
    if (!p) return;
    counter_.on_free(bytes);
    const size_t rounded = round(bytes);
    if (rounded >= kCacheMin) {
      std::lock_guard<std::mutex> lk(m_);
      if (cached_ + rounded <= cap_) {
        try {
          cache_[rounded].push_back(p);
          cached_ += rounded;
          return;
        } catch (...) {
        }
      }
    }
    std::free(p);
  }
  AllocStats stats() const override {
    AllocStats s = counter_.stats();
    std::lock_guard<std::mutex> lk(m_);
    s.reserved = s.current + cached_;
    return s;
  }
  void reset_peak() override { counter_.reset_peak(); }
  void release_cached() override {
    std::lock_guard<std::mutex> lk(m_);
    for (auto& kv : cache_)
      for (void* p : kv.second) std::free(p);
    cache_.clear();
    cached_ = 0;
  }

 private:
  static constexpr size_t kCacheMin = 256 << 10;  // smaller blocks come from malloc's own free lists
  // Blocks of 2 MiB or more start on a 2 MiB boundary and ask for transparent huge pages for their
  // whole 2 MiB units: GEMM operands walked down columns (packing, im2col) then cost far fewer TLB misses
  // (measured +2-6 % on SD1.5 GEMM shapes). The tail below 2 MiB keeps small pages: no memory is added.
  static void* fresh(size_t rounded) {
    constexpr size_t kHuge = size_t(2) << 20;
    if (rounded < kHuge) return std::aligned_alloc(64, rounded);
    void* p = nullptr;
    if (posix_memalign(&p, kHuge, rounded) != 0) return nullptr;  // aligned_alloc wants size % align == 0
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, rounded / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
    return p;
  }
  static size_t round(size_t bytes) {
    if (bytes >= kCacheMin) return (bytes + 4095) / 4096 * 4096;
    size_t r = (bytes + 63) / 64 * 64;
    return r ? r : 64;
  }

  AllocCounter counter_;
  mutable std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> cache_;
  size_t cached_ = 0;
  size_t cap_ = size_t(512) << 20;
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
